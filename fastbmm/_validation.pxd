cimport numpy as cnp
from libc.stdint cimport int64_t

# baddbmm's dtype code, and alpha and beta as the engine takes them
cdef struct baddbmm_scalars:
    int code
    double complex alpha, beta          # every dtype (complex parts for complex dtypes)
    int64_t ialpha, ibeta               # integer dtypes: truncated, wrapped to 64 bits

# intake
cdef cnp.ndarray as_operand(object x, str argname, int position, str fname)
cdef cnp.ndarray as_out(object out, str fname)
cdef bint same_scalar_type(cnp.ndarray x, cnp.ndarray y)
# the checks of each function, in torch's order
cdef int check_ranks(int nd_a, int nd_b) except -1
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
