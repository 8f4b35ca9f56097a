# Type stubs for fastbmm.dask (see fastbmm/__init__.pyi).
from dask.array import Array
from numpy.typing import DTypeLike

from . import _Operand

__all__ = ["bmm", "matmul"]

def bmm(input: Array | _Operand, mat2: Array | _Operand, *, out_dtype: DTypeLike | None = None) -> Array: ...
def matmul(
    input: Array | _Operand, other: Array | _Operand, *, out_dtype: DTypeLike | None = None
) -> Array: ...
