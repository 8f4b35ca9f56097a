/*
 * engine_template.h -- one whole ISA variant of the engine. An engine_*.c file
 * defines FBMM_ISA_<X> and FBMM_ENGINE_NAME, then includes this; the build
 * compiles that file with the ISA's flags (setup.py), and dispatch.c picks a
 * variant at import time from what the CPU reports.
 */
#include <string.h>
#include "fastbmm.h"
#include "block_sizes.h"
#include "half.h"

#define FBMM_STR_(x) #x
#define FBMM_STR(x) FBMM_STR_(x)

#if defined(__clang__)
#  define FBMM_UNROLL _Pragma("unroll")
#  define FBMM_UNROLL4 _Pragma("unroll 4")
#elif defined(__GNUC__)
#  define FBMM_UNROLL _Pragma("GCC unroll 32")
#  define FBMM_UNROLL4 _Pragma("GCC unroll 4")
#else
#  define FBMM_UNROLL
#  define FBMM_UNROLL4
#endif

/* Element loads from possibly misaligned memory, widened to the accumulator. */
#define FBMM_LOADER(NAME, T, RET, EXPR)                                   \
    static inline RET fbmm_ld_##NAME(const char *p) { T v; memcpy(&v, p, sizeof v); return (RET)(EXPR); }
FBMM_LOADER(f32, float, float, v)
FBMM_LOADER(f64, double, double, v)
FBMM_LOADER(f16, uint16_t, float, fbmm_half_to_float(v))
FBMM_LOADER(i8, int8_t, uint32_t, (int32_t)v)     /* sign-extend, then reinterpret */
FBMM_LOADER(u8, uint8_t, uint32_t, v)
FBMM_LOADER(i16, int16_t, uint32_t, (int32_t)v)
FBMM_LOADER(i32, int32_t, uint32_t, v)
FBMM_LOADER(i64, int64_t, uint64_t, v)

#define FBMM_SAME(x) (x)
#define FBMM_TO_HALF(x) fbmm_float_to_half(x)
#define FBMM_TO_U8(x) ((uint8_t)(x))
#define FBMM_TO_U16(x) ((uint16_t)(x))
#define FBMM_TO_U32(x) ((uint32_t)(x))
#define FBMM_TO_U64(x) ((uint64_t)(x))

/*
 * What the engine has for one dtype: its kernel per path (stream and gemv
 * NULL: the dtype takes neither the few-rows nor the few-columns path), scratch size, tile geometry and
 * staging. Engine-internal; the table below is indexed by enum fbmm_dtype,
 * and the planner refuses a dtype without an entry, so run_task never meets
 * a dtype it has no kernel for.
 */
typedef struct {
    void (*small)(const fbmm_problem *P, int64_t b0, int64_t b1);
    void (*tile)(const fbmm_problem *P, const char *a, const char *b, char *c, const char *d,
                 int64_t rows, int64_t cols, void *scratch);
    void (*stream)(const fbmm_problem *P, const char *a, const char *b, char *c, const char *d,
                   int64_t rows, int64_t cols);
    void (*gemv)(const fbmm_problem *P, const char *a, const char *b, char *c, const char *d,
                 int64_t rows, int64_t cols, void *scratch);
    size_t (*scratch)(int64_t rows, int64_t K, int64_t cols);
    int64_t itemsize;           /* bytes of one input element */
    int64_t mr, nr;             /* the family's register tile */
    int staged;                 /* f16: rounds once at the end; tiles <= MC rows */
} fbmm_kind;

/*
 * The per-path entry points of kind KIND in family FAM, and its fbmm_kind.
 * MULT = 2 for 1m complex (the kernels see 2m deep, 2 * cols wide). STREAM
 * and GEMV are the few-rows and few-columns functions, or 0. Expanded inside
 * a family (MR, FBMM_NR set).
 */
#define FBMM_KIND(FAM, KIND, MULT, ITEMSIZE, STREAM, GEMV)                               \
static void tile_##KIND(const fbmm_problem *P, const char *a, const char *b, char *c,     \
                        const char *d, int64_t rows, int64_t cols, void *scratch)         \
{                                                                                         \
    gemm_tile_##FAM(&ops_##KIND, a, P->a.sr, P->a.sc, b, P->b.sr, P->b.sc,                \
                    c, P->c.sr, P->c.sc, &P->ep, d, rows, (MULT) * P->m, (MULT) * cols,   \
                    scratch);                                                             \
}                                                                                         \
static size_t scratch_##KIND(int64_t rows, int64_t K, int64_t cols)                       \
{                                                                                         \
    return scratch_bytes_##FAM(&ops_##KIND, rows, (MULT) * K, (MULT) * cols);             \
}                                                                                         \
static const fbmm_kind kind_##KIND = {                                                    \
    small_##KIND, tile_##KIND, STREAM, GEMV, scratch_##KIND, ITEMSIZE, MR, FBMM_NR,          \
    staged_##KIND };

/* The few-rows (stream) and few-columns (gemv) paths of a real kind whose
 * inputs are ACC_T's own bits. */
#define FBMM_STREAM_KIND(FAM, KIND)                                                      \
static void stream_##KIND(const fbmm_problem *P, const char *a, const char *b, char *c,   \
                          const char *d, int64_t rows, int64_t cols)                      \
{                                                                                         \
    gemm_stream_##FAM(&ops_##KIND, a, P->a.sr, P->a.sc, b, P->b.sr,                       \
                      c, P->c.sr, P->c.sc, &P->ep, d, rows, P->m, cols);                  \
}                                                                                         \
static void gemv_##KIND(const fbmm_problem *P, const char *a, const char *b, char *c,     \
                        const char *d, int64_t rows, int64_t cols, void *scratch)         \
{                                                                                         \
    gemm_gemv_##FAM(&ops_##KIND, a, P->a.sr, b, P->b.sr, P->b.sc,                         \
                    c, P->c.sr, P->c.sc, &P->ep, d, rows, P->m, cols, scratch);           \
}

/* ---- float family: float32, float16 (widened when packed), complex64 ---- */
#define ACC f32
#define ACC_IS_INT 0
#define ACC_T float
#define MR FBMM_MR_F32
#include "gemm_template.h"
#include "kinds_template.h"
FBMM_REAL_KIND(f32, float, fbmm_ld_f32, float, fbmm_ld_f32, float, FBMM_SAME, 1, 1, 0)
FBMM_REAL_KIND(f16, uint16_t, fbmm_ld_f16, uint16_t, fbmm_ld_f16, uint16_t, FBMM_TO_HALF, 0, 0, 1)
/* out_dtype=float32 for float16 operands: widened like f16, stored as f32 */
FBMM_REAL_KIND(f16f32, uint16_t, fbmm_ld_f16, float, fbmm_ld_f32, float, FBMM_SAME, 0, 1, 0)
FBMM_COMPLEX_KIND(c64, float)
FBMM_STREAM_KIND(f32, f32)
FBMM_KIND(f32, f32, 1, 4, stream_f32, gemv_f32)
FBMM_KIND(f32, f16, 1, 2, 0, 0)
FBMM_KIND(f32, f16f32, 1, 2, 0, 0)
FBMM_KIND(f32, c64, 2, 8, 0, 0)
#undef FBMM_VL
#undef FBMM_NR
#undef FBMM_SMALL_NVMAX
#undef ACC
#undef ACC_IS_INT
#undef ACC_T
#undef MR

/* ---- double family: float64, complex128 ---- */
#define ACC f64
#define ACC_IS_INT 0
#define ACC_T double
#define MR FBMM_MR_F64
#include "gemm_template.h"
#include "kinds_template.h"
FBMM_REAL_KIND(f64, double, fbmm_ld_f64, double, fbmm_ld_f64, double, FBMM_SAME, 1, 1, 0)
FBMM_COMPLEX_KIND(c128, double)
FBMM_STREAM_KIND(f64, f64)
FBMM_KIND(f64, f64, 1, 8, stream_f64, gemv_f64)
FBMM_KIND(f64, c128, 2, 16, 0, 0)
#undef FBMM_VL
#undef FBMM_NR
#undef FBMM_SMALL_NVMAX
#undef ACC
#undef ACC_IS_INT
#undef ACC_T
#undef MR

/* ---- 32-bit integer family: int8, uint8, int16, int32 (wrap mod 2^32) ---- */
#define ACC u32
#define ACC_IS_INT 1
#define ACC_T uint32_t
#define MR FBMM_MR_U32
#include "gemm_template.h"
#include "kinds_template.h"
FBMM_REAL_KIND(i8, int8_t, fbmm_ld_i8, int8_t, fbmm_ld_i8, uint8_t, FBMM_TO_U8, 0, 0, 0)
FBMM_REAL_KIND(u8, uint8_t, fbmm_ld_u8, uint8_t, fbmm_ld_u8, uint8_t, FBMM_TO_U8, 0, 0, 0)
FBMM_REAL_KIND(i16, int16_t, fbmm_ld_i16, int16_t, fbmm_ld_i16, uint16_t, FBMM_TO_U16, 0, 0, 0)
FBMM_REAL_KIND(i32, int32_t, fbmm_ld_i32, int32_t, fbmm_ld_i32, uint32_t, FBMM_TO_U32, 1, 1, 0)
FBMM_STREAM_KIND(u32, i32)
FBMM_KIND(u32, i8, 1, 1, 0, 0)
FBMM_KIND(u32, u8, 1, 1, 0, 0)
FBMM_KIND(u32, i16, 1, 2, 0, 0)
FBMM_KIND(u32, i32, 1, 4, stream_i32, gemv_i32)
#undef FBMM_VL
#undef FBMM_NR
#undef FBMM_SMALL_NVMAX
#undef ACC
#undef ACC_IS_INT
#undef ACC_T
#undef MR

/* ---- 64-bit integer family: int64 (wrap mod 2^64) ---- */
#define ACC u64
#define ACC_IS_INT 1
#define ACC_T uint64_t
#define MR FBMM_MR_U64
#include "gemm_template.h"
#include "kinds_template.h"
FBMM_REAL_KIND(i64, int64_t, fbmm_ld_i64, int64_t, fbmm_ld_i64, uint64_t, FBMM_TO_U64, 1, 1, 0)
FBMM_STREAM_KIND(u64, i64)
FBMM_KIND(u64, i64, 1, 8, stream_i64, gemv_i64)
#undef FBMM_VL
#undef FBMM_NR
#undef FBMM_SMALL_NVMAX
#undef ACC
#undef ACC_IS_INT
#undef ACC_T
#undef MR

#define FBMM_ENGINE_FN(x) FBMM_CAT(x, FBMM_ENGINE_NAME)

/* Indexed by enum fbmm_dtype. A code left out is NULL, and plan() refuses it. */
static const fbmm_kind *const FBMM_ENGINE_FN(kinds)[FBMM_NUM_DTYPES] = {
    [FBMM_F16] = &kind_f16, [FBMM_F32] = &kind_f32, [FBMM_F64] = &kind_f64,
    [FBMM_C64] = &kind_c64, [FBMM_C128] = &kind_c128,
    [FBMM_I8] = &kind_i8, [FBMM_U8] = &kind_u8, [FBMM_I16] = &kind_i16,
    [FBMM_I32] = &kind_i32, [FBMM_I64] = &kind_i64,
    [FBMM_F16_F32] = &kind_f16f32,
};

static int64_t fbmm_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/*
 * The schedule. Small matrices: chunks of whole matrices per task. Packed:
 * one task per matrix when the batch spreads evenly over the threads; else each
 * matrix is cut into row x column tiles (columns first: a column tile reuses
 * A in place and packs only its own part of B) until there are about four
 * tasks per thread, but no tile smaller than FBMM_MIN_TILE_ROWS x _COLS.
 */
static int FBMM_ENGINE_FN(plan)(fbmm_problem *P, int nthreads)
{
    if (P->dtype < 0 || P->dtype >= FBMM_NUM_DTYPES || !FBMM_ENGINE_FN(kinds)[P->dtype])
        return FBMM_ERR_DTYPE;
    const fbmm_kind *K = FBMM_ENGINE_FN(kinds)[P->dtype];
    const double work = (double)P->batch * (double)P->n * (double)P->m * (double)P->p;
    int threads = nthreads < 1 ? 1 : nthreads;
    if (work < FBMM_SERIAL_WORK) threads = 1;

    P->row_tile = P->n; P->col_tile = P->p;
    P->row_tiles = 1; P->col_tiles = 1;
    P->batch_chunk = 1;
    P->scratch_bytes = 0;
    if (P->n <= FBMM_SMALL_MAX && P->m <= FBMM_SMALL_MAX && P->p <= FBMM_SMALL_MAX) {
        int64_t target = threads == 1 ? 1 : 4 * (int64_t)threads;
        if (target > P->batch) target = P->batch;
        if (target < 1) target = 1;
        P->path = FBMM_PATH_SMALL;
        P->batch_chunk = fbmm_cdiv(P->batch, target);
        P->ntasks = fbmm_cdiv(P->batch, P->batch_chunk);
    } else {
        const int64_t mr = K->mr, nr = K->nr;
        const int stream = K->stream && P->n <= FBMM_STREAM_MAX_ROWS &&
                           P->b.sc == K->itemsize && P->b.sr % K->itemsize == 0;
        const int gemv = !stream && K->gemv && P->p <= FBMM_GEMV_MAX_COLS &&
                         P->a.sc == K->itemsize &&
                         P->m * P->p * K->itemsize <= FBMM_GEMV_MAX_B_BYTES;
        P->path = stream ? FBMM_PATH_STREAM : gemv ? FBMM_PATH_GEMV : FBMM_PATH_PACKED;
        /* a staged kind's accumulation buffer holds at most MC rows */
        if (K->staged && P->row_tile > FBMM_MC) P->row_tile = FBMM_MC / mr * mr;
        int64_t per = fbmm_cdiv(P->n, P->row_tile);
        if (threads > 1 && (P->batch * per) % threads != 0 && P->batch * per < 4 * (int64_t)threads) {
            /* Big matrices: one tile per thread (each extra column tile packs
             * all of A again); smaller ones: four, for balance. */
            const double mwork = (double)P->n * (double)P->m * (double)P->p;
            const int64_t per_thread = mwork >= FBMM_BIG_MATRIX_WORK ? 1 : 4;
            int64_t want = fbmm_cdiv(per_thread * (int64_t)threads, P->batch * per);
            int64_t max_ct = P->p / FBMM_MIN_TILE_COLS;
            int64_t ct = want < max_ct ? want : max_ct;
            if (ct < 1) ct = 1;
            int64_t max_rt = P->row_tile / FBMM_MIN_TILE_ROWS;
            int64_t rt = fbmm_cdiv(want, ct);
            if (rt > max_rt) rt = max_rt;
            if (rt < 1) rt = 1;
            P->col_tile = fbmm_cdiv(fbmm_cdiv(P->p, ct), nr) * nr;
            P->row_tile = fbmm_cdiv(fbmm_cdiv(P->row_tile, rt), mr) * mr;
        }
        if (P->col_tile > P->p) P->col_tile = P->p;
        if (P->row_tile > P->n) P->row_tile = P->n;
        P->row_tiles = fbmm_cdiv(P->n, P->row_tile);
        P->col_tiles = fbmm_cdiv(P->p, P->col_tile);
        P->ntasks = P->batch * P->row_tiles * P->col_tiles;
        if (gemv)   /* B's columns, gathered: p x m accumulator-sized values (same bits) */
            P->scratch_bytes = (size_t)((P->m * P->p * K->itemsize + FBMM_ALIGN - 1) /
                                        FBMM_ALIGN * FBMM_ALIGN);
        else if (!stream)
            P->scratch_bytes = K->scratch(P->row_tile, P->m, P->col_tile);
    }
    if (threads > P->ntasks) threads = (int)P->ntasks;
    P->threads = threads < 1 ? 1 : threads;
    return FBMM_OK;
}

static void FBMM_ENGINE_FN(run_task)(const fbmm_problem *P, int64_t t, void *scratch)
{
    /* plan() returned FBMM_OK: the dtype has a kind, and the kind the path */
    const fbmm_kind *K = FBMM_ENGINE_FN(kinds)[P->dtype];
    if (P->path == FBMM_PATH_SMALL) {
        int64_t b0 = t * P->batch_chunk;
        int64_t b1 = b0 + P->batch_chunk < P->batch ? b0 + P->batch_chunk : P->batch;
        K->small(P, b0, b1);
        return;
    }
    const int64_t per = P->row_tiles * P->col_tiles;
    const int64_t bi = t / per, r = t % per;
    const int64_t i0 = (r / P->col_tiles) * P->row_tile;
    const int64_t j0 = (r % P->col_tiles) * P->col_tile;
    const int64_t rows = P->n - i0 < P->row_tile ? P->n - i0 : P->row_tile;
    const int64_t cols = P->p - j0 < P->col_tile ? P->p - j0 : P->col_tile;
    const char *a = FBMM_ENTRY(P, a, bi) + i0 * P->a.sr;
    const char *b = FBMM_ENTRY(P, b, bi) + j0 * P->b.sc;
    char *c = FBMM_ENTRY(P, c, bi) + i0 * P->c.sr + j0 * P->c.sc;
    const char *d = P->ep.has_bias
        ? FBMM_ENTRY(P, d, bi) + i0 * P->ep.d_sr + j0 * P->ep.d_sc : 0;
    if (P->path == FBMM_PATH_STREAM)
        K->stream(P, a, b, c, d, rows, cols);
    else if (P->path == FBMM_PATH_GEMV)
        K->gemv(P, a, b, c, d, rows, cols, scratch);
    else
        K->tile(P, a, b, c, d, rows, cols, scratch);
}

/* the register-only multiply-add loop of this variant (bench's peak) */
#include "peak.h"

#define FBMM_BLOCKING(MRV, SZ) { MRV, FBMM_NV * (FBMM_VBYTES / (SZ)), FBMM_KC, FBMM_MC, FBMM_NC }

const fbmm_engine FBMM_ENGINE_FN(fbmm_engine) = {
    FBMM_STR(FBMM_ENGINE_NAME),
    FBMM_SMALL_MAX,
    FBMM_BLOCKING(FBMM_MR_F32, 4),
    FBMM_BLOCKING(FBMM_MR_F64, 8),
    FBMM_BLOCKING(FBMM_MR_U32, 4),
    FBMM_BLOCKING(FBMM_MR_U64, 8),
    FBMM_ENGINE_FN(plan),
    FBMM_ENGINE_FN(run_task),
    fbmm_peak_f32,
    fbmm_peak_f64,
};
