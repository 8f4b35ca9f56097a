cimport numpy as cnp

cdef int dtype_code(cnp.ndarray x) noexcept
cdef bint is_integer_code(int code) noexcept
