# Type stubs for fastbmm's public API (the functions are compiled Cython,
# which type checkers cannot read). Kept in step with the runtime by
# tests/typing/test_stubs_match_runtime.py; CI runs mypy on typed usage
# (python tests/typing/check_stubs.py).
from typing import Any, Literal, Protocol, TypeVar, overload

from typing_extensions import Self

import numpy as np
from numpy.typing import DTypeLike, NDArray

__version__: str

__all__ = [
    "bmm",
    "baddbmm",
    "matmul",
    "set_num_threads",
    "get_num_threads",
    "threads",
    "show_config",
    "ShapeError",
    "DtypeError",
    "UnsupportedDtypeError",
    "__version__",
]

class _SupportsDLPack(Protocol):
    # a CPU torch tensor, a JAX or CuPy array (a GPU one is refused at run time)
    def __dlpack__(self, /) -> Any: ...

class _SupportsArrayInterface(Protocol):
    @property
    def __array_interface__(self) -> dict[str, Any]: ...

# What every function reads without a copy. Lists, tuples and scalars are
# refused at run time (as torch refuses them), so they are not in the type.
_Operand = NDArray[Any] | _SupportsDLPack | _SupportsArrayInterface

_ScalarT = TypeVar("_ScalarT", bound=np.generic)
_OutT = TypeVar("_OutT", bound=NDArray[Any])
_Number = int | float | complex | np.number[Any]

class ShapeError(RuntimeError, ValueError): ...
class DtypeError(RuntimeError, TypeError): ...
class UnsupportedDtypeError(NotImplementedError, TypeError): ...

# bmm: the result has the operands' dtype, or is `out` itself.
@overload
def bmm(
    input: NDArray[_ScalarT], mat2: NDArray[_ScalarT], *, out: None = None, out_dtype: None = None
) -> NDArray[_ScalarT]: ...
@overload
def bmm(input: _Operand, mat2: _Operand, *, out: _OutT, out_dtype: DTypeLike | None = None) -> _OutT: ...
@overload
def bmm(
    input: _Operand, mat2: _Operand, *, out: None = None, out_dtype: DTypeLike | None = None
) -> NDArray[Any]: ...
@overload
def baddbmm(
    input: NDArray[_ScalarT],
    batch1: NDArray[_ScalarT],
    batch2: NDArray[_ScalarT],
    *,
    beta: _Number = 1,
    alpha: _Number = 1,
    out: None = None,
) -> NDArray[_ScalarT]: ...
@overload
def baddbmm(
    input: _Operand,
    batch1: _Operand,
    batch2: _Operand,
    *,
    beta: _Number = 1,
    alpha: _Number = 1,
    out: _OutT,
) -> _OutT: ...
@overload
def baddbmm(
    input: _Operand,
    batch1: _Operand,
    batch2: _Operand,
    *,
    beta: _Number = 1,
    alpha: _Number = 1,
    out: None = None,
) -> NDArray[Any]: ...
@overload
def matmul(
    input: NDArray[_ScalarT], other: NDArray[_ScalarT], *, out: None = None, out_dtype: None = None
) -> NDArray[_ScalarT]: ...
@overload
def matmul(input: _Operand, other: _Operand, *, out: _OutT, out_dtype: DTypeLike | None = None) -> _OutT: ...
@overload
def matmul(
    input: _Operand, other: _Operand, *, out: None = None, out_dtype: DTypeLike | None = None
) -> NDArray[Any]: ...
def set_num_threads(n: int | None) -> None: ...
def get_num_threads() -> int: ...


class threads:
    """Context manager: ``n`` threads inside the block, the previous setting after."""

    def __init__(self, n: int | None) -> None: ...
    def __enter__(self) -> Self: ...
    # never swallows the block's exception
    def __exit__(self, *exc: object) -> Literal[False]: ...

@overload
def show_config(mode: Literal["stdout"] = "stdout") -> None: ...
@overload
def show_config(mode: Literal["dicts"]) -> dict[str, Any]: ...
