# cython: language_level=3, cdivision=True
"""Every argument check of fastbmm, in torch's order, and the one operand intake.

Everything here runs with the GIL held and before any output is touched, so a
bad call raises without writing anything. The checks of a successful bmm call
are C-level reads of the arrays' headers; the messages are built by
``_errors`` only when a check fails.

Intake: ``as_operand`` is how every entry point (bmm, baddbmm, matmul, and
fastbmm.dask's in-memory operands through ``operand``) turns an argument into
an ndarray, and ``as_out`` does it for out=.

torch's order, observed with torch 2.13 (fastbmm's own checks of out= come
last in each: its shape, where torch would resize it; writeable; free of
self-overlap):

bmm (``check_bmm``)
    1. non-tensor arguments (TypeError, at intake), 2. rank of input, then of
    mat2, 3. batch and inner sizes, 4. out's dtype against mat2's, 5. input's
    dtype implemented, then mat2's dtype equal to input's. An ``out_dtype``
    other than the operands' own is checked right after the ranks.
baddbmm (``check_baddbmm``)
    ranks of batch1 and batch2 (torch, computing the result's shape from
    them, raises an IndexError), input expanded to (b, n, p), input's dtype
    against batch1's, sizes, out's dtype against batch2's (torch makes the
    result with batch2's options), input's dtype implemented, batch2's dtype,
    then alpha and beta (their conversion to the operation's type).
matmul (``check_matmul``)
    0-D operands, then the checks of the ATen function torch hands the
    operands to (dot, mv, mm or bmm: see ``_torch_route``), each in its order
    and with its own texts.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t

from ._dtypes cimport dtype_code

import sys

import numpy as np

from . import _errors
from ._dtypes import code_of, numpy_dtype, out_dtype_code

cnp.import_array()


# ----------------------------------------------------------------------------
# Intake


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
        raise _errors.dlpack_unreadable(fname, argname, e) from e
    return <cnp.ndarray>arr


# torch dtypes whose DLPack export NumPy refuses but fastbmm computes (through
# ml_dtypes): the torch integer type of the same size that carries their bits.
_DLPACK_CARRIERS = {"torch.bfloat16": "int16"}


cdef cnp.ndarray as_out_slow(object out, str fname):
    # as_out (_validation.pxd) for anything but None and a plain ndarray: a
    # subclass is viewed as a plain ndarray, which shares its memory, so
    # writing the view writes ``out``
    if cnp.PyArray_Check(out):
        _refuse_masked(out, "out", fname)
        return <cnp.ndarray>out.view(cnp.ndarray)
    raise _errors.out_not_an_array(fname, out)


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


# ----------------------------------------------------------------------------
# bmm


cdef int not_3d(str which) except -1:
    """Raise torch's "batch1 must be a 3D tensor" (``check_ranks``' error)."""
    raise _errors.not_3d(which)


def bmm_ranks(nd_a, nd_b):
    """``check_ranks`` (_validation.pxd) for Python callers (fastbmm.dask)."""
    check_ranks(nd_a, nd_b)


def bmm_sizes(shape_a, shape_b):
    """torch.bmm's size check on two 3-D shapes, for Python callers (fastbmm.dask)."""
    if shape_b[0] != shape_a[0] or shape_b[1] != shape_a[2]:
        raise _errors.batch2_size(shape_a, shape_b)


cdef int check_bmm(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, object out_dtype) except -1:
    """Raise what torch.bmm raises for these operands; return the engine's dtype code.

    With an ``out_dtype`` other than the operands' own, the code is the
    dtypes.def row that takes the operands to it (float16 -> float32).
    """
    # np.dtype() first: an out_dtype it cannot read is refused before the ranks
    want = None if out_dtype is None else np.dtype(out_dtype)
    check_ranks(cnp.PyArray_NDIM(a), cnp.PyArray_NDIM(b))
    cdef int code = dtype_code(a)
    cdef int result = code
    if want is not None and want != b.dtype.newbyteorder("="):
        result = out_dtype_code(code, want) if code >= 0 else -1
        if result < 0:
            raise _errors.bad_out_dtype("bmm", a.dtype, want)
    cdef cnp.npy_intp *sa = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp *sb = cnp.PyArray_DIMS(b)
    if sb[0] != sa[0] or sb[1] != sa[2]:
        raise _errors.batch2_size((<object>a).shape, (<object>b).shape)
    if out is not None:
        if result == code:
            if not same_scalar_type(out, b):
                raise _errors.out_dtype(b.dtype, out.dtype)
        elif dtype_code(out) != code_of(want):
            raise _errors.out_dtype(want, out.dtype)
    if code < 0:
        raise _errors.unsupported_dtype("bmm", a.dtype)
    if dtype_code(b) != code:
        raise _errors.dtype_mismatch(a.dtype, b.dtype)
    if out is None:
        return result
    # out's shape without building tuples: this is on a successful call's path
    cdef cnp.npy_intp *so = cnp.PyArray_DIMS(out)
    if cnp.PyArray_NDIM(out) != 3 or so[0] != sa[0] or so[1] != sa[1] or so[2] != sb[2]:
        raise _errors.out_shape((sa[0], sa[1], sb[2]), (<object>out).shape)
    check_writable(out)
    return result


# ----------------------------------------------------------------------------
# baddbmm


cdef cnp.ndarray check_baddbmm(cnp.ndarray d, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out,
                               object alpha, object beta, baddbmm_scalars *s):
    """Raise what torch.baddbmm raises; return ``input`` expanded to (b, n, p).

    ``s`` receives the dtype code and alpha and beta as the engine takes them.
    The expanded input is a view (zero strides where broadcast), never a copy.
    """
    check_ranks(cnp.PyArray_NDIM(a), cnp.PyArray_NDIM(b))
    shape_a, shape_b = (<object>a).shape, (<object>b).shape
    shape = (shape_a[0], shape_a[1], shape_b[2])
    bias = _expand(d, shape)
    if not same_scalar_type(d, a):
        raise _errors.input_dtypes("baddbmm", d.dtype, a.dtype, b.dtype)
    if shape_b[0] != shape_a[0] or shape_b[1] != shape_a[2]:
        raise _errors.batch2_size(shape_a, shape_b)
    if out is not None and not same_scalar_type(out, b):
        raise _errors.out_dtype(b.dtype, out.dtype)
    cdef int code = dtype_code(d)
    if code < 0:
        raise _errors.unsupported_dtype("baddbmm", d.dtype)
    if not same_scalar_type(d, b):
        raise _errors.dtype_mismatch(a.dtype, b.dtype)
    s.alpha, s.beta, s.ialpha, s.ibeta = _scalars(alpha, beta, d.dtype)
    s.code = code
    check_out(out, shape)
    return bias


cdef cnp.ndarray _expand(cnp.ndarray x, tuple shape):
    """x broadcast to shape (a view), with torch's expand() messages."""
    xs = (<object>x).shape
    if len(xs) > len(shape):
        raise _errors.expand_rank(x.dtype, xs, shape)
    for i in range(1, len(xs) + 1):
        if xs[-i] != 1 and xs[-i] != shape[-i]:
            raise _errors.expand_size(shape[-i], xs[-i], len(shape) - i, shape, xs)
    return <cnp.ndarray>np.broadcast_to(x, shape)


def _scalars(alpha, beta, dtype):
    """alpha and beta as the engine takes them, with torch's conversion rules.

    torch converts each scalar to the operation's type and refuses values
    that overflow it (c10::overflows): out of an integer type's range, NaN or
    infinite for an integer type, finite beyond float's range for float16 and
    float32 (computed in float), an imaginary part for a real type. Unsigned
    types also take negatives down to -max (they wrap). Floating-point scalars
    for integer types are then truncated.

    Returns
    -------
    alpha, beta : complex
    ialpha, ibeta : int
        For integer dtypes, the truncated values wrapped to 64 bits (1 and 0
        otherwise, unused).
    """
    for v in (alpha, beta):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, complex, np.number)):
            raise _errors.scalar_not_a_number(v)
    for v in (alpha, beta):
        if _overflows(v, dtype):
            raise _errors.scalar_overflow(dtype)
    if dtype.kind in "iu":
        ia, ib = _truncated(alpha), _truncated(beta)
        return complex(ia), complex(ib), _wrap64(ia), _wrap64(ib)
    return complex(alpha), complex(beta), 1, 0


def _truncated(v):
    """v truncated to an int, exactly: no float round trip for big ints (2**63-1)."""
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (complex, np.complexfloating)):
        v = v.real                      # _overflows has refused an imaginary part
    return int(v)                       # a float: int() truncates toward zero, exactly


def _overflows(v, dtype):
    z = complex(v)
    if dtype.kind != "c" and z.imag != 0:
        return True
    parts = [z.real, z.imag] if dtype.kind == "c" else [z.real]
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        x = v if isinstance(v, (int, np.integer)) else z.real
        if x != x or x in (float("inf"), float("-inf")):
            return True
        low = -int(info.max) if dtype.kind == "u" else int(info.min)
        return x < low or x > int(info.max)
    # float16 scalars are held as float (torch's opmath type)
    fmax = float(np.finfo(np.float64 if dtype.itemsize in (8, 16) else np.float32).max)
    return any(abs(x) != float("inf") and x == x and abs(x) > fmax for x in parts)


def _wrap64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= (1 << 63) else v


# ----------------------------------------------------------------------------
# matmul


def check_matmul(shape_a, shape_b, a, b, out=None, out_dtype=None, strides_a=None,
                 strides_b=None):
    """torch.matmul's checks, in torch's order, on shapes, strides and dtypes alone.

    Parameters
    ----------
    shape_a, shape_b : tuple of int
        The operands' shapes.
    a, b : ndarray
        Arrays of the operands' dtypes (only their dtypes are read: callers
        without the data, like ``fastbmm.dask``, pass empty stand-ins).
    out : ndarray, optional
        out=, for its dtype (its shape is the caller's to check).
    out_dtype : dtype, optional
    strides_a, strides_b : tuple of int, optional
        The operands' strides (bytes or elements: only their ratios count);
        None for C order. torch picks the function it hands an N-D operand
        to by its layout (see ``_torch_route``), and each function words its
        errors its own way.

    Returns
    -------
    batch, n, m, p, code, shape, result_dtype
        The broadcast batch shape; the matrix sizes after 1-D promotion; the
        engine's dtype code; the result's shape and dtype.
    """
    cdef int ra = len(shape_a), rb = len(shape_b)
    if ra == 0 or rb == 0:
        raise _errors.matmul_0d(ra, rb)
    route = _torch_route(tuple(shape_a), tuple(shape_b), strides_a, strides_b)
    a2s = (1,) + tuple(shape_a) if ra == 1 else tuple(shape_a)        # a row
    b2s = (shape_b[0], 1) if rb == 1 else tuple(shape_b)              # a column
    n, m = a2s[-2:]
    m2, p = b2s[-2:]
    batch = None
    if route == "bmm":
        batch = _broadcast_batch(a2s[:-2], b2s[:-2])
    if route == "dot":
        # torch's dot checks out='s dtype, then the operands', then sizes
        if (out is not None and out_dtype is None
                and out.dtype.newbyteorder("=") != a.dtype.newbyteorder("=")):
            raise _errors.matmul_out_dtype(route, a.dtype, a.dtype, b.dtype, out.dtype)
        if not same_scalar_type(a, b):
            _matmul_dtype(route, a, b)
    if m != m2:
        raise _errors.matmul_size(route, shape_a, shape_b, a2s, b2s, batch)
    if route != "bmm":
        batch = _broadcast_batch(a2s[:-2], b2s[:-2])
    result_dtype = a.dtype.newbyteorder("=")
    if out is not None and out_dtype is None:
        # torch checks out= before comparing the operands: mm/mv/dot against
        # input's dtype, bmm (as torch.bmm does) against the second operand's
        expected = b if route == "bmm" else a
        if not same_scalar_type(out, expected):
            raise _errors.matmul_out_dtype(route, expected.dtype, a.dtype, b.dtype, out.dtype)
    cdef int code = _matmul_dtype(route, a, b, out if out_dtype is None else None)
    if out_dtype is not None:
        want = np.dtype(out_dtype)
        variant = out_dtype_code(code, want)
        if variant >= 0:
            code = variant              # a row of dtypes.def: float16 -> float32
            result_dtype = want
        elif want != result_dtype:
            raise _errors.bad_out_dtype("matmul", a.dtype, want)
    shape = tuple(batch) + (n, p)
    if ra == 1:
        shape = shape[:-2] + shape[-1:]
    if rb == 1:
        shape = shape[:-1]
    if out is not None and out.dtype.newbyteorder("=") != result_dtype:
        raise _errors.matmul_out_dtype(route, result_dtype, a.dtype, b.dtype, out.dtype)
    return batch, n, m, p, code, shape, result_dtype


def _torch_route(shape_a, shape_b, strides_a, strides_b):
    """The ATen function torch.matmul hands these operands to: its errors are that function's.

    Ranks <= 2 go to dot, mv or mm. An N-D operand (N >= 3) against one of
    rank <= 2 is folded into the rows of one matrix (mv or mm on a view) only
    when its batch dimensions flatten into rows without a copy; otherwise,
    and whenever both are N-D, the batches are expanded and bmm runs. A 1-D
    ``input`` against an N-D ``other`` folds ``other``'s transpose ("mv_t":
    mv with the roles of matrix and vector swapped); a 2-D ``input`` never
    folds (torch would have to copy the transposed result).

    Returns "dot", "mv", "mm", "mv_t" or "bmm".
    """
    ra, rb = len(shape_a), len(shape_b)
    if ra <= 2 and rb <= 2:
        return "dot" if ra == 1 and rb == 1 else "mv" if rb == 1 else "mm"
    if rb <= 2:
        if _flattens_into_rows(shape_a, strides_a):
            return "mv" if rb == 1 else "mm"
        return "bmm"
    if ra == 1:
        strides_b = _c_strides(shape_b) if strides_b is None else tuple(strides_b)
        swap = lambda t: tuple(t[:-2]) + (t[-1], t[-2])      # other.mT
        if _flattens_into_rows(swap(shape_b), swap(strides_b)):
            return "mv_t"
    return "bmm"


def _flattens_into_rows(shape, strides):
    """torch's should_fold: x.view(-1, x.shape[-1]) needs no copy (or x is empty).

    The test is torch's literal one, stride[i] == stride[i+1] * shape[i+1]
    for every dimension but the last two, size-1 dimensions included: a
    layout NumPy could also view as rows, but torch's test refuses, must
    still take the bmm route to get torch's messages.
    """
    if strides is None or 0 in shape:
        return True
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(len(shape) - 2))


def _c_strides(shape):
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def _broadcast_batch(sa, sb):
    """The broadcast of two batch shapes, with torch's message on failure."""
    la, lb = len(sa), len(sb)
    L = max(la, lb)
    out = []
    for i in reversed(range(L)):        # torch reports the rightmost mismatch
        x = sa[i - (L - la)] if i >= L - la else 1
        y = sb[i - (L - lb)] if i >= L - lb else 1
        if x != y and x != 1 and y != 1:
            raise _errors.broadcast_batch(x, y, i)
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


cdef int _matmul_dtype(str route, cnp.ndarray a, cnp.ndarray b, object out=None) except -1:
    """The engine's dtype code, or the error of the torch function behind ``route``.

    ``out`` (None when absent or given an ``out_dtype``) matters to mv alone,
    whose message names the result's dtype first.
    """
    cdef int code = dtype_code(a)
    if route == "bmm" and code < 0:
        # torch's bmm dispatches on the first operand's dtype before comparing
        raise _errors.unsupported_dtype("bmm", a.dtype)
    if same_scalar_type(a, b):
        if code < 0:
            raise _errors.matmul_unsupported_dtype(route, a.dtype)
        return code
    raise _errors.matmul_dtypes(route, a.dtype, b.dtype, None if out is None else out.dtype)


# ----------------------------------------------------------------------------
# out= (fastbmm's own checks: torch would resize out=, and has no read-only
# or self-overlapping tensors)


cdef int check_out(cnp.ndarray out, tuple shape) except -1:
    """out='s shape, then ``check_writable``; nothing to check for None."""
    if out is None:
        return 0
    if (<object>out).shape != shape:
        raise _errors.out_shape(shape, (<object>out).shape)
    return check_writable(out)


cdef int check_writable(cnp.ndarray out) except -1:
    """out= writeable, and free of self-overlap (results would clobber each other)."""
    if not cnp.PyArray_ISWRITEABLE(out):
        raise _errors.out_read_only()
    if self_overlapping(out):
        raise _errors.out_self_overlapping((<object>out).strides)
    return 0


cdef bint same_view(cnp.ndarray x, cnp.ndarray y) noexcept:
    """The same data pointer and strides: each element of x *is* that of y."""
    cdef int i, nd = cnp.PyArray_NDIM(x)
    if cnp.PyArray_DATA(x) != cnp.PyArray_DATA(y) or cnp.PyArray_NDIM(y) != nd:
        return False
    for i in range(nd):
        if cnp.PyArray_STRIDE(x, i) != cnp.PyArray_STRIDE(y, i):
            return False
    return True


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
