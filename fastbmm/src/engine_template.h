/*
 * engine_template.h -- one whole ISA variant of the engine. setup.py writes,
 * for each row of isa.def, src/generated/engine_<isa>.c: the row's name and
 * block sizes as macros (FBMM_ENGINE_NAME, FBMM_VBYTES, FBMM_SMALL_MAX,
 * FBMM_MR_<family>, FBMM_KC_<family>, ...), then #include of this file, and
 * compiles it with that row's flags alone; dispatch.c picks a variant at
 * import time from what the CPU reports.
 */
#include <string.h>
#include "fastbmm.h"
#include "block_sizes.h"
#include "elements.h"
#include "next_fetch.h"

#define FBMM_STR_(x) #x
#define FBMM_STR(x) FBMM_STR_(x)
#define FBMM_CAT_(a, b) a##_##b
#define FBMM_CAT(a, b) FBMM_CAT_(a, b)
#define FBMM_CAT3_(a, b, c) a##_##b##_##c
#define FBMM_CAT3(a, b, c) FBMM_CAT3_(a, b, c)

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

/*
 * What the engine has for one dtype: its kernel per path (stream and gemv
 * NULL: the dtype takes neither the few-rows nor the few-columns path),
 * scratch size, tile geometry and staging. Engine-internal; the table below
 * is indexed by enum fbmm_dtype, and the planner refuses a dtype without an
 * entry, so run_task never meets a dtype it has no kernel for.
 */
typedef struct {
    void (*small)(const fbmm_problem *P, int64_t b0, int64_t b1);
    /* next_a, next_b, next_c: the operands' and the result's origins of
     * the tile this thread is likely to run next (NULL: none), for
     * gemm_tile's prefetch */
    void (*tile)(const fbmm_problem *P, const char *a, const char *b, char *c, const char *d,
                 int64_t rows, int64_t cols, void *scratch, const char *next_a,
                 const char *next_b, const char *next_c);
    void (*stream)(const fbmm_problem *P, const char *a, const char *b, char *c, const char *d,
                   int64_t rows, int64_t cols);
    void (*gemv)(const fbmm_problem *P, const char *a, const char *b, char *c, const char *d,
                 int64_t rows, int64_t cols, void *scratch);
    size_t (*scratch)(int64_t rows, int64_t K, int64_t cols);
    int64_t small_max;          /* n, m, p up to this take the small path */
    int64_t itemsize;           /* bytes of one input element */
    int64_t mr, nr;             /* the family's register tile */
    int64_t mc;                 /* the family's rows per packed block of A */
    int staged;                 /* rounds once at the end; tiles <= MC rows */
    int vnni;                   /* its packed nest may be gemm_vnni.h's (fbmm_int_nest) */
} fbmm_kind;

/*
 * bfloat16's packed nests beyond widening to float32 (enum fbmm_bf16_nest):
 * the pair-dot nest (gemm_pairdot.h, AVX512-BF16's vdpbf16ps) and the AMX
 * nest (gemm_amx.h, AMX-BF16's tdpbf16ps), in the engines with 64-byte
 * vectors. Compiled for AVX-512F (the avx512 row), they are the instructions
 * themselves, in functions built for target("avx512bf16") and
 * target("amx-tile,amx-bf16"), run only where the CPU reports them (and, for
 * AMX, where Linux grants the tile state: dispatch.c); on narrower code (the
 * avx512_emulated row) they are software models of the instructions that
 * always run, so that the tests cover both nests on any x86-64 CPU. Without
 * a compiler that has the instructions' intrinsics (GCC >= 11, Clang >= 14),
 * the engine keeps to widening. (The CPU is asked through CPUID, dispatch.c.)
 */
#if FBMM_VBYTES == 64 && defined(__AVX512F__) && defined(__x86_64__) && \
    ((defined(__clang__) && __clang_major__ >= 14) || (!defined(__clang__) && __GNUC__ >= 11))
#  define FBMM_PAIRDOT 1
#  define FBMM_PAIRDOT_EMULATED 0
#elif FBMM_VBYTES == 64 && !defined(__AVX512F__) && defined(__x86_64__)
#  define FBMM_PAIRDOT 1
#  define FBMM_PAIRDOT_EMULATED 1
#else
#  define FBMM_PAIRDOT 0
#  define FBMM_PAIRDOT_EMULATED 0
#endif

/* Whether this engine can run a bfloat16 nest on this CPU. */
static int fbmm_bf16_runnable(int nest)
{
    switch (nest) {
    case FBMM_BF16_WIDEN:
        return 1;
#if FBMM_PAIRDOT
    case FBMM_BF16_PAIRDOT:
        return FBMM_PAIRDOT_EMULATED || fbmm_cpu_has_avx512bf16();
    case FBMM_BF16_AMX:
        return FBMM_PAIRDOT_EMULATED || fbmm_amx_bf16_usable();
#endif
    default:
        return 0;
    }
}

/* The nest a test forced (set_bf16_nest), or -1: the best runnable one. */
static int fbmm_bf16_forced = -1;

/* The bfloat16 nest in use: AMX, else widening. The pair-dot nest runs only
 * when forced: on the one CPU with AVX512-BF16 it was timed on (a Xeon,
 * family 6 model 207, 2026-12-05) it reached 0.4-0.6x the widening nest's
 * speed (BENCHMARKS.md). */
static int fbmm_bf16_nest(void)
{
    const int forced = __atomic_load_n(&fbmm_bf16_forced, __ATOMIC_RELAXED);
    if (forced >= 0) return forced;
    if (fbmm_bf16_runnable(FBMM_BF16_AMX)) return FBMM_BF16_AMX;
    return FBMM_BF16_WIDEN;
}

static int fbmm_set_bf16_nest(int nest)
{
    if (nest != -1 && !fbmm_bf16_runnable(nest)) return 0;
    __atomic_store_n(&fbmm_bf16_forced, nest, __ATOMIC_RELAXED);
    return 1;
}

/*
 * The integer nests (enum fbmm_int_nest): int8, uint8 and int16 products
 * widen to 32-bit lanes, or run vpdpwssd (gemm_vnni.h, FBMM_INT_PAIRS):
 *   - in the same engines as bfloat16's pair-dot nest (FBMM_PAIRDOT):
 *     AVX512-VNNI's form where the CPU reports avx512vnni, a model of it in
 *     the avx512_emulated variant;
 *   - in the avx2 engine (FBMM_INT_PAIRS_AVX2): AVX-VNNI's VEX form on 256-bit
 *     vectors, where the CPU reports it (Intel Alder Lake on: the client
 *     CPUs without AVX-512), with GCC >= 11 or Clang >= 12.
 * Both nests give the same bits (wrapping sums); VNNI is the default
 * wherever it runs.
 */
#if FBMM_PAIRDOT
#  define FBMM_INT_PAIRS 1
#  define FBMM_INT_PAIRS_AVX2 0
#elif FBMM_VBYTES == 32 && defined(__AVX2__) && defined(__x86_64__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11))
#  define FBMM_INT_PAIRS 1
#  define FBMM_INT_PAIRS_AVX2 1
#else
#  define FBMM_INT_PAIRS 0
#  define FBMM_INT_PAIRS_AVX2 0
#endif

static int fbmm_int_runnable(int nest)
{
    switch (nest) {
    case FBMM_INT_WIDEN:
        return 1;
#if FBMM_INT_PAIRS
    case FBMM_INT_VNNI:
        if (FBMM_INT_PAIRS_AVX2) return fbmm_cpu_has_avxvnni();
        return FBMM_PAIRDOT_EMULATED || fbmm_cpu_has_avx512vnni();
#endif
    default:
        return 0;
    }
}

/* The nest a test forced (set_int_nest), or -1: the best runnable one. */
static int fbmm_int_forced = -1;

static int fbmm_int_nest(void)
{
    const int forced = __atomic_load_n(&fbmm_int_forced, __ATOMIC_RELAXED);
    if (forced >= 0) return forced;
    return fbmm_int_runnable(FBMM_INT_VNNI) ? FBMM_INT_VNNI : FBMM_INT_WIDEN;
}

static int fbmm_set_int_nest(int nest)
{
    if (nest != -1 && !fbmm_int_runnable(nest)) return 0;
    __atomic_store_n(&fbmm_int_forced, nest, __ATOMIC_RELAXED);
    return 1;
}

/* Every family and, inside it, its dtypes' kernels and fbmm_kind kind_<kind>
 * (written by setup.py from dtypes.def). */
#include "generated/kinds.h"

#define FBMM_ENGINE_FN(x) FBMM_CAT(x, FBMM_ENGINE_NAME)

/* Indexed by enum fbmm_dtype: one entry per row of dtypes.def. */
static const fbmm_kind *const FBMM_ENGINE_FN(kinds)[FBMM_NUM_DTYPES] = {
#define FBMM_FAMILY(name, acc_t, arithmetic)
#define FBMM_DTYPE(CODE, kind, ...) [FBMM_##CODE] = &kind_##kind,
#include "dtypes.def"
#undef FBMM_FAMILY
#undef FBMM_DTYPE
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
    P->next_fetch = 0;
    P->row_tiles = 1; P->col_tiles = 1;
    P->batch_chunk = 1;
    P->scratch_bytes = 0;
    const int gemv_ok = K->gemv && P->a.sc == K->itemsize;
    const int small = P->n <= K->small_max && P->m <= K->small_max && P->p <= K->small_max &&
                      !(gemv_ok && P->p == 1 && P->m >= FBMM_SMALL_GEMV_MIN_M) &&
                      !(K->vnni && P->n > FBMM_SMALL_MAX_VNNI && P->p > FBMM_SMALL_MAX_VNNI &&
                        fbmm_int_nest() == FBMM_INT_VNNI);
    if (small) {
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
        const int gemv = !stream && gemv_ok && P->p <= FBMM_GEMV_MAX_COLS &&
                         P->m * P->p * K->itemsize <= FBMM_GEMV_MAX_B_BYTES;
        P->path = stream ? FBMM_PATH_STREAM : gemv ? FBMM_PATH_GEMV : FBMM_PATH_PACKED;
        /* a staged kind's accumulation buffer holds at most MC rows */
        if (K->staged && P->row_tile > K->mc) P->row_tile = K->mc / mr * mr;
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
        /* the next tile's operands prefetched (gemm_tile) only where the
         * batch's A and B outgrow L2: a batch that stays in L2 between calls
         * pays for the prefetches and gains nothing */
        P->next_fetch = (double)P->batch * (double)(P->n + P->p) * (double)P->m *
                            (double)K->itemsize > FBMM_NEXT_FETCH_MIN_BATCH_BYTES;
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
    /* The task this thread most likely runs next: tasks are handed out in
     * order from one counter (threads.c), so t + threads while the threads
     * keep pace; a wrong guess only fetches lines another thread reads. */
    const char *na = 0, *nb = 0, *nc = 0;
    const int64_t tn = t + P->threads;
    if (P->path == FBMM_PATH_PACKED && tn < P->ntasks && P->next_fetch) {
        const int64_t bn = tn / per, rn = tn % per;
        na = FBMM_ENTRY(P, a, bn) + (rn / P->col_tiles) * P->row_tile * P->a.sr;
        nb = FBMM_ENTRY(P, b, bn) + (rn % P->col_tiles) * P->col_tile * P->b.sc;
        nc = FBMM_ENTRY(P, c, bn) + (rn / P->col_tiles) * P->row_tile * P->c.sr +
             (rn % P->col_tiles) * P->col_tile * P->c.sc;
    }
    char *c = FBMM_ENTRY(P, c, bi) + i0 * P->c.sr + j0 * P->c.sc;
    const char *d = P->ep.has_bias
        ? FBMM_ENTRY(P, d, bi) + i0 * P->ep.d_sr + j0 * P->ep.d_sc : 0;
    if (P->path == FBMM_PATH_STREAM)
        K->stream(P, a, b, c, d, rows, cols);
    else if (P->path == FBMM_PATH_GEMV)
        K->gemv(P, a, b, c, d, rows, cols, scratch);
    else
        K->tile(P, a, b, c, d, rows, cols, scratch, na, nb, nc);
}

#define FBMM_BLOCKING(FAM) \
    { FBMM_MR_##FAM, FBMM_NV * (FBMM_VBYTES / (int64_t)sizeof(fbmm_acc_##FAM##_t)), \
      FBMM_KC_##FAM, FBMM_MC_##FAM, FBMM_NC_##FAM }

const fbmm_engine FBMM_ENGINE_FN(fbmm_engine) = {
    FBMM_STR(FBMM_ENGINE_NAME),
    FBMM_SMALL_MAX,
    FBMM_SMALL_MAX_COMPLEX,
    FBMM_BLOCKING(f32),
    FBMM_BLOCKING(f64),
    FBMM_BLOCKING(u32),
    FBMM_BLOCKING(u64),
    FBMM_ENGINE_FN(plan),
    FBMM_ENGINE_FN(run_task),
    peak_f32,       /* peak.h, in the float families and the 32-bit integer one */
    peak_f64,
    peak_u32,
    fbmm_bf16_nest,
    fbmm_bf16_runnable,
    fbmm_set_bf16_nest,
    fbmm_int_nest,
    fbmm_int_runnable,
    fbmm_set_int_nest,
};
