cimport numpy as cnp
from libc.stdint cimport int64_t

from ._engine cimport fbmm_batch_dims, fbmm_operand, fbmm_problem
from ._validation cimport baddbmm_scalars

# the engine problem
cdef void init_problem(fbmm_problem *P, int code, int64_t batch, int64_t n, int64_t m,
                       int64_t p) noexcept
cdef void describe(fbmm_operand *op, cnp.ndarray x) noexcept
cdef void init_bmm_problem(fbmm_problem *P, int code, cnp.ndarray a, cnp.ndarray b,
                           cnp.ndarray c) noexcept
cdef void set_epilogue(fbmm_problem *P, const baddbmm_scalars *s, cnp.ndarray bias) noexcept
cdef object in_opmath(double complex beta, int64_t ibeta, object dtype)
cdef bint nonzero_in(double complex beta, int64_t ibeta, object dtype) except -1
cdef int init_matmul_problem(fbmm_problem *P, fbmm_batch_dims *bd, int code, cnp.ndarray a,
                             cnp.ndarray b, cnp.ndarray c, tuple batch) except -1
cdef int describe_batch(fbmm_problem *P, fbmm_batch_dims *bd, cnp.ndarray a, cnp.ndarray b,
                        cnp.ndarray c, tuple batch) except -1
cdef cnp.ndarray native(cnp.ndarray x)
# the array the engine writes
cdef cnp.ndarray target(cnp.ndarray out, cnp.ndarray a, cnp.ndarray b, cnp.ndarray bias,
                        int nd, cnp.npy_intp *dims, int typenum)
cdef object copy_back(cnp.ndarray c, cnp.ndarray o, object out)
