# cython: language_level=3, cdivision=True
"""From validated arrays to the engine's problem, and to the array it writes.

An engine problem (``fbmm_problem``, src/fastbmm.h) is
``C[i] = alpha * A[i] @ B[i] + beta * D[i]`` for every batch entry ``i``: a
dtype code, the sizes, and each operand as a data pointer plus byte strides.
Every builder of one is here (the few on every call's path are ``inline``
functions of _problem.pxd, compiled into their caller: a call between
compiled modules goes through a pointer and cannot be inlined):

* ``init_problem``, ``describe``, ``init_bmm_problem``: bmm's (3-D operands);
* ``set_epilogue``: baddbmm's alpha, beta and bias (``D``);
* ``init_matmul_problem``: matmul's, its broadcast batch dimensions as one
  shape and a byte stride per operand and dimension (``describe_batch``);
* ``native``: a byte-swapped operand in native order (the one copy of an input).

and the two halves of out= handling that every function shares:

* ``target``: the array the engine writes, out= itself or a new array;
* ``copy_back``: the result into out= when it was formed apart, and what the
  call returns.

The engine reads operands through raw pointers and byte strides, not typed
memoryviews: see README.md, "How a call flows".
"""

cimport cython
cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memset

from ._dtypes cimport is_integer_code
from ._engine cimport FBMM_MAX_BATCH_DIMS, fbmm_batch_dims, fbmm_operand, fbmm_problem
from ._validation cimport baddbmm_scalars

import numpy as np

from . import _errors
from ._dtypes import ROWS

cnp.import_array()


# ----------------------------------------------------------------------------
# Operands


cdef cnp.ndarray native_copy(cnp.ndarray x):
    """A byte-swapped x's elements in native order (``native``'s slow half).

    Zero-stride axes are cut to one element before the copy and broadcast
    again after it: a broadcast operand must not become a full-size copy.
    """
    xo = <object>x
    stored = xo[tuple(slice(0, 1) if s == 0 else slice(None) for s in xo.strides)]
    copy = np.ascontiguousarray(stored, dtype=xo.dtype.newbyteorder("="))
    return <cnp.ndarray>np.broadcast_to(copy, xo.shape)


# ----------------------------------------------------------------------------
# baddbmm: the epilogue, applied as each tile of C is written


cdef void set_epilogue(fbmm_problem *P, const baddbmm_scalars *s, cnp.ndarray bias) noexcept:
    """C = alpha * (A @ B) + beta * bias; ``bias`` None: no bias term (beta is 0).

    ``bias`` is (b, n, p), zero strides where broadcast; it is read through
    its row and column strides, and its batch stride as any operand's.
    """
    P.ep.alpha[0] = s.alpha.real
    P.ep.alpha[1] = s.alpha.imag
    P.ep.beta[0] = s.beta.real
    P.ep.beta[1] = s.beta.imag
    P.ep.ialpha = <uint64_t>s.ialpha
    P.ep.ibeta = <uint64_t>s.ibeta
    P.ep.real_scalars = s.alpha.imag == 0 and s.beta.imag == 0
    if is_integer_code(s.code):
        P.ep.scaled = s.ialpha != 1
    else:
        P.ep.scaled = s.alpha != 1
    if bias is not None:
        describe(&P.d, bias)
        P.ep.has_bias = 1
        P.ep.d_sr = P.d.sr
        P.ep.d_sc = P.d.sc


# The types the kernel computes the epilogue in (torch's opmath types): the
# staged dtypes of dtypes.def (float16, bfloat16) in float32, their family's
# accumulator; every other dtype in itself.
_OPMATH = {r.numpy_in: np.dtype(np.float32) for r in ROWS if r.staged}


cdef object in_opmath(double complex beta, int64_t ibeta, object dtype):
    """beta as a 0-d array of the type the kernel applies it in; integers wrapped to dtype."""
    dtype = dtype.newbyteorder("=")
    if dtype.kind in "iu":
        # two's complement: -1 is 255 for uint8 (astype wraps; NumPy 2 would
        # refuse the Python int -1 as a uint8 operand)
        return np.array(ibeta, np.int64).astype(dtype)
    op = _OPMATH.get(dtype.name, dtype)
    return np.array(beta if op.kind == "c" else beta.real, op)


cdef bint nonzero_in(double complex beta, int64_t ibeta, object dtype) except -1:
    """Is beta non-zero as the kernel holds it (see in_opmath)? beta=1e-50 is 0
    in float32: then input's values, NaN included, must not reach the result."""
    return bool(in_opmath(beta, ibeta, dtype) != 0)


# ----------------------------------------------------------------------------
# matmul: a broadcast batch as one shape and each operand's byte strides


cdef void _describe_matrix(fbmm_operand *op, cnp.ndarray x) noexcept:
    # x's data pointer and its last two (row, column) byte strides
    cdef int nd = cnp.PyArray_NDIM(x)
    op.data = <char *>cnp.PyArray_DATA(x)
    op.sr = cnp.PyArray_STRIDE(x, nd - 2)
    op.sc = cnp.PyArray_STRIDE(x, nd - 1)


cdef int init_matmul_problem(fbmm_problem *P, fbmm_batch_dims *bd, int code, cnp.ndarray a,
                             cnp.ndarray b, cnp.ndarray c, tuple batch) except -1:
    """C = A @ B over the broadcast batch dimensions ``batch`` (A, B, C: >= 2-D).

    ``bd`` must outlive the engine's run (see ``describe_batch``).
    """
    cdef int64_t nb = 1
    for d in batch:
        nb *= d
    init_problem(P, code, nb, cnp.PyArray_DIM(a, cnp.PyArray_NDIM(a) - 2),
                 cnp.PyArray_DIM(a, cnp.PyArray_NDIM(a) - 1),
                 cnp.PyArray_DIM(b, cnp.PyArray_NDIM(b) - 1))
    _describe_matrix(&P.a, a)
    _describe_matrix(&P.b, b)
    _describe_matrix(&P.c, c)
    return describe_batch(P, bd, a, b, c, batch)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _batch_strides(int64_t[:, ::1] table, Py_ssize_t column, cnp.ndarray x) noexcept:
    # column `column` of table: x's byte stride along each batch dimension of
    # the table's rows, 0 where x is broadcast (it lacks the dimension, or has
    # size 1 there). x's batch dimensions are its leading ndim - 2, aligned
    # to the right of the table's.
    cdef Py_ssize_t L = table.shape[0], i, j
    cdef Py_ssize_t missing = L - (cnp.PyArray_NDIM(x) - 2)
    cdef cnp.npy_intp *shape = cnp.PyArray_DIMS(x)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(x)
    for i in range(L):
        j = i - missing
        table[i, column] = strides[j] if j >= 0 and shape[j] != 1 else 0


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int describe_batch(fbmm_problem *P, fbmm_batch_dims *bd, cnp.ndarray a, cnp.ndarray b,
                        cnp.ndarray c, tuple batch) except -1:
    """The broadcast batch of A, B, C as the engine reads it.

    Every operand gets one byte stride per dimension of ``batch`` (0 where it
    is broadcast). Dimensions of size 1 are dropped, and neighbours merged
    where every operand steps evenly across them (a C-contiguous result, a
    plain 3-D stack); what remains is one dimension (then each operand's
    ``sb`` is its stride, and the engine needs nothing more) or several,
    described in ``bd`` (shape and strides: O(ndim) memory, whatever the
    number of entries). ``bd`` must outlive the engine's run.
    """
    cdef Py_ssize_t L = len(batch), i, k, kept = 0
    cdef int64_t size
    # one row per batch dimension: its size, then the byte stride of A, B, C
    cdef int64_t[:, ::1] dims = np.empty((L, 4), np.int64)
    for i in range(L):
        dims[i, 0] = batch[i]
    _batch_strides(dims, 1, a)
    _batch_strides(dims, 2, b)
    _batch_strides(dims, 3, c)
    # compacted in place: row `kept` is never beyond row i
    for i in range(L):
        size = dims[i, 0]
        if size == 1:
            continue
        # merge into the outer neighbour: i_out * s_out + i * s == (i_out * size + i) * s
        if (kept > 0 and dims[kept - 1, 1] == dims[i, 1] * size
                and dims[kept - 1, 2] == dims[i, 2] * size
                and dims[kept - 1, 3] == dims[i, 3] * size):
            dims[kept - 1, 0] *= size
            kept -= 1
        else:
            dims[kept, 0] = size
        for k in range(1, 4):
            dims[kept, k] = dims[i, k]
        kept += 1
    if kept > FBMM_MAX_BATCH_DIMS:
        raise _errors.too_many_batch_dims(FBMM_MAX_BATCH_DIMS)
    if kept <= 1:
        P.a.sb = dims[0, 1] if kept else 0
        P.b.sb = dims[0, 2] if kept else 0
        P.c.sb = dims[0, 3] if kept else 0
        P.bdims = NULL
        return 0
    memset(bd, 0, sizeof(fbmm_batch_dims))
    bd.ndim = kept
    for i in range(kept):
        bd.shape[i] = dims[i, 0]
        for k in range(3):
            bd.strides[k][i] = dims[i, 1 + k]
    P.bdims = bd
    return 0
