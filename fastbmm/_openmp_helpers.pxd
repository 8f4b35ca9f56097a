# OpenMP helpers with stand-ins, so that the package also builds (serially)
# with a compiler that has no OpenMP: setup.py then leaves -fopenmp out,
# _OPENMP stays undefined, and these macros take the place of omp.h.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FASTBMM_OPENMP 1
    #else
    #define FASTBMM_OPENMP 0
    #define omp_get_max_threads() 1
    #define omp_get_thread_num() 0
    #define omp_get_num_procs() 1
    #endif
    """
    bint FASTBMM_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    int omp_get_num_procs() noexcept nogil
