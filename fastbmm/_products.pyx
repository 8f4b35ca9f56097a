# cython: language_level=3, cdivision=True
"""baddbmm and matmul: torch's relatives of bmm, on the same engine.

Both become one engine problem, like bmm:

* baddbmm adds an epilogue, ``C = alpha * (A @ B) + beta * D``, applied as each
  tile is written (``D`` is ``input`` broadcast to C's shape by zero strides);
* matmul flattens its broadcast batch dimensions into one batch and hands the
  engine their shape and each operand's byte strides (zero where broadcast),
  so that no broadcast copy of an operand, and no per-entry table, is made.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memset

from ._bmm cimport describe, init_bmm_problem, init_problem, native, run_problem
from ._dtypes cimport dtype_code, is_integer_code
from ._engine cimport FBMM_MAX_BATCH_DIMS, FBMM_NUM_DTYPES, fbmm_batch_dims, fbmm_operand, fbmm_problem
from ._validation cimport as_operand, as_out, check_out, overlaps, same_scalar_type

import numpy as np

from . import _errors
from ._dtypes import ROWS, out_dtype_code

cnp.import_array()


# ----------------------------------------------------------------------------
# baddbmm


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    """``beta * input + alpha * (batch1 @ batch2)``, with torch.baddbmm's contract.

    .. math:: \\mathrm{out}_i = \\beta \\, \\mathrm{input}_i
              + \\alpha \\, \\mathrm{batch1}_i \\, \\mathrm{batch2}_i

    Parameters
    ----------
    input : ndarray
        Broadcastable to (b, n, p) (a scalar, a bias row (p,), a mask (n, p),
        ...). With ``beta == 0`` its values are ignored (NaN and Inf in it do
        not propagate), as in torch; its shape is still checked. "0" is
        beta's value in the type the kernel applies it in (float32 for
        float16 and float32: ``beta=1e-50`` is 0 there).
    batch1 : ndarray, shape (b, n, m)
    batch2 : ndarray, shape (b, m, p)
        All three of one dtype (see :func:`fastbmm.bmm` for the dtypes).
    beta, alpha : number
        Applied inside the kernel's write-back, not as extra passes. For
        integer dtypes they are truncated to integers, as torch does, exactly
        (no float round trip: ``2**63 - 1`` stays itself), and the arithmetic
        wraps (``beta=-1`` with uint8 is 255); complex values need complex
        operands.
    out : ndarray, shape (b, n, p), optional
        Written in place and returned; it may be ``input`` itself.

    Returns
    -------
    ndarray, shape (b, n, p)
        ``out``, or a new C-contiguous array of the operands' dtype.

    Raises
    ------
    TypeError
        An operand is not an ndarray (or is a masked array); ``alpha`` or
        ``beta`` is not a number, or is a bool.
    ShapeError (RuntimeError, ValueError)
        ``batch1``/``batch2`` not 3-D or of mismatched sizes, ``input`` not
        broadcastable to (b, n, p), out= of the wrong shape; torch's messages.
    DtypeError (RuntimeError, TypeError)
        Operands (or out=) of different dtypes; ``alpha`` or ``beta`` that the
        dtype cannot hold (out of an integer's range, complex for a real
        dtype), with torch's messages.
    UnsupportedDtypeError (NotImplementedError, TypeError)
        bool, unsigned 16/32/64-bit, and dtypes torch has no tensor for.
    ValueError
        out= read-only, or with overlapping elements.

    See Also
    --------
    bmm : the product alone.

    Examples
    --------
    A bias row broadcast over every matrix, ``2 * bias + 0.5 * (x @ y)``:

    >>> import numpy as np
    >>> import fastbmm
    >>> x = np.ones((2, 3, 4), np.float32)
    >>> y = np.ones((2, 4, 5), np.float32)
    >>> bias = np.arange(5, dtype=np.float32)
    >>> fastbmm.baddbmm(bias, x, y, beta=2, alpha=0.5)[0]
    array([[ 2.,  4.,  6.,  8., 10.],
           [ 2.,  4.,  6.,  8., 10.],
           [ 2.,  4.,  6.,  8., 10.]], dtype=float32)

    A causal attention mask, added as the scores are written:

    >>> mask = np.triu(np.full((3, 3), -np.inf, np.float32), k=1)
    >>> q = np.ones((1, 3, 2), np.float32)
    >>> fastbmm.baddbmm(mask, q, q.transpose(0, 2, 1))
    array([[[  2., -inf, -inf],
            [  2.,   2., -inf],
            [  2.,   2.,   2.]]], dtype=float32)

    With ``beta=0`` the values of ``input`` are ignored, NaN included:

    >>> fastbmm.baddbmm(np.full(5, np.nan, np.float32), x, y, beta=0)[0, 0]
    array([4., 4., 4., 4., 4.], dtype=float32)

    For integer dtypes ``alpha`` and ``beta`` are truncated, as in torch
    (here ``beta=0.5`` becomes 0 and drops ``input``):

    >>> i = np.ones((1, 1, 2), np.int32)
    >>> fastbmm.baddbmm(np.full((1, 1), 7, np.int32), i, i.transpose(0, 2, 1), beta=0.5)
    array([[[2]]], dtype=int32)
    """
    cdef cnp.ndarray d = as_operand(input, "input", 1, "baddbmm")
    cdef cnp.ndarray a = as_operand(batch1, "batch1", 2, "baddbmm")
    cdef cnp.ndarray b = as_operand(batch2, "batch2", 3, "baddbmm")
    cdef cnp.ndarray o = None if out is None else as_out(out, "baddbmm")
    # torch's order: expand, input dtype, sizes, out's dtype (against batch2's:
    # torch makes the result with batch2's options), then the kernel's
    # (dispatch on input's dtype, batch2's dtype, scalars). Ranks come first here: torch,
    # computing the result's shape from them, raises an IndexError.
    if cnp.PyArray_NDIM(a) != 3:
        raise _errors.not_3d("batch1")
    if cnp.PyArray_NDIM(b) != 3:
        raise _errors.not_3d("batch2")
    shape_a, shape_b = (<object>a).shape, (<object>b).shape
    shape = (shape_a[0], shape_a[1], shape_b[2])
    bias = _expand(d, shape)
    if not same_scalar_type(d, a):
        raise _errors.input_dtypes("baddbmm", d.dtype, a.dtype, b.dtype)
    if shape_b[0] != shape_a[0] or shape_b[1] != shape_a[2]:
        raise _errors.batch2_size(shape_a, shape_b)
    if o is not None and not same_scalar_type(o, b):
        raise _errors.out_dtype(b.dtype, o.dtype)
    cdef int code = dtype_code(d)
    if code < 0:
        raise _errors.unsupported_dtype("baddbmm", d.dtype)
    if not same_scalar_type(d, b):
        raise _errors.dtype_mismatch(a.dtype, b.dtype)
    cdef int64_t ialpha, ibeta
    alpha_c, beta_c, ialpha, ibeta = _scalars(alpha, beta, d.dtype)
    if o is not None:
        check_out(o, shape)

    cdef cnp.ndarray target
    # "use the bias" is decided on beta as the kernel holds it (beta=1e-50 is
    # 0 in float32: input's NaN must not leak), the same for every m
    cdef bint use_bias = _nonzero_in(beta_c, ibeta, d.dtype)
    if o is None:
        target = np.empty(shape, dtype=d.dtype.newbyteorder("="))
    elif (cnp.PyArray_ISBYTESWAPPED(o) or overlaps(o, a) or overlaps(o, b)
          or (use_bias and overlaps(o, bias) and not _same_view(o, bias))):
        # out= overlaps an operand in a way the tile-by-tile write-back cannot
        # survive: form the result apart, then copy it in. (out= *being* input
        # is fine: each element reads its bias just before it is written.)
        target = np.empty(shape, dtype=d.dtype.newbyteorder("="))
    else:
        target = o
    if target.size:
        if shape_a[2] == 0:
            # an empty product: beta * input alone (torch: input.mul_(beta),
            # alpha unused), in the kernel's arithmetic: integers wrap
            if use_bias:
                scale = _in_opmath(beta_c, ibeta, d.dtype)
                np.multiply(bias, scale, out=target, dtype=scale.dtype, casting="unsafe")
            else:
                target.fill(0)
        else:
            _compute_baddbmm(native(a), native(b), target, native(bias), code,
                             use_bias, alpha_c, beta_c, ialpha, ibeta)
    if o is None:
        return target
    if target is not o:
        o[...] = target
    return out


cdef int _compute_baddbmm(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c, cnp.ndarray d,
                          int code, bint use_bias, object alpha, object beta,
                          int64_t ialpha, int64_t ibeta) except -1:
    cdef fbmm_problem P
    init_bmm_problem(&P, code, a, b, c)
    cdef complex ca = alpha, cb = beta
    P.ep.alpha[0] = ca.real
    P.ep.alpha[1] = ca.imag
    P.ep.beta[0] = cb.real
    P.ep.beta[1] = cb.imag
    P.ep.ialpha = <uint64_t>ialpha
    P.ep.ibeta = <uint64_t>ibeta
    P.ep.real_scalars = ca.imag == 0 and cb.imag == 0
    if is_integer_code(code):
        P.ep.scaled = ialpha != 1
    else:
        P.ep.scaled = ca != 1
    if use_bias:
        describe(&P.d, d)
        P.ep.has_bias = 1
        P.ep.d_sr = P.d.sr
        P.ep.d_sc = P.d.sc
    return run_problem(&P)


cdef cnp.ndarray _expand(cnp.ndarray x, tuple shape):
    """x broadcast to shape (a view), with torch's expand() messages."""
    xs = (<object>x).shape
    if len(xs) > len(shape):
        raise _errors.expand_rank(x.dtype, xs, shape)
    for i in range(1, len(xs) + 1):
        if xs[-i] != 1 and xs[-i] != shape[-i]:
            raise _errors.expand_size(shape[-i], xs[-i], len(shape) - i, shape, xs)
    return <cnp.ndarray>np.broadcast_to(x, shape)


cdef bint _same_view(cnp.ndarray x, cnp.ndarray y):
    return (cnp.PyArray_DATA(x) == cnp.PyArray_DATA(y)
            and (<object>x).strides == (<object>y).strides)


def _scalars(alpha, beta, dtype):
    """alpha and beta as the engine takes them, with torch's conversion rules.

    torch converts each scalar to the operation's type and refuses values
    that overflow it (c10::overflows): out of an integer type's range, NaN or
    infinite for an integer type, finite beyond float's range for float16 and
    float32 (computed in float), an imaginary part for a real type. Unsigned
    types also take negatives down to -max (they wrap). Floating-point scalars
    for integer types are then truncated.
    """
    for v in (alpha, beta):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, complex, np.number)):
            raise TypeError(f"baddbmm(): alpha and beta must be numbers, not {type(v).__name__}")
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


# The types the kernel computes the epilogue in (torch's opmath types): the
# staged dtypes of dtypes.def (float16, bfloat16) in float32, their family's
# accumulator; every other dtype in itself.
_OPMATH = {r.numpy_in: np.dtype(np.float32) for r in ROWS if r.staged}


def _in_opmath(beta, int64_t ibeta, dtype):
    """beta as a 0-d array of the type the kernel applies it in; integers wrapped to dtype."""
    dtype = dtype.newbyteorder("=")
    if dtype.kind in "iu":
        # two's complement: -1 is 255 for uint8 (astype wraps; NumPy 2 would
        # refuse the Python int -1 as a uint8 operand)
        return np.array(ibeta, np.int64).astype(dtype)
    op = _OPMATH.get(dtype.name, dtype)
    return np.array(beta if op.kind == "c" else beta.real, op)


def _nonzero_in(beta, int64_t ibeta, dtype):
    """Is beta non-zero as the kernel holds it (see _in_opmath)?"""
    return bool(_in_opmath(beta, ibeta, dtype) != 0)


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


def matmul(input, other, *, out=None, out_dtype=None):
    """Matrix product with NumPy's (and torch.matmul's) broadcasting rules.

    * 1-D ``input`` is a row (1, m) and 1-D ``other`` a column (m, 1); the
      added dimension is removed from the result.
    * Dimensions before the last two are batch dimensions and broadcast
      against each other, any number of them, without copying: each batch
      entry of the result reads its operands where they lie.

    Parameters
    ----------
    input, other : ndarray (or any object exporting DLPack / the array interface)
        At least 1-D, of one dtype (see :func:`fastbmm.bmm`).
    out : ndarray, optional
        Of the result's shape and dtype; written in place and returned.
    out_dtype : dtype, optional
        ``numpy.float32`` for float16 operands (the sums are not rounded to
        float16); the operands' own dtype is the same as None.

    Returns
    -------
    ndarray
        ``input @ other``: ``out``, or a new C-contiguous array of the
        operands' dtype (float32 with ``out_dtype=np.float32``).

    Raises
    ------
    TypeError
        An operand is not an array (or is a masked array).
    ShapeError (RuntimeError, ValueError)
        A 0-D operand, inner sizes that differ, batch dimensions that do not
        broadcast, out= of the wrong shape; torch.matmul's message for each
        rank combination.
    DtypeError (RuntimeError, TypeError)
        Operands (or out=) of different dtypes, an ``out_dtype`` other than
        the operands' or float32 for float16; torch's messages.
    UnsupportedDtypeError (NotImplementedError, TypeError)
        bool, unsigned 16/32/64-bit, and dtypes torch has no tensor for.
    ValueError
        out= read-only, or with overlapping elements.

    See Also
    --------
    bmm : exactly 3-D operands, no broadcasting (torch.bmm).

    Examples
    --------
    16 weight matrices applied to 32 inputs each: the batch dimensions
    (32, 1) and (16,) broadcast to (32, 16), without copying either operand:

    >>> import numpy as np
    >>> import fastbmm
    >>> w = np.ones((16, 64, 8), np.float32)
    >>> x = np.ones((32, 1, 10, 64), np.float32)
    >>> fastbmm.matmul(x, w).shape
    (32, 16, 10, 8)

    1-D operands are a row on the left and a column on the right, as in NumPy:

    >>> m = np.arange(6.0).reshape(2, 3)
    >>> fastbmm.matmul(m, np.ones(3))
    array([ 3., 12.])
    >>> fastbmm.matmul(np.ones(2), m)
    array([3., 5., 7.])

    Sizes that do not match raise torch.matmul's error for these ranks:

    >>> try:
    ...     fastbmm.matmul(m, m)
    ... except ValueError as error:
    ...     print(type(error).__name__, "-", error)
    ShapeError - mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)
    """
    cdef cnp.ndarray a = as_operand(input, "input", 1, "matmul")
    cdef cnp.ndarray b = as_operand(other, "other", 2, "matmul")
    cdef cnp.ndarray o = None if out is None else as_out(out, "matmul")
    sa, sb = (<object>a).shape, (<object>b).shape
    batch, n, m, p, code, shape, result_dtype = check_matmul(
        sa, sb, a, b, o, out_dtype, (<object>a).strides, (<object>b).strides)
    if o is not None:
        check_out(o, shape)
    cdef int ra = len(sa), rb = len(sb)
    a2 = a[None, :] if ra == 1 else a           # a row
    b2 = b[:, None] if rb == 1 else b           # a column
    full_shape = tuple(batch) + (n, p)
    cdef cnp.ndarray target
    if o is None or cnp.PyArray_ISBYTESWAPPED(o) or overlaps(o, a) or overlaps(o, b):
        target = np.empty(shape, dtype=result_dtype)
    else:
        target = o
    if target.size:
        full = target.reshape(full_shape) if target is not o else _expand_dims(o, ra, rb)
        if m == 0:
            full.fill(0)
        else:
            _compute_matmul(native(a2), native(b2), full, code, batch)
    if o is None:
        return target
    if target is not o:
        o[...] = target
    return out


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
        raise _errors.ShapeError(
            f"both arguments to matmul need to be at least 1D, but they are {ra}D and {rb}D")
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
            raise _matmul_out_dtype_error(route, a.dtype, a.dtype, b.dtype, out.dtype)
        if not same_scalar_type(a, b):
            _matmul_dtype(route, a, b)
    if m != m2:
        raise _matmul_size_error(route, shape_a, shape_b, a2s, b2s, batch)
    if route != "bmm":
        batch = _broadcast_batch(a2s[:-2], b2s[:-2])
    result_dtype = a.dtype.newbyteorder("=")
    if out is not None and out_dtype is None:
        # torch checks out= before comparing the operands: mm/mv/dot against
        # input's dtype, bmm (as torch.bmm does) against the second operand's
        expected = b if route == "bmm" else a
        if not same_scalar_type(out, expected):
            raise _matmul_out_dtype_error(route, expected.dtype, a.dtype, b.dtype, out.dtype)
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
        raise _matmul_out_dtype_error(route, result_dtype, a.dtype, b.dtype, out.dtype)
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


def _expand_dims(o, ra, rb):
    # a view of out= with the dimensions that 1-D operands removed put back
    if ra == 1:
        o = np.expand_dims(o, -2 if rb > 1 else -1)
    if rb == 1:
        o = np.expand_dims(o, -1)
    return o


def _broadcast_batch(sa, sb):
    """The broadcast of two batch shapes, with torch's message on failure."""
    la, lb = len(sa), len(sb)
    L = max(la, lb)
    out = []
    for i in reversed(range(L)):        # torch reports the rightmost mismatch
        x = sa[i - (L - la)] if i >= L - la else 1
        y = sb[i - (L - lb)] if i >= L - lb else 1
        if x != y and x != 1 and y != 1:
            raise _errors.ShapeError(
                f"The size of tensor a ({x}) must match the size of tensor b ({y}) "
                f"at non-singleton dimension {i}")
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


def _matmul_size_error(route, sa, sb, a2, b2, batch):
    if route == "dot":
        return _errors.ShapeError(
            f"inconsistent tensor size, expected tensor [{sa[0]}] and src [{sb[0]}] to have the "
            f"same number of elements, but got {sa[0]} and {sb[0]} elements respectively")
    if route == "mv":
        rows = int(np.prod(a2[:-1]))
        return _errors.ShapeError(
            f"size mismatch, got input ({rows}), mat ({rows}x{a2[-1]}), vec ({sb[0]})")
    if route == "mv_t":
        # other.mT folded: (batch..., p) rows of other's inner size, times input
        rows = int(np.prod(sb[:-2])) * sb[-1]
        return _errors.ShapeError(
            f"size mismatch, got input ({rows}), mat ({rows}x{sb[-2]}), vec ({sa[0]})")
    if route == "mm":
        rows = int(np.prod(a2[:-1]))
        return _errors.ShapeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{a2[-1]} and {b2[-2]}x{b2[-1]})")
    nb = int(np.prod(batch))
    return _errors.ShapeError(
        "Expected size for first two dimensions of batch2 tensor to be: "
        f"[{nb}, {a2[-1]}] but got: [{nb}, {b2[-2]}].")


def _matmul_out_dtype_error(route, result, da, db, dout):
    name = _errors.scalar_name
    if route == "dot":
        return _errors.DtypeError(
            f"result dtype {name(dout)} does not match input dtype {name(da)}")
    if route in ("mv", "mv_t"):
        mat, vec = (db, da) if route == "mv_t" else (da, db)
        return _errors.DtypeError(
            "addmv input tensors must have the same dtype, but got "
            f"{name(dout)}, {name(mat)}, and {name(vec)}")
    return _errors.out_dtype(result, dout)


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
            kernel = {"dot": "dot", "mv": "addmv_impl_cpu", "mv_t": "addmv_impl_cpu",
                      "mm": "addmm_impl_cpu_", "bmm": "bmm"}[route]
            raise _errors.unsupported_dtype(kernel, a.dtype)
        return code
    if route == "dot":
        raise _errors.DtypeError(
            "dot : expected both vectors to have same dtype, but found "
            f"{_errors.scalar_name(a.dtype)} and {_errors.scalar_name(b.dtype)}")
    if route in ("mv", "mv_t"):
        # "got result, matrix, vector": mv's result is out=, else new of the vector's dtype
        mat, vec = (a, b) if route == "mv" else (b, a)
        result = vec if out is None else out
        raise _errors.DtypeError(
            "addmv input tensors must have the same dtype, but got "
            f"{_errors.scalar_name(result.dtype)}, {_errors.scalar_name(mat.dtype)}, and "
            f"{_errors.scalar_name(vec.dtype)}")
    if route == "mm":
        raise _errors.DtypeError(
            "expected m1 and m2 to have the same dtype, but got: "
            f"{_errors.cpp_name(a.dtype)} != {_errors.cpp_name(b.dtype)}")
    raise _errors.dtype_mismatch(a.dtype, b.dtype)


cdef void _describe_matrix(fbmm_operand *op, cnp.ndarray x) noexcept:
    # x's data pointer and its last two (row, column) byte strides
    cdef int nd = cnp.PyArray_NDIM(x)
    op.data = <char *>cnp.PyArray_DATA(x)
    op.sr = cnp.PyArray_STRIDE(x, nd - 2)
    op.sc = cnp.PyArray_STRIDE(x, nd - 1)


cdef int _describe_batched(fbmm_problem *P, fbmm_batch_dims *bd, tuple operands,
                           tuple batch) except -1:
    """The broadcast batch of A, B, C (``operands``) as the engine reads it.

    Every operand gets one byte stride per dimension of ``batch`` (0 where it
    is broadcast: missing or of size 1). Dimensions of size 1 are dropped, and
    neighbours merged where every operand steps evenly across them (a
    C-contiguous result, a plain 3-D stack); what remains is one dimension
    (then each operand's ``sb`` is its stride, and the engine needs nothing
    more) or several, described in ``bd`` (shape and strides: O(ndim) memory,
    whatever the number of entries). ``bd`` must outlive the engine's run.
    """
    cdef int L = len(batch), i, k, nops = len(operands)
    rows = []
    for x in operands:
        xb, xs = x.shape[:-2], x.strides[:-2]
        rows.append((0,) * (L - len(xb)) + tuple(s if d != 1 else 0 for d, s in zip(xb, xs)))
    dims = []                       # [size, strides of A, B, C], outermost first
    for i in range(L):
        size = batch[i]
        if size == 1:
            continue
        st = [r[i] for r in rows]
        # merge into the outer neighbour: i_out * s_out + i * s == (i_out * size + i) * s
        if dims and all(dims[-1][1 + k] == st[k] * size for k in range(nops)):
            dims[-1] = [dims[-1][0] * size] + st
        else:
            dims.append([size] + st)
    if len(dims) > FBMM_MAX_BATCH_DIMS:
        raise ValueError(f"fastbmm: more than {FBMM_MAX_BATCH_DIMS} batch dimensions")
    cdef fbmm_operand *ops[3]
    ops[0], ops[1], ops[2] = &P.a, &P.b, &P.c
    if len(dims) <= 1:
        for k in range(nops):
            ops[k].sb = dims[0][1 + k] if dims else 0
        P.bdims = NULL
        return 0
    memset(bd, 0, sizeof(fbmm_batch_dims))
    bd.ndim = len(dims)
    for i in range(bd.ndim):
        bd.shape[i] = dims[i][0]
        for k in range(nops):
            bd.strides[k][i] = dims[i][1 + k]
    P.bdims = bd
    return 0


cdef int _compute_matmul(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c, int code,
                         tuple batch) except -1:
    cdef fbmm_problem P
    cdef fbmm_batch_dims bd            # on this frame: lives until the engine returns
    cdef int64_t nb = 1
    for d in batch:
        nb *= d
    init_problem(&P, code, nb, cnp.PyArray_DIM(a, cnp.PyArray_NDIM(a) - 2),
                 cnp.PyArray_DIM(a, cnp.PyArray_NDIM(a) - 1),
                 cnp.PyArray_DIM(b, cnp.PyArray_NDIM(b) - 1))
    _describe_matrix(&P.a, a)
    _describe_matrix(&P.b, b)
    _describe_matrix(&P.c, c)
    _describe_batched(&P, &bd, (a, b, c), batch)
    return run_problem(&P)


def _bmm_with_code(int code, cnp.ndarray a, cnp.ndarray b, cnp.ndarray c):
    """c = a @ b for 3-D arrays, through the engine with dtype code ``code``.

    Nothing checks that the code fits the arrays: not part of the API, it
    exists for the tests of the engine's refusal of a code it has no kernel
    for (which must raise before any task runs).
    """
    cdef fbmm_problem P
    init_bmm_problem(&P, code, a, b, c)
    run_problem(&P)


#: the engine's dtype codes are 0 .. _NUM_DTYPE_CODES - 1 (enum fbmm_dtype)
_NUM_DTYPE_CODES = FBMM_NUM_DTYPES
