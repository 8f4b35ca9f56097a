"""fastbmm: torch.bmm's batched matrix product for NumPy arrays, on the CPU.

>>> import numpy as np, fastbmm
>>> a = np.ones((2, 1, 10), np.float32); b = np.ones((2, 10, 4), np.float32)
>>> fastbmm.bmm(a, b).shape
(2, 1, 4)
"""

import re as _re

from ._version import __version__


def _openmp_runtimes_mapped():
    """Files of OpenMP runtimes mapped into this process (read on Linux; else empty)."""
    try:
        with open("/proc/self/maps") as f:
            return {line.split(None, 5)[5].strip() for line in f
                    if _re.search(r"/lib(g|i|l)?omp[^/]*\.so", line)}
    except (OSError, IndexError):
        return set()


# Whether the OpenMP runtime that the compiled modules link was in this process
# before the first of them (_runtime): it may then hold a worker pool inherited
# through a fork (see src/threads.c).
_runtimes_before = _openmp_runtimes_mapped()
try:
    from . import _runtime  # noqa: E402  (loads the OpenMP runtime; missing in an unbuilt source tree)
except ImportError as _error:
    from ._import_hint import reraise_with_hint

    reraise_with_hint(_error)
_runtime._init_threads(bool(_runtimes_before) and not (_openmp_runtimes_mapped() - _runtimes_before))
del _runtimes_before

# (after _runtime: the error classes read the compiled dtype registry, _dtypes)
from ._errors import DtypeError, ShapeError, UnsupportedDtypeError  # noqa: E402
from ._runtime import get_num_threads, set_num_threads, threads  # noqa: E402
from ._products import baddbmm, bmm, matmul  # noqa: E402
from ._config import show_config  # noqa: E402

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
