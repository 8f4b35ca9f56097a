# cython: language_level=3, boundscheck=False, wraparound=False
"""The dtype registry (``src/dtypes.def``) as Python sees it.

The C engine and this module read the same rows: the engine compiles them
(its enum, its kernels, its table of kinds), and this module reads them back
from the compiled table (``fbmm_dtype_at``), so that the dtype codes, the
supported dtypes and torch's names in the error texts cannot drift apart from
the kernels. ``_validation`` (``dtype_code``), ``_errors`` (torch's names),
``bench`` and the tests take their dtype lists from here.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t

from collections import namedtuple

import numpy as np

cnp.import_array()


cdef extern from "src/fastbmm.h" nogil:
    enum:
        FBMM_NUM_DTYPES
        FBMM_COMPLEX
        FBMM_STAGED
        FBMM_WRAPPING

    ctypedef struct fbmm_dtype_info:
        const char *code
        const char *kind
        const char *family
        const char *numpy_in
        const char *numpy_out
        const char *torch
        const char *torch_cpp
        const char *scalar_cpp
        int flags
        int arithmetic
        int64_t in_itemsize, out_itemsize

    const fbmm_dtype_info *fbmm_dtype_at(int code)


DtypeRow = namedtuple("DtypeRow", [
    "code", "name", "kind", "family", "numpy_in", "numpy_out", "torch", "torch_cpp",
    "scalar_cpp", "is_complex", "is_integer", "staged", "in_itemsize", "out_itemsize"])
DtypeRow.__doc__ = """One row of src/dtypes.def.

``code`` is the engine's dtype code (FBMM_<name>), ``numpy_in`` and
``numpy_out`` the operands' and the result's dtype names (a row whose two
differ is an ``out_dtype=`` variant: never chosen by the operands alone).
"""


def _read_rows():
    cdef int code
    cdef const fbmm_dtype_info *r
    rows = []
    for code in range(FBMM_NUM_DTYPES):
        r = fbmm_dtype_at(code)
        rows.append(DtypeRow(
            code, r.code.decode(), r.kind.decode(), r.family.decode(), r.numpy_in.decode(),
            r.numpy_out.decode(), r.torch.decode(), r.torch_cpp.decode(), r.scalar_cpp.decode(),
            bool(r.flags & FBMM_COMPLEX), r.arithmetic == FBMM_WRAPPING,
            bool(r.flags & FBMM_STAGED), r.in_itemsize, r.out_itemsize))
    return tuple(rows)


#: Every row of dtypes.def, in code order.
ROWS = _read_rows()

#: The rows an operand dtype selects (not the out_dtype= variants).
OPERAND_ROWS = tuple(r for r in ROWS if r.numpy_in == r.numpy_out)


def numpy_dtype(name):
    """The dtype called ``name``: NumPy's own, or None where NumPy has none."""
    try:
        return np.dtype(name)
    except TypeError:
        return None


#: The operand dtypes fastbmm computes that this NumPy has, in code order.
SUPPORTED = tuple(d for d in (numpy_dtype(r.numpy_in) for r in OPERAND_ROWS) if d is not None)


# dtype_code's lookup: NumPy's type number -> code, for every built-in type
# number whose dtype equals a row's (several type numbers name one dtype:
# 'l' and 'q' are both int64 on Linux, 'l' is int32 on Windows).
cdef int _code_by_typenum[cnp.NPY_NTYPES_LEGACY]


cdef object _descr(int t):
    # the dtype of built-in type number t; None for a number without one
    # (NumPy 2 left gaps where removed types were)
    try:
        return <object>cnp.PyArray_DescrFromType(t)
    except Exception:
        return None


def _fill_typenum_table():
    cdef int t
    for t in range(cnp.NPY_NTYPES_LEGACY):
        _code_by_typenum[t] = -1
    for r in OPERAND_ROWS:
        d = numpy_dtype(r.numpy_in)
        if d is None:
            continue
        for t in range(cnp.NPY_NTYPES_LEGACY):
            other = _descr(t)
            if other is not None and other == d and _code_by_typenum[t] < 0:
                _code_by_typenum[t] = r.code


_fill_typenum_table()

cdef bint _is_integer[FBMM_NUM_DTYPES]
for _r in ROWS:
    _is_integer[_r.code] = _r.is_integer
del _r


cdef int dtype_code(cnp.ndarray x) noexcept:
    """The engine's dtype code for x's element type, -1 if unsupported.

    Byte order does not matter here ('>f4' is float32's code): the caller
    converts byte-swapped operands to native order before the engine reads them.
    """
    cdef int t = cnp.PyArray_TYPE(x)
    if 0 <= t < cnp.NPY_NTYPES_LEGACY:
        return _code_by_typenum[t]
    return -1


cdef bint is_integer_code(int code) noexcept:
    """Is ``code`` one of the engine's integer (wrapping) dtypes?"""
    return 0 <= code < FBMM_NUM_DTYPES and _is_integer[code]


def code_of(dtype):
    """The engine's dtype code for operands of ``dtype``, or -1."""
    d = np.dtype(dtype)
    return dtype_code(np.empty(0, d.newbyteorder("=")))


def out_dtype_code(int code, want):
    """The out_dtype= variant of ``code``: the row that takes ``code``'s operands
    to a result of dtype ``want`` other than their own (float16 -> float32), or -1."""
    if not 0 <= code < FBMM_NUM_DTYPES:
        return -1
    row = ROWS[code]
    want = np.dtype(want)
    for r in ROWS:
        if (r.numpy_in == row.numpy_in and r.numpy_out != r.numpy_in
                and numpy_dtype(r.numpy_out) == want):
            return r.code
    return -1
