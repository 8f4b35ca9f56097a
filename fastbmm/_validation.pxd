cimport numpy as cnp

cdef cnp.ndarray as_operand(object x, str argname, int position, str fname)
cdef cnp.ndarray as_out(object out, str fname)
cdef bint same_scalar_type(cnp.ndarray x, cnp.ndarray y)
cdef int check_bmm(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out) except -1
cdef int check_bmm_out_dtype(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out,
                             object out_dtype) except -1
cdef int check_out(cnp.ndarray out, tuple shape) except -1
cdef bint self_overlapping(cnp.ndarray x) noexcept
cdef bint overlaps(cnp.ndarray x, cnp.ndarray y) noexcept
