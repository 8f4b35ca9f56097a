# cython: language_level=3, cdivision=True
"""baddbmm and matmul: torch's relatives of bmm, on the same engine.

Both become one engine problem, like bmm:

* baddbmm adds an epilogue, ``C = alpha * (A @ B) + beta * D``, applied as each
  tile is written (``D`` is ``input`` broadcast to C's shape by zero strides);
* matmul flattens its broadcast batch dimensions into one batch and hands the
  engine a table of byte offsets per batch entry, so that no broadcast copy of
  an operand is ever made.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t

from ._bmm cimport describe, init_bmm_problem, init_problem, native, run_problem
from ._engine cimport FBMM_F16, FBMM_F16_F32, FBMM_I8, fbmm_operand, fbmm_problem
from ._validation cimport (as_operand, as_out, check_out, dtype_code, overlaps,
                           same_scalar_type)

import numpy as np

from . import _errors

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
        not propagate), as in torch; its shape is still checked.
    batch1 : ndarray, shape (b, n, m)
    batch2 : ndarray, shape (b, m, p)
        All three of one dtype (see :func:`fastbmm.bmm` for the dtypes).
    beta, alpha : number
        Applied inside the kernel's write-back, not as extra passes. For
        integer dtypes they are truncated to integers, as torch does; complex
        values need complex operands.
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
    # torch's order: expand, input dtype, sizes, batch2's dtype, out's dtype,
    # then the kernel's (unsupported dtype, scalars). Ranks come first here:
    # torch, computing the result's shape from them, raises an IndexError.
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
    if not same_scalar_type(d, b):
        raise _errors.dtype_mismatch(a.dtype, b.dtype)
    if o is not None and not same_scalar_type(o, d):
        raise _errors.out_dtype(d.dtype, o.dtype)
    cdef int code = dtype_code(d)
    if code < 0:
        raise _errors.unsupported_dtype("baddbmm", d.dtype)
    cdef int64_t ialpha, ibeta
    alpha_c, beta_c, ialpha, ibeta = _scalars(alpha, beta, d.dtype)
    if o is not None:
        check_out(o, shape)

    cdef cnp.ndarray target
    cdef bint use_bias = beta_c != 0
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
            # an empty product: beta * input alone (alpha * 0 = 0)
            if use_bias:
                scale = ibeta if code >= FBMM_I8 else beta_c if d.dtype.kind == "c" else beta_c.real
                np.multiply(bias, scale, out=target, casting="unsafe")
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
    if code >= FBMM_I8:        # the integer dtypes (src/fastbmm.h)
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
        ia, ib = int(complex(alpha).real), int(complex(beta).real)
        return complex(ia), complex(ib), _wrap64(ia), _wrap64(ib)
    return complex(alpha), complex(beta), 1, 0


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
    batch, n, m, p, code, shape, result_dtype = check_matmul(sa, sb, a, b, o, out_dtype)
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


def check_matmul(shape_a, shape_b, a, b, out=None, out_dtype=None):
    """torch.matmul's checks, in torch's order, on shapes and dtypes alone.

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
    # torch takes a different route per rank pair, each with its own messages
    route = "dot" if ra == 1 and rb == 1 else "mv" if rb == 1 else "mm" if rb == 2 else "bmm"
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
    if (out is not None and route != "bmm" and out_dtype is None
            and out.dtype.newbyteorder("=") != result_dtype):
        # torch's mm/mv/dot check out= before comparing the operands
        raise _matmul_out_dtype_error(route, result_dtype, a.dtype, b.dtype, out.dtype)
    cdef int code = _matmul_dtype(route, a, b)
    if out_dtype is not None:
        want = np.dtype(out_dtype)
        if want == np.dtype(np.float32) and code == FBMM_F16:
            code = FBMM_F16_F32
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
    rows = int(np.prod(a2[:-1]))
    if route == "mv":
        return _errors.ShapeError(
            f"size mismatch, got input ({rows}), mat ({rows}x{a2[-1]}), vec ({sb[0]})")
    if route == "mm":
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
    if route == "mv":
        return _errors.DtypeError(
            "addmv input tensors must have the same dtype, but got "
            f"{name(dout)}, {name(da)}, and {name(db)}")
    return _errors.out_dtype(result, dout)


cdef int _matmul_dtype(str route, cnp.ndarray a, cnp.ndarray b) except -1:
    cdef int code = dtype_code(a)
    if route == "bmm" and code < 0:
        # torch's bmm dispatches on the first operand's dtype before comparing
        raise _errors.unsupported_dtype("bmm", a.dtype)
    if same_scalar_type(a, b):
        if code < 0:
            kernel = {"dot": "dot", "mv": "addmv_impl_cpu", "mm": "addmm_impl_cpu_",
                      "bmm": "bmm"}[route]
            raise _errors.unsupported_dtype(kernel, a.dtype)
        return code
    if route == "dot":
        raise _errors.DtypeError(
            "dot : expected both vectors to have same dtype, but found "
            f"{_errors.scalar_name(a.dtype)} and {_errors.scalar_name(b.dtype)}")
    if route == "mv":
        raise _errors.DtypeError(
            "addmv input tensors must have the same dtype, but got "
            f"{_errors.scalar_name(b.dtype)}, {_errors.scalar_name(a.dtype)}, and "
            f"{_errors.scalar_name(b.dtype)}")
    if route == "mm":
        raise _errors.DtypeError(
            "expected m1 and m2 to have the same dtype, but got: "
            f"{_errors.cpp_name(a.dtype)} != {_errors.cpp_name(b.dtype)}")
    raise _errors.dtype_mismatch(a.dtype, b.dtype)


def _batch_offsets(x, batch):
    """Byte offset of each (flattened) batch entry of x, broadcast to batch."""
    xb = x.shape[:-2]
    strides = [0] * (len(batch) - len(xb)) + [
        s if d != 1 else 0 for d, s in zip(xb, x.strides[:-2])]
    off = np.zeros(batch, dtype=np.int64)
    for i, s in enumerate(strides):
        if s:
            shape = [1] * len(batch)
            shape[i] = batch[i]
            off = off + np.arange(batch[i], dtype=np.int64).reshape(shape) * s
    return np.ascontiguousarray(np.broadcast_to(off, batch)).ravel()


def _single_stride(x, batch):
    """One batch stride for x's flattened batch entries, or None (then: offsets).

    Works when x is broadcast over the whole batch (stride 0), or when x's
    batch dimensions match the batch and collapse into one evenly spaced
    sequence (e.g. a C-contiguous result, or one batch dimension).
    """
    L = len(batch)
    xb = (1,) * (L - (x.ndim - 2)) + x.shape[:-2]
    xs = (0,) * (L - (x.ndim - 2)) + x.strides[:-2]
    dims = [(d, s) for d, s, full in zip(xb, xs, batch) if full != 1]
    if all(d == 1 for d, _ in dims):
        return 0
    if any(d == 1 for d, _ in dims):
        return None                     # broadcast along some dims only
    for (d0, s0), (d1, s1) in zip(dims, dims[1:]):
        if s0 != s1 * d1:
            return None
    return dims[-1][1]


cdef object _describe_batched(fbmm_operand *op, const int64_t **off, object x, tuple batch):
    """x's rows and columns, and its batch as one stride or as an offset table.

    Returns the table (None when a stride does), which the caller keeps alive
    until the engine has run.
    """
    op.data = <char *>cnp.PyArray_DATA(x)
    op.sr, op.sc = x.strides[-2], x.strides[-1]
    stride = _single_stride(x, batch)
    if stride is not None:
        op.sb = stride
        return None
    table = _batch_offsets(x, batch)
    off[0] = <const int64_t *>cnp.PyArray_DATA(table)
    return table


cdef int _compute_matmul(object a, object b, object c, int code, tuple batch) except -1:
    cdef fbmm_problem P
    cdef int64_t nb = 1
    for d in batch:
        nb *= d
    init_problem(&P, code, nb, a.shape[-2], a.shape[-1], b.shape[-1])
    tables = (_describe_batched(&P.a, &P.a_off, a, batch),
              _describe_batched(&P.b, &P.b_off, b, batch),
              _describe_batched(&P.c, &P.c_off, c, batch))
    return run_problem(&P)
