cimport numpy as cnp
from libc.stdint cimport int64_t

# The checks, and the intake, of every entry point (see _validation.pyx). The
# few on every call's path are `inline`, compiled into each caller: a call
# into another compiled module goes through a function pointer.

# baddbmm's dtype code, and alpha and beta as the engine takes them
cdef struct baddbmm_scalars:
    int code
    double complex alpha, beta          # every dtype (complex parts for complex dtypes)
    int64_t ialpha, ibeta               # integer dtypes: truncated, wrapped to 64 bits

# intake
cdef cnp.ndarray as_operand(object x, str argname, int position, str fname)
cdef cnp.ndarray as_out_slow(object out, str fname)


cdef inline cnp.ndarray as_out(object out, str fname):
    """out= as an ndarray (None stays None); TypeError for anything else."""
    if out is None or type(out) is cnp.ndarray:
        return <cnp.ndarray>out
    return as_out_slow(out, fname)


cdef bint same_scalar_type(cnp.ndarray x, cnp.ndarray y)

# the checks of each function, in torch's order
cdef int not_3d(str which) except -1


cdef inline int check_ranks(int nd_a, int nd_b) except -1:
    """torch.bmm's (and baddbmm's) first shape check: batch1, then batch2, 3-D."""
    if nd_a != 3:
        return not_3d("batch1")
    if nd_b != 3:
        return not_3d("batch2")
    return 0


cdef int check_bmm(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, object out_dtype) except -1
cdef cnp.ndarray check_baddbmm(cnp.ndarray d, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out,
                               object alpha, object beta, baddbmm_scalars *s)
# out=
cdef int check_out(cnp.ndarray out, tuple shape) except -1
cdef int check_writable(cnp.ndarray out) except -1
# memory
cdef bint same_view(cnp.ndarray x, cnp.ndarray y) noexcept
cdef bint self_overlapping(cnp.ndarray x) noexcept
cdef bint overlaps(cnp.ndarray x, cnp.ndarray y) noexcept
