# Declarations of the C engine (src/fastbmm.h) for the Cython layer.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "src/fastbmm.h" nogil:
    # The dtype codes are dtypes.def's rows: Python reads them from
    # fastbmm._dtypes, never from a list here.
    enum:
        FBMM_PATH_SMALL
        FBMM_PATH_PACKED
        FBMM_ALIGN
        FBMM_NUM_DTYPES
        FBMM_OK
        FBMM_ERR_DTYPE
        FBMM_OP_a
        FBMM_OP_b
        FBMM_OP_c
        FBMM_OP_d
        FBMM_MAX_BATCH_DIMS

    ctypedef struct fbmm_operand:
        char *data
        int64_t sb, sr, sc

    ctypedef struct fbmm_epilogue:
        int scaled, has_bias, real_scalars
        double alpha[2]
        double beta[2]
        uint64_t ialpha, ibeta
        int64_t d_sr, d_sc

    # sizes FBMM_MAX_BATCH_DIMS and FBMM_NUM_OPERANDS: Cython wants literals,
    # the C compiler uses the header's definition
    ctypedef struct fbmm_batch_dims:
        int ndim
        int64_t shape[64]
        int64_t strides[4][64]

    ctypedef struct fbmm_problem:
        int dtype
        int64_t batch, n, m, p
        fbmm_operand a, b, c, d
        fbmm_epilogue ep
        const fbmm_batch_dims *bdims
        int path
        int64_t batch_chunk, row_tile, col_tile, row_tiles, col_tiles, ntasks
        int threads
        size_t scratch_bytes

    ctypedef struct fbmm_blocking:
        int64_t mr, nr, kc, mc, nc

    ctypedef struct fbmm_engine:
        const char *name
        int64_t small_max
        int64_t small_max_complex
        fbmm_blocking f32, f64, u32, u64
        int (*plan)(fbmm_problem *prob, int nthreads) noexcept nogil
        void (*run_task)(const fbmm_problem *prob, int64_t t, void *scratch) noexcept nogil
        double (*peak_f32)(int64_t iters, int64_t *flops) noexcept nogil
        double (*peak_f64)(int64_t iters, int64_t *flops) noexcept nogil
        double (*peak_u32)(int64_t iters, int64_t *flops) noexcept nogil
        int (*bf16_nest)() noexcept nogil
        int (*bf16_runnable)(int nest) noexcept nogil
        int (*set_bf16_nest)(int nest) noexcept nogil
        int (*int_nest)() noexcept nogil
        int (*int_runnable)(int nest) noexcept nogil
        int (*set_int_nest)(int nest) noexcept nogil

    int fbmm_num_engines()
    const fbmm_engine *fbmm_engine_at(int i)
    int fbmm_engine_supported(const fbmm_engine *e)
    const char *fbmm_cpu_features()
