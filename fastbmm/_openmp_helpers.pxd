# OpenMP helpers with stand-ins, so that the package also builds (serially)
# with a compiler that has no OpenMP: setup.py then leaves -fopenmp out,
# _OPENMP stays undefined, and these macros take the place of omp.h.
from ._engine cimport fbmm_engine, fbmm_problem

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

# fastbmm's parallel regions and thread-count setting (src/threads.h)
cdef extern from "src/threads.h" nogil:
    int FBMM_THREADS_PER_CPU
    int FBMM_MIN_THREAD_CAP
    void fbmm_threads_init(int runtime_preloaded)
    int fbmm_threads_default()
    void fbmm_threads_set(int n)
    int fbmm_threads_setting()
    int fbmm_threads_current()
    void fbmm_threads_restore(int setting, int icv, int applied)
    int fbmm_threads_applied()
    int fbmm_threads_cap()
    int fbmm_available_cpus()
    int fbmm_threads_free_cpus(int want)
    void fbmm_threads_follow_load(int on)
    int fbmm_competing_threads_of_process()
    int fbmm_fork_state()
    int fbmm_delegates_regions()
    int fbmm_probe_threads(int nthreads, int *created)
    int fbmm_run_tasks(const fbmm_engine *eng, const fbmm_problem *P, int nthreads,
                       char *base, size_t per_thread)
