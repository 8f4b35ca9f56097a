"""fastbmm: torch.bmm's batched matrix product for NumPy arrays, on the CPU.

>>> import numpy as np, fastbmm
>>> a = np.ones((2, 1, 10), np.float32); b = np.ones((2, 10, 4), np.float32)
>>> fastbmm.bmm(a, b).shape
(2, 1, 4)
"""

try:
    from . import _bmm  # the compiled core: missing when a source tree is imported
except ImportError as _error:
    from ._import_hint import reraise_with_hint

    reraise_with_hint(_error)

from ._version import __version__
from ._errors import DtypeError, ShapeError, UnsupportedDtypeError
from ._bmm import bmm, get_num_threads, set_num_threads
from ._products import baddbmm, matmul
from ._config import show_config

__all__ = [
    "bmm",
    "baddbmm",
    "matmul",
    "set_num_threads",
    "get_num_threads",
    "show_config",
    "ShapeError",
    "DtypeError",
    "UnsupportedDtypeError",
    "__version__",
]
