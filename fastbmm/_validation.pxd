cimport numpy as cnp

cdef cnp.ndarray as_operand(object x, str argname, int position)
cdef cnp.ndarray as_out(object out)
cdef int dtype_code(cnp.ndarray x) noexcept
cdef int check_bmm(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out) except -1
cdef bint overlaps(cnp.ndarray x, cnp.ndarray y) noexcept
