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

import sys
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


#: The package that gives NumPy the dtypes it lacks (bfloat16), and the
#: optional dependency (extra) that installs it.
EXTRA_DTYPES_MODULE = "ml_dtypes"
EXTRA_DTYPES_INSTALL = 'pip install "fastbmm[bfloat16]" (or pip install ml_dtypes)'


def numpy_dtype(name, load=False):
    """The dtype called ``name``, or None where there is none.

    NumPy's own dtype of that name, else ml_dtypes' type of that name. An
    array of an ml_dtypes type can only exist once ml_dtypes is imported, so
    ml_dtypes is only looked up where it is already imported, or when
    ``load`` asks for it (a torch bfloat16 tensor about to become an
    ndarray): importing it costs more than importing fastbmm.
    """
    try:
        return np.dtype(name)
    except TypeError:
        pass
    module = sys.modules.get(EXTRA_DTYPES_MODULE)
    if module is None and load:
        try:
            import ml_dtypes as module
        except ImportError:
            return None
    scalar_type = getattr(module, name, None) if module is not None else None
    return np.dtype(scalar_type) if scalar_type is not None else None


def needs_extra(name):
    """Is dtype ``name`` one NumPy lacks (it needs ml_dtypes)?

    (Once ml_dtypes is imported, ``np.dtype("bfloat16")`` finds its type too,
    under a type number NumPy hands out at run time.)
    """
    try:
        return np.dtype(name).num >= cnp.NPY_NTYPES_LEGACY
    except TypeError:
        return True


#: The operand dtype names fastbmm computes, in code order (bfloat16's arrays
#: need ml_dtypes: ``needs_extra``).
SUPPORTED_NAMES = tuple(r.numpy_in for r in OPERAND_ROWS)

#: NumPy's own dtypes among them.
SUPPORTED = tuple(np.dtype(n) for n in SUPPORTED_NAMES if not needs_extra(n))


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
        if needs_extra(r.numpy_in):
            continue            # a registered type: _user_type_code
        d = np.dtype(r.numpy_in)
        for t in range(cnp.NPY_NTYPES_LEGACY):
            other = _descr(t)
            if other is not None and other == d and _code_by_typenum[t] < 0:
                _code_by_typenum[t] = r.code


_fill_typenum_table()

# Type numbers NumPy gives at run time to dtypes registered by other packages
# (ml_dtypes' bfloat16: NPY_USERDEF and up), found on first sight.
DEF _MAX_USER_TYPES = 8
cdef int _user_typenum[_MAX_USER_TYPES]
cdef int _user_code[_MAX_USER_TYPES]
cdef int _num_user_types = 0


cdef int _user_type_code(cnp.ndarray x) noexcept:
    global _num_user_types
    cdef int t = cnp.PyArray_TYPE(x), i
    for i in range(_num_user_types):
        if _user_typenum[i] == t:
            return _user_code[i]
    cdef int code = -1
    try:
        dtype = x.dtype
        for r in OPERAND_ROWS:
            if needs_extra(r.numpy_in) and numpy_dtype(r.numpy_in) == dtype:
                # (numpy_dtype: ml_dtypes is imported, or no such array exists)
                code = r.code
                break
    except Exception:
        return -1
    if _num_user_types < _MAX_USER_TYPES:
        _user_typenum[_num_user_types] = t
        _user_code[_num_user_types] = code
        _num_user_types += 1
    return code


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
    # beyond the built-in numbers: types registered at run time (NPY_USERDEF
    # and up, ml_dtypes'), and NumPy 2's new-style dtypes
    return _user_type_code(x)


cdef bint is_integer_code(int code) noexcept:
    """Is ``code`` one of the engine's integer (wrapping) dtypes?"""
    return 0 <= code < FBMM_NUM_DTYPES and _is_integer[code]


def code_of(dtype):
    """The engine's dtype code for operands of ``dtype``, or -1."""
    return dtype_code(np.empty(0, np.dtype(dtype)))


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
