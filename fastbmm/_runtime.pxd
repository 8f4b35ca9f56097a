from ._engine cimport fbmm_problem

cdef int run_problem(fbmm_problem *P) except -1
