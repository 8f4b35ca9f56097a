cimport numpy as cnp
from libc.stdint cimport int64_t
from libc.string cimport memset

from ._engine cimport fbmm_batch_dims, fbmm_operand, fbmm_problem
from ._validation cimport baddbmm_scalars, overlaps, same_view

# The engine problem and the array it writes (see _problem.pyx). The helpers
# on every call's path are defined here, `inline`: each module that cimports
# them compiles its own copy, where a call into another compiled module would
# go through a function pointer (about 130 instructions more per bmm call
# when these five were calls into _problem).


cdef inline void init_problem(fbmm_problem *P, int code, int64_t batch, int64_t n, int64_t m,
                              int64_t p) noexcept:
    """A problem with no bias, alpha = 1, and plain batch strides."""
    memset(P, 0, sizeof(fbmm_problem))
    P.dtype = code
    P.batch = batch
    P.n = n
    P.m = m
    P.p = p
    P.ep.real_scalars = 1
    P.ep.alpha[0] = 1.0
    P.ep.ialpha = 1


cdef inline void describe(fbmm_operand *op, cnp.ndarray x) noexcept:
    """A 3-D array's data pointer and batch, row and column strides, in bytes."""
    cdef cnp.npy_intp *s = cnp.PyArray_STRIDES(x)
    op.data = <char *>cnp.PyArray_DATA(x)
    op.sb = s[0]
    op.sr = s[1]
    op.sc = s[2]


cdef inline void init_bmm_problem(fbmm_problem *P, int code, cnp.ndarray a, cnp.ndarray b,
                                  cnp.ndarray c) noexcept:
    """init_problem for 3-D operands C = A @ B, described by their own strides.

    A zero batch stride (np.broadcast_to over the batch) is fine for inputs:
    they are only read. For dims of size 1 the stride is never used.
    """
    init_problem(P, code, cnp.PyArray_DIM(a, 0), cnp.PyArray_DIM(a, 1),
                 cnp.PyArray_DIM(a, 2), cnp.PyArray_DIM(b, 2))
    describe(&P.a, a)
    describe(&P.b, b)
    describe(&P.c, c)


cdef cnp.ndarray native_copy(cnp.ndarray x)


cdef inline cnp.ndarray native(cnp.ndarray x):
    """x, or for byte-swapped data a native copy of the elements actually stored.

    The kernels' loads assume native byte order (rare in practice; every other
    layout is read in place).
    """
    return native_copy(x) if cnp.PyArray_ISBYTESWAPPED(x) else x


cdef void set_epilogue(fbmm_problem *P, const baddbmm_scalars *s, cnp.ndarray bias) noexcept
cdef object in_opmath(double complex beta, int64_t ibeta, object dtype)
cdef bint nonzero_in(double complex beta, int64_t ibeta, object dtype) except -1
cdef int init_matmul_problem(fbmm_problem *P, fbmm_batch_dims *bd, int code, cnp.ndarray a,
                             cnp.ndarray b, cnp.ndarray c, tuple batch) except -1
cdef int describe_batch(fbmm_problem *P, fbmm_batch_dims *bd, cnp.ndarray a, cnp.ndarray b,
                        cnp.ndarray c, tuple batch) except -1


# ----------------------------------------------------------------------------
# The array the engine writes


cdef inline cnp.ndarray target(cnp.ndarray out, cnp.ndarray a, cnp.ndarray b, cnp.ndarray bias,
                               int nd, cnp.npy_intp *dims, int typenum):
    """out= itself where the engine can write it in place, else a new C-contiguous array.

    The engine writes C tile by tile while it still reads A and B (and
    baddbmm's ``bias``; None otherwise), and stores native byte order. So
    out= is written in place unless it is byte-swapped or overlaps an
    operand; then the result is formed apart and ``copy_back`` copies it in.
    out= *being* the bias (the same view) is fine: each element reads its bias
    just before it is written.

    Parameters
    ----------
    out : ndarray or None
        out=, already checked (shape, dtype, writeable, no self-overlap).
    a, b : ndarray
        The operands.
    bias : ndarray or None
        baddbmm's input, expanded, when the kernel reads it.
    nd, dims, typenum
        The shape and NumPy type number of a new result.
    """
    if (out is None or cnp.PyArray_ISBYTESWAPPED(out) or overlaps(out, a) or overlaps(out, b)
            or (bias is not None and overlaps(out, bias) and not same_view(out, bias))):
        return cnp.PyArray_EMPTY(nd, dims, typenum, 0)
    return out


cdef inline object copy_back(cnp.ndarray c, cnp.ndarray o, object out):
    """What the call returns, once ``target`` ``c`` holds the result.

    ``o`` is out= as an ndarray (None without out=), ``out`` the caller's own
    object: returned as it is, an ndarray subclass included. A result formed
    apart is copied into out= here, by NumPy, through out's strides.
    """
    if o is None:
        return c
    if c is not o:
        o[...] = c
    return out
