"""Typed use of fastbmm's public API: mypy must accept this file (--strict).

Checked by tests/typing/check_stubs.py (CI); ``assert_type`` makes mypy fail
where a stub gives a call a less precise type than the one written here.
"""

import sys
from typing import Any

import numpy as np
import numpy.typing as npt
from dask.array import Array

import fastbmm
import fastbmm.dask

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # pragma: no cover - mypy reads the branch for its target version
    from typing_extensions import assert_type

a = np.ones((2, 1, 10), np.float32)
b = np.ones((2, 10, 4), np.float32)

# the result keeps the operands' scalar type
c = fastbmm.bmm(a, b)
assert_type(c, npt.NDArray[np.float32])

# out= is returned as it is
out = np.empty((2, 1, 4), np.float32)
assert_type(fastbmm.bmm(a, b, out=out), np.ndarray[tuple[int, int, int], np.dtype[np.float32]])

# float16 operands with a float32 result: the dtype is not known statically
h = np.ones((2, 3, 3), np.float16)
wide: npt.NDArray[np.generic] = fastbmm.bmm(h, h, out_dtype=np.float32)

bias = np.zeros((1, 4), np.float32)
assert_type(fastbmm.baddbmm(bias, a, b, beta=0.5, alpha=2), npt.NDArray[np.float32])
assert_type(fastbmm.matmul(a, b), npt.NDArray[np.float32])
vec = np.ones(10, np.float64)
mats = np.ones((3, 10, 2), np.float64)
assert_type(fastbmm.matmul(vec, mats), npt.NDArray[np.float64])

fastbmm.set_num_threads(1)
n: int = fastbmm.get_num_threads()
fastbmm.set_num_threads(None)
with fastbmm.threads(1) as scope:
    assert_type(scope, fastbmm.threads)
    fastbmm.bmm(a, b)
with fastbmm.threads(None):
    pass

config = fastbmm.show_config(mode="dicts")
assert_type(config, dict[str, Any])
kernel: object = config["kernel"]
assert_type(fastbmm.show_config(), None)

try:
    fastbmm.bmm(a, b.astype(np.float64))
except fastbmm.DtypeError as error:
    message: str = str(error)
except (fastbmm.ShapeError, fastbmm.UnsupportedDtypeError):
    raise

version: str = fastbmm.__version__

assert_type(fastbmm.dask.bmm(a, b), Array)
assert_type(fastbmm.dask.matmul(vec, mats, out_dtype=np.float64), Array)
