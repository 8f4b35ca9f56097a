cimport numpy as cnp
from libc.stdint cimport int64_t

from ._engine cimport fbmm_operand, fbmm_problem

cdef void init_problem(fbmm_problem *P, int code, int64_t batch, int64_t n, int64_t m,
                       int64_t p) noexcept
cdef void init_bmm_problem(fbmm_problem *P, int code, cnp.ndarray a, cnp.ndarray b,
                           cnp.ndarray c) noexcept
cdef void describe(fbmm_operand *op, cnp.ndarray x) noexcept
cdef cnp.ndarray native(cnp.ndarray x)
cdef int run_problem(fbmm_problem *P) except -1
