/*
 * fastbmm.h -- the C engine's interface, shared by the Cython driver (_bmm.pyx)
 * and every ISA variant of the kernels (engine_*.c).
 *
 * One call of fastbmm.bmm becomes one fbmm_problem: three strided operands
 * C[b] = A[b] @ B[b], a dtype, and a plan that cuts the work into independent
 * tasks (a range of batch entries, or one rectangular tile of one C matrix).
 * The Cython driver runs the tasks under `prange`, each thread with its own
 * scratch block; nothing in here allocates, takes a lock or touches Python.
 *
 * Every stride is in BYTES and may be negative, zero (inputs only), or not a
 * multiple of the item size; every data pointer may be misaligned. Loads and
 * stores that could meet such memory go through memcpy, which compiles to a
 * plain (unaligned) move on x86-64 and AArch64.
 */
#ifndef FASTBMM_H
#define FASTBMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types. The order is the one the Cython layer maps NumPy's type numbers to. */
enum fbmm_dtype {
    FBMM_F16 = 0, FBMM_F32, FBMM_F64, FBMM_C64, FBMM_C128,
    FBMM_I8, FBMM_U8, FBMM_I16, FBMM_I32, FBMM_I64,
    FBMM_F16_F32,               /* float16 operands, float32 result (out_dtype) */
    FBMM_NUM_DTYPES
};

/* How a task runs. */
enum fbmm_path {
    FBMM_PATH_SMALL = 0,   /* unpacked loops over whole small matrices, batch chunks per task */
    FBMM_PATH_PACKED = 1,  /* Goto loop nest with packed panels, one C tile per task */
    FBMM_PATH_STREAM = 2,  /* few rows: B streamed unpacked, one C column tile per task */
    FBMM_PATH_GEMV = 3     /* few columns: dot products along the inner dimension, one row tile per task */
};

typedef struct {
    char *data;                 /* element [0, 0, 0]; const for A and B */
    int64_t sb, sr, sc;         /* byte strides: batch, row, column */
} fbmm_operand;

/*
 * baddbmm's write-back, applied as a tile is stored (never as a second pass):
 *   C = alpha * (A @ B) + beta * D        on the first write of an element,
 *   C = C + alpha * (partial A @ B)       on later depth panels.
 * For plain bmm: scaled = has_bias = 0.
 */
typedef struct {
    int scaled;                 /* alpha != 1 */
    int has_bias;               /* beta != 0 and a bias operand D is given */
    int real_scalars;           /* alpha and beta have no imaginary part */
    double alpha[2], beta[2];   /* float and complex dtypes: (re, im) */
    uint64_t ialpha, ibeta;     /* integer dtypes: two's complement, wraps */
    int64_t d_sr, d_sc;         /* D's byte strides (0 where broadcast) */
} fbmm_epilogue;

typedef struct {
    int dtype;                  /* enum fbmm_dtype */
    int64_t batch, n, m, p;     /* C[batch, n, p] = A[batch, n, m] @ B[batch, m, p] */
    fbmm_operand a, b, c;
    fbmm_operand d;             /* baddbmm's bias (data NULL: none); same dtype as C */
    fbmm_epilogue ep;
    /* Per-batch byte offsets (matmul's broadcast batch dimensions), or NULL:
     * then entry i of X starts at X.data + i * X.sb. */
    const int64_t *a_off, *b_off, *c_off, *d_off;

    /* Filled by fbmm_plan(). */
    int path;
    int64_t batch_chunk;        /* SMALL: batch entries per task */
    int64_t row_tile, col_tile; /* PACKED: rows and columns of C per task */
    int64_t row_tiles, col_tiles;
    int64_t ntasks;
    int threads;                /* threads worth starting (1: run serially) */
    size_t scratch_bytes;       /* per thread, a multiple of FBMM_ALIGN */
} fbmm_problem;

#define FBMM_ALIGN 64

/* The register and cache blocking of one kernel family (one accumulator type). */
typedef struct {
    int64_t mr, nr, kc, mc, nc;
} fbmm_blocking;

/* Element bi of a batch operand. */
static inline char *fbmm_entry(const fbmm_operand *x, const int64_t *off, int64_t bi)
{
    return x->data + (off ? off[bi] : bi * x->sb);
}

/* One ISA variant of the whole engine. */
typedef struct {
    const char *name;           /* "avx512", "avx2", "baseline", ... */
    int64_t small_max;          /* n, m, p all <= small_max: the unpacked path */
    fbmm_blocking f32, f64, u32, u64;
    /* Decide path and tiling for `nthreads` threads; fills the plan fields. */
    void (*plan)(fbmm_problem *prob, int nthreads);
    /* Run task `t` of a planned problem with a thread's scratch block. */
    void (*run_task)(const fbmm_problem *prob, int64_t t, void *scratch);
} fbmm_engine;

/* dispatch.c */
int fbmm_num_engines(void);                       /* variants compiled in */
const fbmm_engine *fbmm_engine_at(int i);         /* best first */
int fbmm_engine_supported(const fbmm_engine *e);  /* runnable on this CPU? */
const char *fbmm_cpu_features(void);              /* e.g. "sse2 avx avx2 fma f16c" */

#ifdef __cplusplus
}
#endif
#endif
