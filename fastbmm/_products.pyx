# cython: language_level=3, cdivision=True
"""bmm, baddbmm and matmul: each the same few steps, each step another module's.

    intake and checks     _validation  (as_operand, as_out, check_*)
    the array written     _problem     (target: out= itself, or a new array)
    the engine problem    _problem     (init_*_problem, set_epilogue)
    plan and run          _runtime     (run_problem)
    out= filled           _problem     (copy_back)

README.md, "How a call flows", follows one call through them. What differs:

* bmm: 3-D operands, the problem C = A @ B;
* baddbmm: an epilogue, ``C = alpha * (A @ B) + beta * D``, applied as each
  tile is written (``D`` is ``input`` broadcast to C's shape by zero strides);
* matmul: 1-D operands become a row and a column, and the broadcast batch
  dimensions one engine problem: their shape and each operand's byte strides
  (zero where broadcast), so that no broadcast copy of an operand, and no
  per-entry table, is made.
"""

cimport numpy as cnp

from ._engine cimport FBMM_NUM_DTYPES, fbmm_batch_dims, fbmm_problem
from ._problem cimport (copy_back, in_opmath, init_bmm_problem, init_matmul_problem, native,
                        nonzero_in, set_epilogue, target)
from ._runtime cimport run_problem
from ._validation cimport (as_operand, as_out, baddbmm_scalars, check_baddbmm, check_bmm,
                           check_out)

import numpy as np

from ._dtypes import ROWS
from ._validation import check_matmul

cnp.import_array()


# ----------------------------------------------------------------------------
# bmm


def bmm(input, mat2, *, out=None, out_dtype=None):
    """Batched matrix product, with torch.bmm's contract, on NumPy arrays.

    For every batch index ``i``,

    .. math:: \\mathrm{out}_i = \\mathrm{input}_i \\, \\mathrm{mat2}_i,
              \\qquad \\mathrm{out}_{i,r,c} = \\sum_{k=0}^{m-1}
              \\mathrm{input}_{i,r,k} \\, \\mathrm{mat2}_{i,k,c}

    Parameters
    ----------
    input : ndarray, shape (b, n, m)
    mat2 : ndarray, shape (b, m, p)
        Same dtype as ``input`` (no promotion): float16 (summed in float32 and
        rounded once), float32, float64, complex64, complex128, int8, uint8,
        int16, int32 or int64 (integer sums wrap around as in C). Any strides:
        transposed views, negative or zero strides, misaligned or byte-swapped
        data are all read correctly.
    out : ndarray, shape (b, n, p), optional
        Written in place, through its strides, and returned. It may alias
        ``input`` or ``mat2`` (the product is formed first, then copied in).
    out_dtype : dtype, optional
        ``numpy.float32`` for float16 operands: the float32 sums are returned
        as they are, never rounded to float16 (torch's ``bmm(..., out_dtype)``).
        The operands' own dtype is the same as None.

    Returns
    -------
    ndarray, shape (b, n, p)
        ``out``, or a new C-contiguous array of the result dtype.

    Raises
    ------
    TypeError
        An argument is not an ndarray (or is a masked array).
    ShapeError (RuntimeError, ValueError)
        torch.bmm's shape errors, with its messages; out= of the wrong shape.
    DtypeError (RuntimeError, TypeError)
        Operands (or out=) of different dtypes, with torch's messages.
    UnsupportedDtypeError (NotImplementedError, TypeError)
        bool, unsigned 16/32/64-bit, and dtypes torch has no tensor for.
    ValueError
        out= read-only, or with overlapping elements.

    See Also
    --------
    baddbmm : ``beta * input + alpha * (batch1 @ batch2)``.
    matmul : NumPy's broadcasting rules, any number of batch dimensions.

    Examples
    --------
    torch.bmm's documentation example, on NumPy arrays:

    >>> import numpy as np
    >>> import fastbmm
    >>> input = np.random.randn(10, 3, 4).astype(np.float32)
    >>> mat2 = np.random.randn(10, 4, 5).astype(np.float32)
    >>> fastbmm.bmm(input, mat2).shape
    (10, 3, 5)

    The values, written into ``out=``, which is returned:

    >>> a = np.arange(12, dtype=np.float64).reshape(2, 2, 3)
    >>> b = np.ones((2, 3, 1))
    >>> out = np.empty((2, 2, 1))
    >>> fastbmm.bmm(a, b, out=out) is out
    True
    >>> out[:, :, 0]
    array([[ 3., 12.],
           [21., 30.]])

    A transposed view is read where it lies (no copy), e.g. ``q @ k^T``:

    >>> q = np.ones((4, 8, 16), np.float32)
    >>> fastbmm.bmm(q, q.transpose(0, 2, 1))[0, 0, :3]
    array([16., 16., 16.], dtype=float32)

    float16 is summed in float32 and rounded once (3001 is not a float16), or
    not rounded at all with ``out_dtype=np.float32``:

    >>> h = np.ones((1, 1, 3001), np.float16)
    >>> r = fastbmm.bmm(h, h.transpose(0, 2, 1))
    >>> r.dtype, float(r[0, 0, 0])
    (dtype('float16'), 3000.0)
    >>> fastbmm.bmm(h, h.transpose(0, 2, 1), out_dtype=np.float32)
    array([[[3001.]]], dtype=float32)

    Errors carry torch's messages, and subclass NumPy's usual exceptions:

    >>> try:
    ...     fastbmm.bmm(a, b.astype(np.float32))
    ... except TypeError as error:
    ...     print(type(error).__name__, "-", error)
    DtypeError - expected scalar type Double but found Float
    >>> try:
    ...     fastbmm.bmm(a, np.ones((2, 4, 1)))
    ... except ValueError as error:
    ...     print(type(error).__name__, "-", error)
    ShapeError - Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4].
    """
    cdef cnp.ndarray a = as_operand(input, "input", 1, "bmm")
    cdef cnp.ndarray b = as_operand(mat2, "mat2", 2, "bmm")
    cdef cnp.ndarray o = as_out(out, "bmm")
    cdef int code = check_bmm(a, b, o, out_dtype)
    cdef int result_type = (cnp.PyArray_TYPE(b) if out_dtype is None
                            else np.dtype(ROWS[code].numpy_out).num)
    cdef cnp.npy_intp dims[3]
    dims[0] = cnp.PyArray_DIM(a, 0)
    dims[1] = cnp.PyArray_DIM(a, 1)
    dims[2] = cnp.PyArray_DIM(b, 2)
    cdef cnp.ndarray c = target(o, a, b, None, 3, dims, result_type)
    cdef fbmm_problem P
    if cnp.PyArray_SIZE(c) != 0:
        if cnp.PyArray_DIM(a, 2) == 0:
            c.fill(0)           # an empty sum: zeros, also over a dirty out=
        else:
            a = native(a)       # held here: P points into the copies
            b = native(b)
            init_bmm_problem(&P, code, a, b, c)
            run_problem(&P)
    return copy_back(c, o, out)


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
        The dtypes :func:`bmm` refuses.
    ValueError
        out= read-only or overlapping itself, as for :func:`bmm`.

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
    cdef cnp.ndarray o = as_out(out, "baddbmm")
    cdef baddbmm_scalars s
    cdef cnp.ndarray bias = check_baddbmm(d, a, b, o, alpha, beta, &s)
    # "use the bias" is decided on beta as the kernel holds it (beta=1e-50 is
    # 0 in float32: input's NaN must not leak), the same for every m
    if not nonzero_in(s.beta, s.ibeta, d.dtype):
        bias = None
    cdef cnp.npy_intp dims[3]
    dims[0] = cnp.PyArray_DIM(a, 0)
    dims[1] = cnp.PyArray_DIM(a, 1)
    dims[2] = cnp.PyArray_DIM(b, 2)
    cdef cnp.ndarray c = target(o, a, b, bias, 3, dims, cnp.PyArray_TYPE(d))
    cdef fbmm_problem P
    if cnp.PyArray_SIZE(c) != 0:
        if cnp.PyArray_DIM(a, 2) == 0:
            # an empty product: beta * input alone (torch: input.mul_(beta),
            # alpha unused), in the kernel's arithmetic: integers wrap
            if bias is None:
                c.fill(0)
            else:
                scale = in_opmath(s.beta, s.ibeta, d.dtype)
                np.multiply(bias, scale, out=c, dtype=scale.dtype, casting="unsafe")
        else:
            a = native(a)       # held here: P points into the copies
            b = native(b)
            bias = None if bias is None else native(bias)
            init_bmm_problem(&P, s.code, a, b, c)
            set_epilogue(&P, &s, bias)
            run_problem(&P)
    return copy_back(c, o, out)


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
        The dtypes :func:`bmm` refuses, named after the kernel torch runs for
        these ranks (``"dot"``, ``"addmv_impl_cpu"``, ``"addmm_impl_cpu_"``,
        ``"bmm"``).
    ValueError
        out= read-only or overlapping itself, as for :func:`bmm`.

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
    cdef cnp.ndarray o = as_out(out, "matmul")
    batch, n, m, p, code, shape, result_dtype = check_matmul(
        (<object>a).shape, (<object>b).shape, a, b, o, out_dtype,
        (<object>a).strides, (<object>b).strides)
    check_out(o, shape)
    cdef int i, nd = len(shape), ra = cnp.PyArray_NDIM(a), rb = cnp.PyArray_NDIM(b)
    cdef cnp.npy_intp dims[cnp.NPY_MAXDIMS]
    for i in range(nd):
        dims[i] = shape[i]
    cdef cnp.ndarray c = target(o, a, b, None, nd, dims, result_dtype.num)
    cdef cnp.ndarray full, a2, b2
    cdef fbmm_problem P
    cdef fbmm_batch_dims bd             # on this frame: lives until the engine returns
    if cnp.PyArray_SIZE(c) != 0:
        # the result as the engine writes it: the dimensions of 1-D operands put back
        full = c.reshape(tuple(batch) + (n, p)) if c is not o else _expand_dims(o, ra, rb)
        if m == 0:
            full.fill(0)        # an empty sum: zeros, also over a dirty out=
        else:
            a2 = native(a[None, :] if ra == 1 else a)        # a row
            b2 = native(b[:, None] if rb == 1 else b)        # a column
            init_matmul_problem(&P, &bd, code, a2, b2, full, batch)
            run_problem(&P)
    return copy_back(c, o, out)


def _expand_dims(o, ra, rb):
    # a view of out= with the dimensions that 1-D operands removed put back
    if ra == 1:
        o = np.expand_dims(o, -2 if rb > 1 else -1)
    if rb == 1:
        o = np.expand_dims(o, -1)
    return o


# ----------------------------------------------------------------------------
# For the tests


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
