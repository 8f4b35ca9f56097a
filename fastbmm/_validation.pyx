# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Argument checks for bmm, in torch.bmm's order and with torch.bmm's texts.

Everything here runs with the GIL held and before any output is touched, so a
bad call raises without writing anything. The checks are C-level attribute
reads on the arrays; the messages are built in ``_errors`` only when a check
fails, which keeps a successful call's overhead small.

torch's order, observed with torch 2.13:
  1. non-tensor arguments (TypeError), 2. rank of input, then of mat2,
  3. batch and inner sizes, 4. out's dtype against mat2's,
  5. input's dtype implemented, then mat2's dtype equal to input's.
fastbmm's own checks come last: 6. out's shape (torch would resize it),
7. out writeable, 8. out free of self-overlap.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t
from ._dtypes cimport dtype_code

import sys

import numpy as np
from . import _errors
from ._dtypes import code_of, numpy_dtype, out_dtype_code

cnp.import_array()


cdef cnp.ndarray as_operand(object x, str argname, int position, str fname):
    """The ndarray behind an input argument, or torch's TypeError.

    The one intake of every entry point (bmm, baddbmm, matmul, and through
    ``operand`` fastbmm.dask's non-dask operands), so that they all read the
    same objects the same way.

    Besides ndarrays (and subclasses other than masked arrays), any object
    that exports its memory is read in place, without a copy: through DLPack
    (``__dlpack__``, e.g. a CPU torch tensor) or the NumPy array interface.
    Sequences and scalars are refused, as torch refuses them; so are dask
    arrays, with a pointer to fastbmm.dask.
    """
    if type(x) is cnp.ndarray:
        return <cnp.ndarray>x
    if cnp.PyArray_Check(x):
        _refuse_masked(x, argname, fname)
        # Other subclasses (np.matrix, memmap, ...) are read as plain arrays.
        return <cnp.ndarray>x.view(cnp.ndarray)
    if isinstance(x, np.generic):
        # NumPy scalars export the array interface too, but are no arrays
        raise _errors.not_an_array(fname, argname, position, x)
    if hasattr(x, "__dask_graph__"):
        # np.asarray would compute the whole graph into memory, silently
        raise _errors.dask_array(fname, argname, position, x)
    if hasattr(x, "__dlpack__"):
        return _from_dlpack(x, argname, fname)
    if hasattr(x, "__array_interface__") or hasattr(x, "__array_struct__"):
        return <cnp.ndarray>np.asarray(x)
    raise _errors.not_an_array(fname, argname, position, x)


def operand(x, argname, position, fname):
    """``as_operand`` for Python callers (fastbmm.dask): the ndarray behind x."""
    return as_operand(x, argname, position, fname)


cdef cnp.ndarray _from_dlpack(object x, str argname, str fname):
    # Everything DLPack or NumPy would refuse with a bare BufferError,
    # RuntimeError or ValueError is named here first.
    dtype = getattr(x, "dtype", None)
    if _errors.torch_dtype_without_numpy(dtype) is not None:
        # complex32, float8, ...: NumPy's from_dlpack has no dtype for them
        raise _errors.unsupported_torch_dtype(fname, argname, dtype)
    # A dtype NumPy holds only through ml_dtypes (bfloat16): NumPy's
    # from_dlpack refuses its DLPack code ("Unsupported dtype in DLTensor"),
    # so the tensor is exported as its same-size integer bits and viewed back.
    carrier = _DLPACK_CARRIERS.get(str(dtype)) if type(dtype).__module__ == "torch" else None
    cdef object target = None
    if carrier is not None:
        target = numpy_dtype(str(dtype)[len("torch."):], load=True)
        if target is None:
            raise _errors.needs_extra_dtypes(fname, argname, _errors.torch_dtype_name(dtype))
    if getattr(x, "requires_grad", False) is True:
        raise _errors.requires_grad(fname, argname)
    if getattr(getattr(x, "device", None), "type", None) == "meta":
        # no memory at all, and no DLPack device type to say so
        raise _errors.not_on_cpu(fname, argname, "the meta device (shapes only, no data)")
    # torch's lazy negation and conjugation are flags DLPack cannot carry:
    # exported as they are, the values would come out unnegated/unconjugated.
    # Materialise them (the one case that copies).
    if callable(getattr(x, "is_neg", None)) and x.is_neg():
        x = x.resolve_neg()
    if callable(getattr(x, "is_conj", None)) and x.is_conj():
        x = x.resolve_conj()
    if hasattr(x, "__dlpack_device__"):
        try:
            dev = x.__dlpack_device__()
        except (BufferError, RuntimeError, ValueError, TypeError) as e:
            raise _errors.not_on_cpu(fname, argname, f"a device DLPack cannot name ({e})") from e
        if int(dev[0]) != 1:            # DLPack's kDLCPU
            raise _errors.not_on_cpu(fname, argname, dev)
    try:
        if target is not None:
            arr = np.from_dlpack(x.view(getattr(sys.modules["torch"], carrier))).view(target)
        else:
            arr = np.from_dlpack(x)
    except (BufferError, RuntimeError, ValueError) as e:
        raise TypeError(f"{fname}(): argument '{argname}' exports DLPack memory that NumPy "
                        f"cannot read ({type(e).__name__}: {e})") from e
    return <cnp.ndarray>arr


# torch dtypes whose DLPack export NumPy refuses but fastbmm computes (through
# ml_dtypes): the torch integer type of the same size that carries their bits.
_DLPACK_CARRIERS = {"torch.bfloat16": "int16"}


cdef cnp.ndarray as_out(object out, str fname):
    if type(out) is cnp.ndarray:
        return <cnp.ndarray>out
    if cnp.PyArray_Check(out):
        _refuse_masked(out, "out", fname)
        # A subclass's view shares its memory: writing the view writes out.
        return <cnp.ndarray>out.view(cnp.ndarray)
    raise TypeError(f"{fname}(): argument 'out' must be ndarray, not {type(out).__name__}")


cdef _refuse_masked(object x, str argname, str fname):
    from numpy.ma import MaskedArray
    if isinstance(x, MaskedArray):
        raise _errors.masked_array(fname, argname)


cdef bint same_scalar_type(cnp.ndarray x, cnp.ndarray y):
    """Same element type, whatever the byte order ('>f4' is still torch's Float)."""
    cdef int cx = dtype_code(x), cy = dtype_code(y)
    if cx >= 0 or cy >= 0:
        return cx == cy
    dx, dy = x.dtype, y.dtype
    return dx.newbyteorder("=") == dy.newbyteorder("=")


cdef int check_bmm(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out) except -1:
    """Raise what torch.bmm raises for these operands; return the dtype code."""
    if cnp.PyArray_NDIM(a) != 3:
        raise _errors.not_3d("batch1")
    if cnp.PyArray_NDIM(b) != 3:
        raise _errors.not_3d("batch2")
    cdef cnp.npy_intp *sa = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp *sb = cnp.PyArray_DIMS(b)
    if sb[0] != sa[0] or sb[1] != sa[2]:
        raise _errors.batch2_size((<object>a).shape, (<object>b).shape)
    if out is not None and not same_scalar_type(out, b):
        raise _errors.out_dtype(b.dtype, out.dtype)
    cdef int code = dtype_code(a)
    if code < 0:
        raise _errors.unsupported_dtype("bmm", a.dtype)
    if dtype_code(b) != code:
        raise _errors.dtype_mismatch(a.dtype, b.dtype)
    if out is None:
        return code
    cdef cnp.npy_intp *so = cnp.PyArray_DIMS(out)
    if cnp.PyArray_NDIM(out) != 3 or so[0] != sa[0] or so[1] != sa[1] or so[2] != sb[2]:
        raise _errors.out_shape((sa[0], sa[1], sb[2]), (<object>out).shape)
    check_out(out, (sa[0], sa[1], sb[2]))
    return code


cdef int check_bmm_out_dtype(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out,
                             object out_dtype) except -1:
    """check_bmm, with an explicit result dtype (float16 operands, float32 result)."""
    want = np.dtype(out_dtype)
    if cnp.PyArray_NDIM(a) != 3:
        raise _errors.not_3d("batch1")
    if cnp.PyArray_NDIM(b) != 3:
        raise _errors.not_3d("batch2")
    cdef int code = dtype_code(a)
    if want == b.dtype.newbyteorder("="):
        return check_bmm(a, b, out)
    # a row of dtypes.def from these operands to `want` (float16 -> float32)
    cdef int variant = out_dtype_code(code, want) if code >= 0 else -1
    if variant < 0:
        raise _errors.bad_out_dtype("bmm", a.dtype, want)
    cdef cnp.npy_intp *sa = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp *sb = cnp.PyArray_DIMS(b)
    if sb[0] != sa[0] or sb[1] != sa[2]:
        raise _errors.batch2_size((<object>a).shape, (<object>b).shape)
    if out is not None and dtype_code(out) != code_of(want):
        raise _errors.out_dtype(want, out.dtype)
    if dtype_code(b) != code:
        raise _errors.dtype_mismatch(a.dtype, b.dtype)
    if out is not None:
        check_out(out, (sa[0], sa[1], sb[2]))
    return variant


cdef int check_out(cnp.ndarray out, tuple shape) except -1:
    """fastbmm's own checks of out=: shape (torch would resize), writeable, no self-overlap."""
    if (<object>out).shape != shape:
        raise _errors.out_shape(shape, (<object>out).shape)
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("out= is read-only")
    if self_overlapping(out):
        raise ValueError(
            "out= has overlapping elements (a zero or overlapping stride, as from "
            f"np.broadcast_to or as_strided: strides {(<object>out).strides}); results written "
            "through it would clobber each other")
    return 0


cdef bint self_overlapping(cnp.ndarray x) noexcept:
    """True unless x's elements provably occupy disjoint memory.

    The test is the usual sufficient one: sorted by |stride|, each axis must
    step past everything the smaller axes span. It never misses an overlap; it
    may refuse an exotic interleaved view that does not overlap, which is the
    safe side for an output.
    """
    cdef int nd = cnp.PyArray_NDIM(x), i, j, k
    cdef cnp.npy_intp *shape = cnp.PyArray_DIMS(x)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(x)
    cdef int64_t extent, s
    # NPY_MAXDIMS of the headers built against: 64 for NumPy 2 (32 for 1.x,
    # whose arrays then have at most 32). A literal 32 here once overran the
    # stack for a 33- to 64-dimensional out= under NumPy 2.
    cdef int64_t order[cnp.NPY_MAXDIMS]
    cdef int n = 0
    if cnp.PyArray_SIZE(x) <= 1:
        return False
    if nd > cnp.NPY_MAXDIMS:
        return True                     # cannot happen (ABI); refusing is the safe side
    for i in range(nd):
        if shape[i] > 1:
            order[n] = i
            n += 1
    # insertion sort of the axes by |stride|
    for i in range(1, n):
        k = <int>order[i]
        j = i - 1
        while j >= 0 and _abs(strides[order[j]]) > _abs(strides[k]):
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = k
    extent = cnp.PyArray_ITEMSIZE(x)
    for i in range(n):
        s = _abs(strides[order[i]])
        if s < extent:
            return True
        extent = s * (shape[order[i]] - 1) + extent
    return False


cdef inline int64_t _abs(int64_t v) noexcept:
    return -v if v < 0 else v


cdef inline void _bounds(cnp.ndarray x, char **lo, char **hi) noexcept:
    """[lo, hi): the bytes x's elements can touch."""
    cdef int i
    cdef char *low = <char *>cnp.PyArray_DATA(x)
    cdef char *high
    high = low
    cdef cnp.npy_intp *shape = cnp.PyArray_DIMS(x)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(x)
    for i in range(cnp.PyArray_NDIM(x)):
        if strides[i] < 0:
            low += strides[i] * (shape[i] - 1)
        else:
            high += strides[i] * (shape[i] - 1)
    lo[0] = low
    hi[0] = high + cnp.PyArray_ITEMSIZE(x)


cdef bint overlaps(cnp.ndarray x, cnp.ndarray y) noexcept:
    """May x and y share memory? (bounds test, like np.may_share_memory)"""
    cdef char *xl
    cdef char *xh
    cdef char *yl
    cdef char *yh
    if cnp.PyArray_SIZE(x) == 0 or cnp.PyArray_SIZE(y) == 0:
        return False
    _bounds(x, &xl, &xh)
    _bounds(y, &yl, &yh)
    return xl < yh and yl < xh
