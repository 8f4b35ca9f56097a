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

/*
 * The dtype registry (dtypes.def) as C: accumulator types fbmm_acc_<family>_t,
 * the codes FBMM_<CODE> in row order, and each row's facts (dtypes.c).
 */
enum fbmm_dtype_flags { FBMM_PLAIN = 0, FBMM_COMPLEX = 1, FBMM_STAGED = 2 };
enum fbmm_arithmetic { FBMM_FLOAT = 0, FBMM_WRAPPING = 1 };

#define FBMM_FAMILY(name, acc_t, arithmetic) typedef acc_t fbmm_acc_##name##_t;
#define FBMM_DTYPE(...)
#include "dtypes.def"
#undef FBMM_FAMILY
#undef FBMM_DTYPE

enum fbmm_dtype {
#define FBMM_FAMILY(...)
#define FBMM_DTYPE(CODE, ...) FBMM_##CODE,
#include "dtypes.def"
#undef FBMM_FAMILY
#undef FBMM_DTYPE
    FBMM_NUM_DTYPES
};

/* One row of dtypes.def, for the Python layer (fastbmm._dtypes). */
typedef struct {
    const char *code, *kind, *family;
    const char *numpy_in, *numpy_out;   /* NumPy (or ml_dtypes) dtype names */
    const char *torch, *torch_cpp, *scalar_cpp;
    int flags;                          /* enum fbmm_dtype_flags */
    int arithmetic;                     /* the family's enum fbmm_arithmetic */
    int64_t in_itemsize, out_itemsize;  /* bytes of an operand / result element */
} fbmm_dtype_info;

/* dtypes.c: row `code` of dtypes.def, NULL outside 0 .. FBMM_NUM_DTYPES - 1 */
const fbmm_dtype_info *fbmm_dtype_at(int code);

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
    /* matmul's broadcast batch dimensions, or NULL: then entry i of X starts
     * at X.data + i * X.sb. Only the caller's memory; never freed here. */
    const struct fbmm_batch_dims *bdims;

    /* Filled by fbmm_plan(). */
    int path;
    int64_t batch_chunk;        /* SMALL: batch entries per task */
    int64_t row_tile, col_tile; /* PACKED: rows and columns of C per task */
    int64_t row_tiles, col_tiles;
    int next_fetch;             /* PACKED: prefetch the next tile's operands (gemm_tile) */
    int64_t ntasks;
    int threads;                /* threads worth starting (1: run serially) */
    size_t scratch_bytes;       /* per thread, a multiple of FBMM_ALIGN */
} fbmm_problem;

#define FBMM_ALIGN 64

/* The register and cache blocking of one kernel family (one accumulator type). */
typedef struct {
    int64_t mr, nr, kc, mc, nc;
} fbmm_blocking;

/* What fbmm_engine.plan() returns. */
enum fbmm_status {
    FBMM_OK = 0,
    FBMM_ERR_DTYPE = 1          /* no kernel for P->dtype: nothing may run */
};

/* The operands, as indices into fbmm_batch_dims.strides (lower-case suffixes:
 * FBMM_ENTRY(P, a, bi) pastes the field name). */
enum { FBMM_OP_a = 0, FBMM_OP_b, FBMM_OP_c, FBMM_OP_d, FBMM_NUM_OPERANDS };

/* NumPy 2 allows 64 dimensions (NPY_MAXDIMS); NumPy 1 allowed 32. */
#define FBMM_MAX_BATCH_DIMS 64

/*
 * A batch of several dimensions (matmul's broadcasting), described instead
 * of tabulated: entry bi of the flattened batch has the row-major multi-index
 * (i_0, ..., i_{ndim-1}) in `shape`, and operand X's entry starts at
 *     X.data + sum_d i_d * strides[FBMM_OP_X][d]
 * (stride 0 along the dimensions X is broadcast over). Its size is fixed,
 * whatever the batch: a per-entry offset table would cost 8 bytes per entry
 * and operand, more than the result itself for small matrices.
 */
typedef struct fbmm_batch_dims {
    int ndim;                   /* 2 ..FBMM_MAX_BATCH_DIMS (one dimension: use X.sb) */
    int64_t shape[FBMM_MAX_BATCH_DIMS];
    int64_t strides[FBMM_NUM_OPERANDS][FBMM_MAX_BATCH_DIMS];
} fbmm_batch_dims;

/* Byte offset of entry bi of operand `op`: one division per dimension (the
 * packed paths call this once per task; the small path walks a cursor). */
static inline int64_t fbmm_batch_offset(const fbmm_batch_dims *bd, int op, int64_t bi)
{
    const int64_t *st = bd->strides[op];
    int64_t off = 0;
    for (int d = bd->ndim - 1; d > 0; d--) {
        const int64_t q = bi / bd->shape[d];
        off += (bi - q * bd->shape[d]) * st[d];
        bi = q;
    }
    return off + bi * st[0];
}

/* Entry bi of operand x (index op) of a problem whose batch is bd (or plain). */
static inline char *fbmm_entry(const fbmm_operand *x, const fbmm_batch_dims *bd, int op, int64_t bi)
{
    return x->data + (bd ? fbmm_batch_offset(bd, op, bi) : bi * x->sb);
}
#define FBMM_ENTRY(P, X, bi) fbmm_entry(&(P)->X, (P)->bdims, FBMM_OP_##X, (bi))

/*
 * Consecutive batch entries b0, b0 + 1, ... of A, B, C (and D when the
 * epilogue has a bias): the multi-index advances like an odometer, so a step costs
 * additions, not fbmm_entry's divisions (the small path steps once per
 * matrix of a few dozen multiply-adds). Step only to entries that exist:
 * a pointer is never formed one entry past the end.
 */
typedef struct {
    const char *at[FBMM_NUM_OPERANDS];
    int nops;
    int64_t next, end;          /* fbmm_cursor_step: the entries [next, end) are left */
    int stepped;                /* at[] is entry next - 1, already handed out */
    int64_t idx[FBMM_MAX_BATCH_DIMS];
} fbmm_batch_cursor;

/* A cursor at entry b0 that fbmm_cursor_step walks up to entry b1 (excluded). */
static inline void fbmm_cursor_init(fbmm_batch_cursor *cur, const fbmm_problem *P, int64_t b0,
                                    int64_t b1)
{
    cur->next = b0;
    cur->end = b1;
    cur->stepped = 0;
    const int with_d = P->ep.has_bias;
    cur->nops = with_d ? 4 : 3;
    cur->at[FBMM_OP_a] = FBMM_ENTRY(P, a, b0);
    cur->at[FBMM_OP_b] = FBMM_ENTRY(P, b, b0);
    cur->at[FBMM_OP_c] = FBMM_ENTRY(P, c, b0);
    cur->at[FBMM_OP_d] = with_d ? FBMM_ENTRY(P, d, b0) : 0;
    const fbmm_batch_dims *bd = P->bdims;
    if (!bd) return;
    for (int d = bd->ndim - 1; d >= 0; d--) {
        cur->idx[d] = b0 % bd->shape[d];
        b0 /= bd->shape[d];
    }
}

static inline void fbmm_cursor_next(fbmm_batch_cursor *cur, const fbmm_problem *P)
{
    const fbmm_batch_dims *bd = P->bdims;
    if (!bd) {
        cur->at[FBMM_OP_a] += P->a.sb;
        cur->at[FBMM_OP_b] += P->b.sb;
        cur->at[FBMM_OP_c] += P->c.sb;
        if (cur->nops == 4) cur->at[FBMM_OP_d] += P->d.sb;
        return;
    }
    for (int d = bd->ndim - 1; d >= 0; d--) {
        if (++cur->idx[d] < bd->shape[d]) {
            for (int op = 0; op < cur->nops; op++) cur->at[op] += bd->strides[op][d];
            return;
        }
        /* wrap this digit to 0 and carry into the next one out */
        cur->idx[d] = 0;
        for (int op = 0; op < cur->nops; op++)
            cur->at[op] -= (bd->shape[d] - 1) * bd->strides[op][d];
    }
}

/* The next entry's A, B, C and D (NULL without a bias); 0 once past the end.
 * The cursor moves only between entries that exist (see above). */
static inline int fbmm_cursor_step(fbmm_batch_cursor *cur, const fbmm_problem *P,
                                   const char **a, const char **b, char **c, const char **d)
{
    if (cur->next >= cur->end) return 0;
    if (cur->stepped) fbmm_cursor_next(cur, P);
    cur->stepped = 1;
    cur->next++;
    *a = cur->at[FBMM_OP_a];
    *b = cur->at[FBMM_OP_b];
    *c = (char *)cur->at[FBMM_OP_c];
    *d = cur->at[FBMM_OP_d];
    return 1;
}

/* How a bfloat16 product's packed nest sums (engine_template.h): widened
 * to float32 (gemm_template.h), pairs of products per float32 lane with
 * AVX512-BF16 (gemm_pairdot.h), or AMX-BF16 tiles (gemm_amx.h). */
enum fbmm_bf16_nest {
    FBMM_BF16_WIDEN = 0,
    FBMM_BF16_PAIRDOT = 1,
    FBMM_BF16_AMX = 2
};

/* How an int8, uint8 or int16 product's packed nest sums (engine_template.h):
 * widened to 32-bit lanes (gemm_template.h, vpmulld) or in pairs of 16-bit
 * products per lane with AVX512-VNNI (gemm_vnni.h, vpdpwssd). */
enum fbmm_int_nest {
    FBMM_INT_WIDEN = 0,
    FBMM_INT_VNNI = 1
};

/* One ISA variant of the whole engine (a row of isa.def). */
typedef struct {
    const char *name;           /* "avx512", "avx2", "baseline", ... */
    int64_t small_max;          /* n, m, p all <= small_max: the unpacked path */
    int64_t small_max_complex;  /* the same for the complex dtypes */
    fbmm_blocking f32, f64, u32, u64;
    /* Decide path and tiling for `nthreads` threads; fills the plan fields.
     * Returns FBMM_OK, or FBMM_ERR_DTYPE for a dtype this engine has no
     * kernel for: the caller must then raise and run no task. */
    int (*plan)(fbmm_problem *prob, int nthreads);
    /* Run task `t` of a problem planned FBMM_OK with a thread's scratch block. */
    void (*run_task)(const fbmm_problem *prob, int64_t t, void *scratch);
    /* peak.h: `iters` steps of this variant's register-only multiply-add loop
     * on float32 / float64 / 32-bit integer vectors (the benchmark's
     * arithmetic peak). Returns a sum of the accumulators; *flops (unless
     * NULL): the operations done. */
    double (*peak_f32)(int64_t iters, int64_t *flops);
    double (*peak_f64)(int64_t iters, int64_t *flops);
    double (*peak_u32)(int64_t iters, int64_t *flops);
    /* bfloat16's packed nest (enum fbmm_bf16_nest): the one in use, whether
     * one can run on this CPU, and forcing one (-1: the best runnable again;
     * returns 0, changing nothing, for one that cannot run here). */
    int (*bf16_nest)(void);
    int (*bf16_runnable)(int nest);
    int (*set_bf16_nest)(int nest);
    /* the same for the 16-bit-or-narrower integers (enum fbmm_int_nest) */
    int (*int_nest)(void);
    int (*int_runnable)(int nest);
    int (*set_int_nest)(int nest);
} fbmm_engine;

/* dispatch.c */
int fbmm_num_engines(void);                       /* variants compiled in */
const fbmm_engine *fbmm_engine_at(int i);         /* best first */
int fbmm_engine_supported(const fbmm_engine *e);  /* runnable on this CPU? */
int fbmm_engine_test_only(const fbmm_engine *e);  /* a testing variant, never chosen at import */
const char *fbmm_cpu_features(void);              /* e.g. "sse2 avx avx2 fma f16c" */
/* AVX512-BF16 on this CPU (CPUID); AMX tiles with bfloat16 on this CPU and
 * the OS's leave to use them (Linux's arch_prctl(ARCH_REQ_XCOMP_PERM), asked
 * once per process). */
int fbmm_cpu_has_avx512bf16(void);
int fbmm_cpu_has_avx512vnni(void);   /* AVX512-VNNI (vpdpwssd) on this CPU */
int fbmm_cpu_has_avxvnni(void);      /* AVX-VNNI (VEX vpdpwssd, with AVX2) on this CPU */
int fbmm_amx_bf16_usable(void);
/* Whether the packed nest prefetches an A read in place (block_sizes.h's
 * FBMM_A_PREFETCH_MIN_ROW_BYTES): on AMD CPUs, and off x86 as before; not on
 * Intel ones, whose L2 streamer covers those rows without it. */
int fbmm_cpu_prefetch_a_rows(void);

#ifdef __cplusplus
}
#endif
#endif
