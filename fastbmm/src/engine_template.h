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
#undef FBMM_VL
#undef FBMM_NR
#undef FBMM_SMALL_NVMAX
#undef ACC
#undef ACC_IS_INT
#undef ACC_T
#undef MR

#define FBMM_ENGINE_FN(x) FBMM_CAT(x, FBMM_ENGINE_NAME)

static int64_t FBMM_ENGINE_FN(nr_of)(int dtype)
{
    switch (dtype) {
    case FBMM_F16: case FBMM_F16_F32: case FBMM_F32: case FBMM_C64: return FBMM_NV * (FBMM_VBYTES / 4);
    case FBMM_F64: case FBMM_C128: case FBMM_I64: return FBMM_NV * (FBMM_VBYTES / 8);
    default: return FBMM_NV * (FBMM_VBYTES / 4);
    }
}

static int64_t FBMM_ENGINE_FN(mr_of)(int dtype)
{
    switch (dtype) {
    case FBMM_F16: case FBMM_F16_F32: case FBMM_F32: case FBMM_C64: return FBMM_MR_F32;
    case FBMM_F64: case FBMM_C128: return FBMM_MR_F64;
    case FBMM_I64: return FBMM_MR_U64;
    default: return FBMM_MR_U32;
    }
}

static int64_t FBMM_ENGINE_FN(itemsize)(int dtype)
{
    static const int64_t sizes[FBMM_NUM_DTYPES] = {2, 4, 8, 8, 16, 1, 1, 2, 4, 8, 2};
    return sizes[dtype];
}

static size_t FBMM_ENGINE_FN(scratch_for)(int dtype, int64_t rows, int64_t K, int64_t cols)
{
    switch (dtype) {
    case FBMM_F32: return scratch_bytes_f32(&ops_f32, rows, K, cols);
    case FBMM_F16: return scratch_bytes_f32(&ops_f16, rows, K, cols);
    case FBMM_F16_F32: return scratch_bytes_f32(&ops_f16f32, rows, K, cols);
    case FBMM_C64: return scratch_bytes_f32(&ops_c64, rows, 2 * K, 2 * cols);
    case FBMM_F64: return scratch_bytes_f64(&ops_f64, rows, K, cols);
    case FBMM_C128: return scratch_bytes_f64(&ops_c128, rows, 2 * K, 2 * cols);
    case FBMM_I64: return scratch_bytes_u64(&ops_i64, rows, K, cols);
    default: return scratch_bytes_u32(&ops_i32, rows, K, cols);
    }
}

static int64_t fbmm_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/*
 * The schedule. Small matrices: chunks of whole matrices per task. Packed:
 * one task per matrix when the batch spreads evenly over the threads; else each
 * matrix is cut into row x column tiles (columns first: a column tile reuses
 * A in place and packs only its own part of B) until there are about four
 * tasks per thread, but no tile smaller than FBMM_MIN_TILE_ROWS x _COLS.
 */
static void FBMM_ENGINE_FN(plan)(fbmm_problem *P, int nthreads)
{
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
        const int64_t mr = FBMM_ENGINE_FN(mr_of)(P->dtype);
        const int64_t isz = FBMM_ENGINE_FN(itemsize)(P->dtype);
        const int same_bits = P->dtype == FBMM_F32 || P->dtype == FBMM_F64 ||
                              P->dtype == FBMM_I32 || P->dtype == FBMM_I64;
        const int stream = P->n <= FBMM_STREAM_MAX_ROWS && P->b.sc == isz && P->b.sr % isz == 0 &&
                           same_bits;
        const int gemv = !stream && P->p <= FBMM_GEMV_MAX_COLS && P->a.sc == isz && same_bits &&
                         P->m * P->p * isz <= FBMM_GEMV_MAX_B_BYTES;
        const int64_t nr = FBMM_ENGINE_FN(nr_of)(P->dtype);
        P->path = stream ? FBMM_PATH_STREAM : gemv ? FBMM_PATH_GEMV : FBMM_PATH_PACKED;
        if (P->dtype == FBMM_F16 && P->row_tile > FBMM_MC) P->row_tile = FBMM_MC / mr * mr;
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
        if (gemv)   /* B's columns, gathered: p x m accumulator-sized values */
            P->scratch_bytes = (size_t)((P->m * P->p * isz + FBMM_ALIGN - 1) / FBMM_ALIGN * FBMM_ALIGN);
        else if (!stream)
            P->scratch_bytes = FBMM_ENGINE_FN(scratch_for)(P->dtype, P->row_tile, P->m, P->col_tile);
    }
    if (threads > P->ntasks) threads = (int)P->ntasks;
    P->threads = threads < 1 ? 1 : threads;
}

#define FBMM_TILE(FAM, KIND, MULT)                                                     \
    gemm_tile_##FAM(&ops_##KIND, a, P->a.sr, P->a.sc, b, P->b.sr, P->b.sc,            \
                    c, P->c.sr, P->c.sc, &P->ep, d,                                    \
                    rows, (MULT) * P->m, (MULT) * cols, scratch)

#define FBMM_GEMV(FAM, KIND)                                                           \
    gemv_##FAM(&ops_##KIND, a, P->a.sr, b, P->b.sr, P->b.sc,                          \
               c, P->c.sr, P->c.sc, &P->ep, d, rows, P->m, cols, scratch)

#define FBMM_STREAM(FAM, KIND)                                                         \
    gemm_stream_##FAM(&ops_##KIND, a, P->a.sr, P->a.sc, b, P->b.sr,                    \
                      c, P->c.sr, P->c.sc, &P->ep, d, rows, P->m, cols)

static void FBMM_ENGINE_FN(run_task)(const fbmm_problem *P, int64_t t, void *scratch)
{
    if (P->path == FBMM_PATH_SMALL) {
        int64_t b0 = t * P->batch_chunk;
        int64_t b1 = b0 + P->batch_chunk < P->batch ? b0 + P->batch_chunk : P->batch;
        switch (P->dtype) {
        case FBMM_F16: small_f16(P, b0, b1); break;
        case FBMM_F16_F32: small_f16f32(P, b0, b1); break;
        case FBMM_F32: small_f32(P, b0, b1); break;
        case FBMM_F64: small_f64(P, b0, b1); break;
        case FBMM_C64: small_c64(P, b0, b1); break;
        case FBMM_C128: small_c128(P, b0, b1); break;
        case FBMM_I8: small_i8(P, b0, b1); break;
        case FBMM_U8: small_u8(P, b0, b1); break;
        case FBMM_I16: small_i16(P, b0, b1); break;
        case FBMM_I32: small_i32(P, b0, b1); break;
        case FBMM_I64: small_i64(P, b0, b1); break;
        }
        return;
    }
    const int64_t per = P->row_tiles * P->col_tiles;
    const int64_t bi = t / per, r = t % per;
    const int64_t i0 = (r / P->col_tiles) * P->row_tile;
    const int64_t j0 = (r % P->col_tiles) * P->col_tile;
    const int64_t rows = P->n - i0 < P->row_tile ? P->n - i0 : P->row_tile;
    const int64_t cols = P->p - j0 < P->col_tile ? P->p - j0 : P->col_tile;
    const char *a = fbmm_entry(&P->a, P->a_off, bi) + i0 * P->a.sr;
    const char *b = fbmm_entry(&P->b, P->b_off, bi) + j0 * P->b.sc;
    char *c = fbmm_entry(&P->c, P->c_off, bi) + i0 * P->c.sr + j0 * P->c.sc;
    const char *d = P->ep.has_bias
        ? fbmm_entry(&P->d, P->d_off, bi) + i0 * P->ep.d_sr + j0 * P->ep.d_sc : 0;
    if (P->path == FBMM_PATH_GEMV) {
        switch (P->dtype) {
        case FBMM_F32: FBMM_GEMV(f32, f32); break;
        case FBMM_F64: FBMM_GEMV(f64, f64); break;
        case FBMM_I32: FBMM_GEMV(u32, i32); break;
        case FBMM_I64: FBMM_GEMV(u64, i64); break;
        }
        return;
    }
    if (P->path == FBMM_PATH_STREAM) {
        switch (P->dtype) {
        case FBMM_F32: FBMM_STREAM(f32, f32); break;
        case FBMM_F64: FBMM_STREAM(f64, f64); break;
        case FBMM_I32: FBMM_STREAM(u32, i32); break;
        case FBMM_I64: FBMM_STREAM(u64, i64); break;
        }
        return;
    }
    switch (P->dtype) {
    case FBMM_F16: FBMM_TILE(f32, f16, 1); break;
    case FBMM_F16_F32: FBMM_TILE(f32, f16f32, 1); break;
    case FBMM_F32: FBMM_TILE(f32, f32, 1); break;
    case FBMM_C64: FBMM_TILE(f32, c64, 2); break;
    case FBMM_F64: FBMM_TILE(f64, f64, 1); break;
    case FBMM_C128: FBMM_TILE(f64, c128, 2); break;
    case FBMM_I8: FBMM_TILE(u32, i8, 1); break;
    case FBMM_U8: FBMM_TILE(u32, u8, 1); break;
    case FBMM_I16: FBMM_TILE(u32, i16, 1); break;
    case FBMM_I32: FBMM_TILE(u32, i32, 1); break;
    case FBMM_I64: FBMM_TILE(u64, i64, 1); break;
    }
}

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
};
