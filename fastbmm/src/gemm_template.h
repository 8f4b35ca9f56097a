/*
 * gemm_template.h -- one accumulator family of the packed engine: the
 * register-blocked microkernel, the Goto/BLIS loop nest around it, and the
 * few-rows (stream) and few-columns (gemv) paths.
 *
 * Included once per family by family_begin.h, which defines the family's
 * parameters (ACC, ACC_T, ACC_IS_INT from dtypes.def; MR, KC, MC, NC from
 * isa.def; VL, NR, VEC_T, FBMM_NAME(x)); family_end.h #undefs them. Written
 * with GCC/Clang vector extensions, so the same source becomes AVX-512,
 * AVX2, SSE2 or NEON code depending only on the flags its engine is
 * compiled with.
 *
 * Integers accumulate in unsigned 32/64-bit lanes: arithmetic mod 2^32 (or
 * 2^64) is exactly what C's two's-complement wrap-around gives in any narrower
 * result type, and unsigned overflow is defined behaviour (signed is not).
 */

typedef ACC_T FBMM_NAME(vec) __attribute__((vector_size(FBMM_VBYTES)));

/* The small paths' m rows of B (nv vectors each) when they are whole vectors
 * of the accumulator's bits (`whole`): read in place where B and its row
 * stride are vector-aligned, or where `in_place_unaligned` says so; else
 * copied a vector at a time into bp. Returns where the rows are, *ldb bytes
 * apart; NULL when not whole, and the caller copies its rows, zero-padded,
 * into bp (*ldb: nv vectors). */
static inline __attribute__((always_inline)) const char *FBMM_NAME(small_b_rows)(
    const char *B, int64_t b_sr, int64_t m, int64_t nv, int whole, int in_place_unaligned,
    VEC_T *bp, int64_t *ldb)
{
    *ldb = nv * (int64_t)sizeof(VEC_T);
    if (!whole) return 0;
    if (in_place_unaligned || (((uintptr_t)B | (uint64_t)b_sr) % sizeof(VEC_T)) == 0) {
        *ldb = b_sr;
        return B;
    }
    for (int64_t k = 0; k < m; k++)
        for (int64_t v = 0; v < nv; v++)
            memcpy(&bp[k * nv + v], B + k * b_sr + v * (int64_t)sizeof(VEC_T), sizeof(VEC_T));
    return (const char *)bp;
}

/* The RB bytes at p (RB = 8 or 16, less than a vector) repeated across a
 * vector: one broadcast load (vbroadcastsd, vbroadcastf128, vbroadcastf32x4).
 * The trap: GCC finds vbroadcastf128 in the element-wise form for 32-byte
 * vectors but builds a 64-byte one on the stack (four stores, then a load
 * that cannot be forwarded from them), so AVX-512 says it with an
 * intrinsic; 8 bytes are one double's bits on every ISA. (Stored through
 * dst: a 64-byte vector returned without AVX-512, in the emulated test
 * variant, would change the ABI.) */
#if defined(__AVX512F__) && FBMM_VBYTES == 64
#  include <immintrin.h>
#endif
static inline __attribute__((always_inline)) void FBMM_NAME(repeat_row)(VEC_T *dst, const char *p,
                                                                        const int RB)
{
    if (RB == 8) {
        typedef double d_vec __attribute__((vector_size(FBMM_VBYTES)));
        double x;
        memcpy(&x, p, 8);
        d_vec v;
        FBMM_UNROLL
        for (int l = 0; l < FBMM_VBYTES / 8; l++) v[l] = x;
        *dst = (VEC_T)v;
        return;
    }
#if defined(__AVX512F__) && FBMM_VBYTES == 64
    *dst = (VEC_T)_mm512_broadcast_f32x4(_mm_loadu_ps((const float *)p));
#else
    typedef ACC_T row16 __attribute__((vector_size(16)));
    const int pc = 16 / (int)sizeof(ACC_T);
    row16 t;
    memcpy(&t, p, 16);
    VEC_T v;
    FBMM_UNROLL
    for (int l = 0; l < VL; l++) v[l] = t[l % pc];
    *dst = v;
#endif
}

/* How one dtype enters and leaves this family (kind_real.h, kind_complex.h). */
typedef struct {
    /* pack rows [0, mc) x logical columns [k0, k0 + kc) of A into MR-row slivers */
    void (*pack_a)(ACC_T *dst, const char *a, int64_t sr, int64_t sc,
                   int64_t mc, int64_t k0, int64_t kc);
    /* pack logical rows [k0, k0 + kc) x columns [j0, j0 + nc) of B into NR-column slivers */
    void (*pack_b)(ACC_T *dst, const char *b, int64_t sr, int64_t sc,
                   int64_t k0, int64_t kc, int64_t j0, int64_t nc);
    /* write (first) or add an mr x nr tile (row stride NR) at C's tile origin,
     * through the epilogue (d: D's tile origin); with mr = 1, any nr (a whole
     * staging row: stage_out) */
    void (*store)(char *c, int64_t sr, int64_t sc, const ACC_T *tile,
                  int64_t mr, int64_t nr, int first, const fbmm_epilogue *ep, const char *d);
    int cplx;        /* 1m complex: logical K = 2m, logical columns = 2p */
    int same_repr;   /* the inputs' elements are ACC_T bits (complex: pairs of them) */
    int out_same;    /* the result's elements are ACC_T bits */
    int staged;      /* the dtype is narrower than ACC_T and must not round per panel (f16) */
    /* real kinds narrower than ACC_T (f16, bf16, small integers), else NULL:
     * widen rows [0, mc) x columns [k0, k0 + kc) of an A with contiguous rows
     * into dst, row-major (row stride kc), the microkernel then reading it as
     * an A in place; in_size: bytes of one element of A */
    void (*widen_a)(ACC_T *dst, const char *a, int64_t sr, int64_t mc, int64_t k0, int64_t kc);
    int64_t in_size;
    /* real kinds, else NULL: rows x cols sums (row stride ld) rounded to C
     * with no epilogue, rows in one call (stage_out); returns 0, writing
     * nothing, where that is not the case (an epilogue, strided columns) */
    int (*narrow_rows)(char *c, int64_t c_sr, int64_t c_sc, const ACC_T *s, int64_t ld,
                       int64_t rows, int64_t cols, const fbmm_epilogue *ep);
} FBMM_NAME(dtype_ops);

/* alpha and beta as this family's accumulator type */
#define FBMM_ALPHA(ep) (ACC_IS_INT ? (ACC_T)(ep)->ialpha : (ACC_T)(ep)->alpha[0])
#define FBMM_BETA(ep) (ACC_IS_INT ? (ACC_T)(ep)->ibeta : (ACC_T)(ep)->beta[0])

static const fbmm_epilogue FBMM_NAME(plain_epilogue) = {0, 0, 1, {1, 0}, {0, 0}, 1, 0, 0, 0};

/* Writing the tile of an accumulator-typed, native C (the staging buffer:
 * the epilogue is applied later, when the staging buffer is rounded out). */
static void FBMM_NAME(store_native)(char *c, int64_t sr, int64_t sc, const ACC_T *tile,
                                    int64_t mr, int64_t nr, int first,
                                    const fbmm_epilogue *ep, const char *d)
{
    (void)ep; (void)d;
    for (int64_t i = 0; i < mr; i++) {
        for (int64_t j = 0; j < nr; j++) {
            ACC_T v = tile[i * NR + j];
            char *q = c + i * sr + j * sc;
            if (!first) {
                ACC_T old;
                memcpy(&old, q, sizeof old);
                v = old + v;
            }
            memcpy(q, &v, sizeof v);
        }
    }
}

/*
 * A microkernel's ROWS x NVEC accumulator vectors, out to C's tile at c:
 * `direct` (a full tile whose rows are NR contiguous ACC_T values; real
 * scalars; D, if any, with unit columns): vector moves, with the epilogue
 * (alpha, and beta * D on the first panel; later panels add to C); otherwise
 * through a stack tile and `store` (edges, narrower results, strides).
 * Shared by the widening microkernel below and bfloat16's pair-dot one
 * (gemm_pairdot.h); always inlined, so acc stays in registers.
 */
/* One vector of C at p through the epilogue (dp: D's vector, when it has one). */
static inline __attribute__((always_inline)) void FBMM_NAME(vec_out)(
    VEC_T x, char *p, int first, const fbmm_epilogue *ep, const char *dp, ACC_T al, ACC_T be)
{
    if (ep->scaled) x = al * x;
    if (!first) {
        VEC_T old;
        memcpy(&old, p, sizeof old);
        x += old;
    } else if (ep->has_bias) {
        VEC_T dv;
        memcpy(&dv, dp, sizeof dv);
        x += be * dv;
    }
    memcpy(p, &x, sizeof x);
}

static inline __attribute__((always_inline)) void FBMM_NAME(tile_out)(
    const int ROWS, const int NVEC, VEC_T acc[MR][FBMM_NV], char *c, int64_t c_sr, int64_t c_sc,
    int direct, int first, int64_t mr, int64_t nr,
    void (*store)(char *, int64_t, int64_t, const ACC_T *, int64_t, int64_t, int,
                  const fbmm_epilogue *, const char *),
    const fbmm_epilogue *ep, const char *d)
{
    if (direct) {
        const ACC_T al = FBMM_ALPHA(ep), be = FBMM_BETA(ep);
        FBMM_UNROLL
        for (int r = 0; r < ROWS; r++) {
            FBMM_UNROLL
            for (int v = 0; v < NVEC; v++)
                FBMM_NAME(vec_out)(acc[r][v], c + r * c_sr + v * FBMM_VBYTES, first, ep,
                                   d ? d + r * ep->d_sr + v * FBMM_VBYTES : 0, al, be);
        }
    } else {
        ACC_T tile[MR * NR] __attribute__((aligned(FBMM_VBYTES)));
        FBMM_UNROLL
        for (int r = 0; r < ROWS; r++) {
            FBMM_UNROLL
            for (int v = 0; v < NVEC; v++) *(VEC_T *)(tile + r * NR + v * VL) = acc[r][v];
        }
        store(c, c_sr, c_sc, tile, mr, nr, first, ep, d);
    }
}

/*
 * The microkernel: C[0:ROWS, 0:NVEC*VL] (=|+=) A[0:ROWS, 0:kc] @ Bp[0:kc, 0:NVEC*VL],
 * with ROWS <= MR and NVEC <= FBMM_NV constants at every call site (the body is
 * always inlined), so the accumulators stay in registers. Full tiles use
 * ROWS = MR, NVEC = FBMM_NV; the edge instances (fewer rows, one vector) let an
 * edge tile of an in-place A and B run without packing and without computing
 * rows or columns that are thrown away: at 32x32x32 on AVX2 (MR = 6) the
 * 2-row edge tile, packed and stored through `store`, cost 40% of the time.
 * A is read in place with element strides (a_rs, a_cs): (1, MR) for a packed
 * sliver, the operand's own strides when it is used unpacked. B holds NR
 * contiguous values per k, b_rs elements apart: NR in a packed sliver, the
 * row stride of B itself when its rows are read in place.
 * `direct`, `store`: how the tile reaches C (tile_out).
 */
/* One step k of the microkernel: acc[r][v] += A[r, k] * B[k, v vectors],
 * ak = A's column k (rows a_rs apart), bk = B's row k. */
static inline __attribute__((always_inline)) void FBMM_NAME(k_step)(
    const int ROWS, const int NVEC, VEC_T acc[MR][FBMM_NV], const ACC_T *restrict ak,
    int64_t a_rs, const ACC_T *restrict bk)
{
    VEC_T bv[FBMM_NV];
    FBMM_UNROLL
    for (int v = 0; v < NVEC; v++) memcpy(&bv[v], bk + v * VL, sizeof bv[v]);
    FBMM_UNROLL
    for (int r = 0; r < ROWS; r++) {
        ACC_T ar = ak[r * a_rs];
        FBMM_UNROLL
        for (int v = 0; v < NVEC; v++) acc[r][v] += ar * bv[v];
    }
}

static inline __attribute__((always_inline)) void FBMM_NAME(microkernel_body)(
    const int ROWS, const int NVEC,
    int64_t kc, const ACC_T *restrict a, int64_t a_rs, int64_t a_cs,
    const ACC_T *restrict bp, int64_t b_rs, char *c, int64_t c_sr, int64_t c_sc,
    int direct, int first, int64_t mr, int64_t nr,
    void (*store)(char *, int64_t, int64_t, const ACC_T *, int64_t, int64_t, int,
                  const fbmm_epilogue *, const char *),
    const fbmm_epilogue *ep, const char *d, const char *pf, int64_t pf_s, int64_t pf_n)
{
    VEC_T acc[MR][FBMM_NV];
    FBMM_UNROLL
    for (int r = 0; r < ROWS; r++) {
        FBMM_UNROLL
        for (int v = 0; v < NVEC; v++) acc[r][v] = (VEC_T){0};
    }
    if (direct) {
        /* fetch the C tile while the k loop runs: it is read after it */
        FBMM_UNROLL
        for (int r = 0; r < ROWS; r++) {
            __builtin_prefetch(c + r * c_sr, 1);
            __builtin_prefetch(c + r * c_sr + NVEC * FBMM_VBYTES - 1, 1);
        }
    }
    /* the first pf_n steps also fetch a line of the next tile (next_fetch.h);
     * two loops, so that the steps after carry no test */
    FBMM_UNROLL4
    for (int64_t k = 0; k < pf_n; k++) {
        __builtin_prefetch(pf + k * pf_s, 0, 2);
        FBMM_NAME(k_step)(ROWS, NVEC, acc, a + k * a_cs, a_rs, bp + k * b_rs);
    }
    FBMM_UNROLL4
    for (int64_t k = pf_n; k < kc; k++)
        FBMM_NAME(k_step)(ROWS, NVEC, acc, a + k * a_cs, a_rs, bp + k * b_rs);
    FBMM_NAME(tile_out)(ROWS, NVEC, acc, c, c_sr, c_sc, direct, first, mr, nr, store, ep, d);
}

/* The instances the loop nest calls. Packed A: constant strides, so every A
 * offset folds into the addressing; always a whole MR x NR tile (the packed
 * slivers are zero-padded). A in place: the operand's own strides, and a tile
 * of `rows` (1..MR) rows by `nvec` (1..FBMM_NV) whole vectors, each shape its
 * own inlined body. */
static void FBMM_NAME(microkernel_packed)(
    int64_t kc, const ACC_T *a, const ACC_T *bp, int64_t b_rs,
    char *c, int64_t c_sr, int64_t c_sc, int direct, int first, int64_t mr, int64_t nr,
    void (*store)(char *, int64_t, int64_t, const ACC_T *, int64_t, int64_t, int,
                  const fbmm_epilogue *, const char *),
    const fbmm_epilogue *ep, const char *d, const char *pf, int64_t pf_s, int64_t pf_n)
{
    FBMM_NAME(microkernel_body)(MR, FBMM_NV, kc, a, 1, MR, bp, b_rs, c, c_sr, c_sc, direct,
                                first, mr, nr, store, ep, d, pf, pf_s, pf_n);
}

static void FBMM_NAME(microkernel_strided)(
    int64_t kc, const ACC_T *a, int64_t a_rs, int64_t a_cs, const ACC_T *bp, int64_t b_rs,
    char *c, int64_t c_sr, int64_t c_sc, int direct, int first, int64_t mr, int64_t nr,
    int64_t nvec,
    void (*store)(char *, int64_t, int64_t, const ACC_T *, int64_t, int64_t, int,
                  const fbmm_epilogue *, const char *),
    const fbmm_epilogue *ep, const char *d, const char *pf, int64_t pf_s, int64_t pf_n)
{
#define FBMM_MK_ROWS(R)                                                                    \
    case R:                                                                                \
        if (nvec == FBMM_NV)                                                               \
            FBMM_NAME(microkernel_body)(R, FBMM_NV, kc, a, a_rs, a_cs, bp, b_rs, c, c_sr,  \
                                        c_sc, direct, first, mr, nr, store, ep, d, pf,     \
                                        pf_s, pf_n);                                       \
        else                                                                               \
            FBMM_NAME(microkernel_body)(R, 1, kc, a, a_rs, a_cs, bp, b_rs, c, c_sr,        \
                                        c_sc, direct, first, mr, nr, store, ep, d, pf,     \
                                        pf_s, pf_n);                                       \
        break;
#if MR != 4 && MR != 6 && MR != 12
#  error "microkernel_strided's cases cover MR in {4, 6, 12}: add the new MR's rows"
#endif
    switch (mr) {
    FBMM_MK_ROWS(1) FBMM_MK_ROWS(2) FBMM_MK_ROWS(3) FBMM_MK_ROWS(4)
#if MR > 4
    FBMM_MK_ROWS(5) FBMM_MK_ROWS(6)
#endif
#if MR > 6
    FBMM_MK_ROWS(7) FBMM_MK_ROWS(8) FBMM_MK_ROWS(9) FBMM_MK_ROWS(10) FBMM_MK_ROWS(11)
    FBMM_MK_ROWS(12)
#endif
    }
#undef FBMM_MK_ROWS
}

#if FBMM_WIDE_TILE
/*
 * The wide tile: C[0:ROWS, 0:3 VL] (=|+=) A[0:ROWS, 0:kc] @ B[0:kc, 0:3 VL],
 * ROWS <= FBMM_WIDE_ROWS constant, A read with strides (a_rs, a_cs), B's
 * first two vectors of each row at b0 and its third at b1 (b_rs apart: in
 * place, or a packed sliver and the next one), C written by vector moves.
 * For C three vectors wide (48 float32 columns on AVX-512, or a panel
 * ending in three), where the MR x NR tile and its one-vector edge tile
 * make two passes over A: the edge pass is MR broadcasts for MR
 * multiply-adds, as slow as a whole tile for half its work. Here every
 * broadcast feeds three multiply-adds (8 x 3 = 24 accumulators + 3 of B +
 * 1 broadcast: 28 of 32 registers).
 */
static inline __attribute__((always_inline)) void FBMM_NAME(wide_body)(
    const int ROWS, int64_t kc, const ACC_T *restrict a, int64_t a_rs, int64_t a_cs,
    const ACC_T *restrict b0, const ACC_T *restrict b1, int64_t b_rs, char *c, int64_t c_sr,
    int first, const fbmm_epilogue *ep, const char *d, const char *pf, int64_t pf_s,
    int64_t pf_n)
{
    VEC_T acc[FBMM_WIDE_ROWS][3];
    FBMM_UNROLL
    for (int r = 0; r < ROWS; r++) acc[r][0] = acc[r][1] = acc[r][2] = (VEC_T){0};
    FBMM_UNROLL
    for (int r = 0; r < ROWS; r++) {
        __builtin_prefetch(c + r * c_sr, 1);
        __builtin_prefetch(c + r * c_sr + 3 * FBMM_VBYTES - 1, 1);
    }
    for (int64_t k = 0; k < kc; k++) {
        VEC_T bv[3];
        if (k < pf_n) __builtin_prefetch(pf + k * pf_s, 0, 2);   /* next_fetch.h */
        FBMM_UNROLL
        for (int v = 0; v < 2; v++) memcpy(&bv[v], b0 + k * b_rs + v * VL, sizeof bv[v]);
        memcpy(&bv[2], b1 + k * b_rs, sizeof bv[2]);
        FBMM_UNROLL
        for (int r = 0; r < ROWS; r++) {
            ACC_T ar = a[r * a_rs + k * a_cs];
            FBMM_UNROLL
            for (int v = 0; v < 3; v++) acc[r][v] += ar * bv[v];
        }
    }
    const ACC_T al = FBMM_ALPHA(ep), be = FBMM_BETA(ep);
    FBMM_UNROLL
    for (int r = 0; r < ROWS; r++) {
        FBMM_UNROLL
        for (int v = 0; v < 3; v++)
            FBMM_NAME(vec_out)(acc[r][v], c + r * c_sr + v * FBMM_VBYTES, first, ep,
                               d ? d + r * ep->d_sr + v * FBMM_VBYTES : 0, al, be);
    }
}

static void FBMM_NAME(microkernel_wide)(
    int64_t kc, const ACC_T *a, int64_t a_rs, int64_t a_cs, const ACC_T *b0, const ACC_T *b1,
    int64_t b_rs, char *c, int64_t c_sr, int first, int64_t mr, const fbmm_epilogue *ep,
    const char *d, const char *pf, int64_t pf_s, int64_t pf_n)
{
#if FBMM_WIDE_ROWS != 8
#  error "microkernel_wide's cases cover FBMM_WIDE_ROWS = 8"
#endif
#define FBMM_WIDE_CASE(R)                                                                   \
    case R:                                                                                 \
        FBMM_NAME(wide_body)(R, kc, a, a_rs, a_cs, b0, b1, b_rs, c, c_sr, first, ep, d, pf,  \
                             pf_s, pf_n);                                                   \
        break;
    switch (mr) {
    FBMM_WIDE_CASE(1) FBMM_WIDE_CASE(2) FBMM_WIDE_CASE(3) FBMM_WIDE_CASE(4)
    FBMM_WIDE_CASE(5) FBMM_WIDE_CASE(6) FBMM_WIDE_CASE(7) FBMM_WIDE_CASE(8)
    }
#undef FBMM_WIDE_CASE
}
#endif

/* Prefetch `rows` rows of `bytes` bytes each, `stride` bytes apart. */
static inline __attribute__((always_inline)) void FBMM_NAME(prefetch_rows)(
    const char *p, int64_t stride, int64_t rows, int64_t bytes)
{
    for (int64_t r = 0; r < rows; r++, p += stride)
        for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 2);
}

/* Bytes of scratch one thread needs for tiles of at most rows x cols (logical). */
static size_t FBMM_NAME(scratch_bytes)(const FBMM_NAME(dtype_ops) *kd, int64_t rows, int64_t K, int64_t cols)
{
    int64_t kc = K < KC ? K : KC;
    int64_t nc = cols < NC ? cols : NC;
    int64_t mc = rows < MC ? rows : MC;
    nc = (nc + NR - 1) / NR * NR;
    mc = (mc + MR - 1) / MR * MR;
    size_t n = (size_t)(kc * nc + mc * kc);
    if (kd->staged) n += (size_t)(mc * nc);
    n *= sizeof(ACC_T);
    return (n + FBMM_ALIGN - 1) / FBMM_ALIGN * FBMM_ALIGN;
}

/* A staged kind's accumulation buffer (rows x nc float sums, row stride
 * ld, for C's columns [jc, jc + nc)) out to C through the kind's store: the
 * one rounding per element, after the whole depth K. */
static void FBMM_NAME(stage_out)(const FBMM_NAME(dtype_ops) *kd, const ACC_T *stage, int64_t ld,
                                 char *c, int64_t c_sr, int64_t c_sc,
                                 const fbmm_epilogue *ep, const char *d,
                                 int64_t rows, int64_t jc, int64_t nc)
{
    const int64_t cdiv = kd->cplx ? 2 : 1;
    /* a plain result: all rows in one call (a call per row of 64 bfloat16
     * cost about as much as its rounding: a fifth of 64x128x128x64 on AMX) */
    if (kd->narrow_rows && kd->narrow_rows(c + (jc / cdiv) * c_sc, c_sr, c_sc, stage, ld, rows, nc,
                                           ep))
        return;
    /* else a row at a time: a store of one row reads tile[0 .. nc) whatever
     * its row stride, so the staging row goes out in place (no copy into an
     * MR x NR tile) */
    for (int64_t i = 0; i < rows; i++)
        kd->store(c + i * c_sr + (jc / cdiv) * c_sc, c_sr, c_sc, stage + i * ld, 1, nc, 1, ep,
                  d ? d + i * ep->d_sr + (jc / cdiv) * ep->d_sc : 0);
}

/*
 * C[0:rows, 0:cols] = A[0:rows, 0:K] @ B[0:K, 0:cols] for one tile of one
 * matrix, in logical (real, for 1m complex) coordinates; a, b, c point at the
 * tile's origin. The Goto loop nest:
 *   jc: NC columns   -> a KC x NC panel of B, packed (per pc)
 *   pc: KC depth     -> the first panel writes C, later ones add to it
 *   ic: MC rows      -> an MC x KC block of A, packed or addressed in place
 *   jr, ir           -> MR x NR microkernel calls
 * float and double operands skip packing where it buys nothing: A's rows are
 * read in place (broadcast loads do not care about layout), and so are B's
 * rows when they are contiguous and short enough that a KC x NR sliver stays
 * in L1 without packing. A partial last sliver is always packed (zero-padded),
 * since the microkernel reads a whole MR x NR tile.
 * Staged kinds (f16) accumulate in an MC x NC float buffer and round to the
 * output once, after the last panel; the planner keeps their tiles <= MC rows.
 * A panel ending in three vectors of columns takes them in one pass of the
 * wide tile (microkernel_wide, 64-byte vectors). next_a, next_b: the next
 * tile's operands (or NULL), fetched into L2 during this one (next_fetch.h).
 */
static void FBMM_NAME(gemm_tile)(const FBMM_NAME(dtype_ops) *kd,
                                 const char *a, int64_t a_sr, int64_t a_sc,
                                 const char *b, int64_t b_sr, int64_t b_sc,
                                 char *c, int64_t c_sr, int64_t c_sc,
                                 const fbmm_epilogue *ep, const char *d,
                                 int64_t rows, int64_t K, int64_t cols, void *scratch,
                                 const char *next_a, const char *next_b, const char *next_c)
{
    const int64_t esz = (int64_t)sizeof(ACC_T);
    int64_t kc_max = K < KC ? K : KC;
    int64_t nc_max = cols < NC ? cols : NC;
    int64_t mc_max = rows < MC ? rows : MC;
    nc_max = (nc_max + NR - 1) / NR * NR;
    mc_max = (mc_max + MR - 1) / MR * MR;
    ACC_T *bp = (ACC_T *)scratch;
    ACC_T *ap = bp + kc_max * nc_max;
    ACC_T *stage = ap + mc_max * kc_max;

    /* Logical column jj of C/B is at byte offset (jj / cdiv) * sc (1m: pairs share an element). */
    const int64_t cdiv = kd->cplx ? 2 : 1;

    /* A in place: same bits as ACC_T, aligned, strides whole elements
     * (1m: the real/imag pairs of a row must be adjacent), and an MC x KC block
     * compact enough that its rows do not fight over cache sets and TLB
     * entries (large matrices with long rows are packed, as BLIS does). */
    int64_t a_rs = 0, a_cs = 0;
    int a_direct = kd->same_repr && ((uintptr_t)a % sizeof(ACC_T)) == 0 && a_sr % esz == 0 &&
                   mc_max * (a_sr < 0 ? -a_sr : a_sr) <= FBMM_A_INPLACE_SPAN &&
                   kc_max * (a_sc < 0 ? -a_sc : a_sc) <= FBMM_A_INPLACE_SPAN;
    if (a_direct) {
        a_rs = a_sr / esz;
        if (kd->cplx) { a_direct = (a_sc == 2 * esz); a_cs = 1; }
        else { a_direct = (a_sc % esz == 0); a_cs = a_sc / esz; }
    }
    /* A narrower than ACC_T with contiguous rows: each block widened row by
     * row (vector conversions) and then read as an A in place (strides
     * (kc, 1)). The trap: packing it into MR-row slivers converts one element
     * at a time down the columns (scalar vcvtph2ps and a store each), which
     * took 28% of 64x128x128x64 float16 (Xeon model 207, 2026-12-05). */
    const int a_widen = !a_direct && kd->widen_a && a_sc == kd->in_size;
    /* B in place: real, contiguous rows, and the KC rows a sliver spans
     * within FBMM_B_INPLACE_SPAN bytes (further apart, they collide in L1's
     * sets and packing wins). */
    const int b_direct = kd->same_repr && !kd->cplx && b_sc == esz &&
                         ((uintptr_t)b % sizeof(ACC_T)) == 0 && b_sr % esz == 0 &&
                         kc_max * (b_sr < 0 ? -b_sr : b_sr) <= FBMM_B_INPLACE_SPAN;
    const int64_t b_rs = b_direct ? b_sr / esz : 0;
    /* C written by vector stores: same bits and unit (logical) column stride. */
    const int c_direct = kd->out_same && !kd->staged &&
                         (kd->cplx ? c_sc == 2 * esz : c_sc == esz) &&
                         (!kd->cplx || ep->real_scalars) &&
                         (!ep->has_bias || ep->d_sc == c_sc);
    const fbmm_epilogue *plain = &FBMM_NAME(plain_epilogue);
#if FBMM_WIDE_TILE
    /* C's last three vectors of columns in a panel through microkernel_wide:
     * A read by rows (in place or widened), C by vector moves (or staged) */
    const int wide = (kd->staged || c_direct) && (a_direct || a_widen);
#endif

    /* The next tile's B, A and C (real kinds, contiguous rows or, for B,
     * columns), fetched into L2 over this tile's microkernel calls
     * (next_fetch.h), where B and A fit in FBMM_NEXT_FETCH_MAX_BYTES (larger
     * ones stream well enough, and would evict this tile's own blocks). */
    fbmm_next_fetch nf;
    nf.region = FBMM_NEXT_REGIONS;
    if (!kd->cplx) {
        const int64_t isz = kd->in_size;
        const int nfa = next_a && a_sc == isz, nfb = next_b && b_sc == isz;
        /* a transposed B (k.transpose(0, 2, 1)): its columns are the rows
         * fetched (back to back: one run of lines). Xeon (family 6 model
         * 167), 1 thread, 6 alternated processes, median ratio: float32
         * 64x128x64x128T 1.07, 16x197x64x197T 1.06, 512x24x40x56T 1.05,
         * 128x64x32x64T 1.06; float64 1.07, 1.07, 1.10, 1.03. */
        const int nfbt = next_b && !nfb && b_sr == isz;
        /* and the next C's lines, written by the next tile: a read fetch
         * brings a line no other core holds in the exclusive state, so the
         * stores then need no further request. Its rows are cols * c_sc
         * bytes (any real element, unit or small column stride); not
         * counted in MAX_BYTES.
         * Xeon (family 6 model 167), 1 thread, two runs of 6 and 8
         * alternated processes, median ratio: float32 256x96^3 1.05, 1.03,
         * 64x128x128x64 1.01, 1.05, 64x128x64x128T 1.06, 1.04,
         * 128x24x256x64 1.04, 1.01; float64 256x96^3 1.07, 1.11,
         * 64x128x128x64 1.04, 1.04, 64x128x64x128T 1.04, 1.00; the rest
         * (512x24x40x56, 36^3, 48^3, 32x256^3, 16x197x64x197T) 0.99-1.02. */
        const int nfc = next_c && c_sc > 0 && c_sc <= 8;
        if ((nfa || nfb || nfbt) &&
            (nfa ? rows * K * isz : 0) + (nfb || nfbt ? K * cols * isz : 0) <=
                FBMM_NEXT_FETCH_MAX_BYTES) {
            fbmm_next_fetch_region(&nf, 2, next_c, c_sr, nfc ? rows : 0, cols * c_sc);
            if (nfbt)
                fbmm_next_fetch_region(&nf, 0, next_b, b_sc, cols, K * isz);
            else
                fbmm_next_fetch_region(&nf, 0, next_b, b_sr, nfb ? K : 0, cols * isz);
            fbmm_next_fetch_region(&nf, 1, next_a, a_sr, nfa ? rows : 0, K * isz);
            fbmm_next_fetch_start(&nf);
        }
    }

    for (int64_t jc = 0; jc < cols; jc += NC) {
        int64_t nc = cols - jc < NC ? cols - jc : NC;
        /* B's edge sliver: whole vectors are read in place (a narrower
         * tile), a partial vector is packed, zero-padded, to NR */
        const int64_t edge_c = b_direct && (nc % NR) % VL ? nc % NR : 0;
        for (int64_t pc = 0; pc < K; pc += KC) {
            int64_t kc = K - pc < KC ? K - pc : KC;
            int first = (pc == 0);
            if (!b_direct)
                kd->pack_b(bp, b, b_sr, b_sc, pc, kc, jc, nc);
            else if (edge_c)
                kd->pack_b(bp, b, b_sr, b_sc, pc, kc, jc + nc - edge_c, edge_c);
            /* A in place, long rows: its next rows fetched during the
             * first pass (FBMM_A_PREFETCH_MIN_ROW_BYTES), on the CPUs
             * where that pays (fbmm_cpu_prefetch_a_rows) */
            const int a_prefetch = a_direct && a_cs == 1 &&
                                   kc * esz >= FBMM_A_PREFETCH_MIN_ROW_BYTES &&
                                   fbmm_cpu_prefetch_a_rows();
            for (int64_t ic = 0; ic < rows; ic += MC) {
                int64_t mc = rows - ic < MC ? rows - ic : MC;
                const ACC_T *ablk;
                /* A's element strides in this block (in place or widened) */
                int64_t blk_rs = a_rs, blk_cs = a_cs;
                if (a_direct) {
                    /* edge rows too: the strided instances read exactly mr rows */
                    ablk = (const ACC_T *)(a + ic * a_sr) + pc * a_cs;
                } else if (a_widen) {
                    kd->widen_a(ap, a + ic * a_sr, a_sr, mc, pc, kc);
                    ablk = ap;
                    blk_rs = kc, blk_cs = 1;
                } else {
                    kd->pack_a(ap, a + ic * a_sr, a_sr, a_sc, mc, pc, kc);
                    ablk = ap;
                }
                for (int64_t jr = 0; jr < nc; jr += NR) {
#if FBMM_WIDE_TILE
                    if (wide && nc - jr == 3 * VL) {
                        /* the last three vectors of columns in one pass: in
                         * place, or a whole sliver and the first vector of
                         * the (edge) sliver after it */
                        const ACC_T *b0 = b_direct ? (const ACC_T *)(b + pc * b_sr) + jc + jr
                                                   : bp + jr * kc;
                        const ACC_T *b1 = b_direct ? b0 + FBMM_NV * VL : bp + (jr + NR) * kc;
                        const int64_t bs = b_direct ? b_rs : NR;
                        for (int64_t ir = 0; ir < mc; ir += FBMM_WIDE_ROWS) {
                            const int64_t mr = mc - ir < FBMM_WIDE_ROWS ? mc - ir : FBMM_WIDE_ROWS;
                            int64_t pf_s = 0, pf_n = 0;
                            const char *pf = fbmm_next_fetch_column(&nf, kc, &pf_s, &pf_n);
                            const int64_t i = ic + ir, j = (jc + jr) / cdiv;
                            const ACC_T *ar = ablk + ir * blk_rs;
                            if (kd->staged)     /* the staging rows, as the tiles below */
                                FBMM_NAME(microkernel_wide)(
                                    kc, ar, blk_rs, blk_cs, b0, b1, bs,
                                    (char *)(stage + i * nc_max + jr), nc_max * esz, first, mr,
                                    plain, 0, pf, pf_s, pf_n);
                            else
                                FBMM_NAME(microkernel_wide)(
                                    kc, ar, blk_rs, blk_cs, b0, b1, bs, c + i * c_sr + j * c_sc,
                                    c_sr, first, mr, ep, d ? d + i * ep->d_sr + j * ep->d_sc : 0,
                                    pf, pf_s, pf_n);
                        }
                        break;
                    }
#endif
                    int64_t nr = nc - jr < NR ? nc - jr : NR;
                    const ACC_T *bsl;
                    int64_t bs, nvec = FBMM_NV;   /* vectors the tile computes */
                    if (!b_direct || (nr < NR && edge_c)) {
                        /* packed; an edge sliver of one vector or less takes
                         * a tile of one vector (two would be half dead
                         * columns: a quarter of 1024x48^3 float16's products) */
                        bsl = b_direct ? bp : bp + jr * kc;
                        bs = NR;
                        if (nr <= VL) nvec = 1;
                    }
                    else {  /* in place: nr is NR or a whole number of vectors */
                        bsl = (const ACC_T *)(b + pc * b_sr) + jc + jr;
                        bs = b_rs;
                        nvec = nr / VL;
                    }
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = mc - ir < MR ? mc - ir : MR;
                        int full = (mr == MR && nr == NR);
                        int64_t pf_s = 0, pf_n = 0;
                        const char *pf = fbmm_next_fetch_column(&nf, kc, &pf_s, &pf_n);
                        if (a_prefetch && jr == 0 && ir + MR < mc)
                            FBMM_NAME(prefetch_rows)(
                                (const char *)(ablk + (ir + MR) * blk_rs), blk_rs * esz,
                                mc - ir - MR < MR ? mc - ir - MR : MR, kc * esz);
                        if (kd->staged) {
                            char *t = (char *)(stage + (ic + ir) * nc_max + jr);
                            /* direct even at edges: a staging row holds nc_max
                             * (whole slivers) floats, and the strided instances
                             * write mr rows only */
                            if (a_widen || nvec != FBMM_NV)
                                FBMM_NAME(microkernel_strided)(
                                    kc, a_widen ? ablk + ir * blk_rs : ablk + ir * kc,
                                    a_widen ? blk_rs : 1, a_widen ? blk_cs : MR, bsl, bs, t,
                                    nc_max * esz, esz, 1, first, mr, nr, nvec,
                                    FBMM_NAME(store_native), plain, 0, pf, pf_s, pf_n);
                            else
                                FBMM_NAME(microkernel_packed)(
                                    kc, ablk + ir * kc, bsl, bs, t, nc_max * esz, esz,
                                    full, first, mr, nr, FBMM_NAME(store_native), plain, 0,
                                    pf, pf_s, pf_n);
                            continue;
                        }
                        char *t = c + (ic + ir) * c_sr + ((jc + jr) / cdiv) * c_sc;
                        const char *td = d ? d + (ic + ir) * ep->d_sr + ((jc + jr) / cdiv) * ep->d_sc : 0;
                        const int a_rows = a_direct || a_widen;  /* A read by rows */
                        if (a_rows || nvec != FBMM_NV)
                            /* A in place (or widened), or packed (strides 1, MR)
                             * against a B read in place narrower than NR: the
                             * packed instance would load FBMM_NV vectors, past
                             * B's last column */
                            FBMM_NAME(microkernel_strided)(
                                kc, a_rows ? ablk + ir * blk_rs : ablk + ir * kc,
                                a_rows ? blk_rs : 1, a_rows ? blk_cs : MR, bsl, bs, t, c_sr,
                                c_sc, c_direct && nr == nvec * VL, first, mr, nr, nvec,
                                kd->store, ep, td, pf, pf_s, pf_n);
                        else
                            FBMM_NAME(microkernel_packed)(
                                kc, ablk + ir * kc, bsl, bs, t, c_sr, c_sc,
                                full && c_direct, first, mr, nr, kd->store, ep, td, pf, pf_s,
                                pf_n);
                    }
                }
            }
        }
        if (kd->staged)
            FBMM_NAME(stage_out)(kd, stage, nc_max, c, c_sr, c_sc, ep, d, rows, jc, nc);
    }
}

/* Accumulator columns per row of C in gemm_stream's column block (its row
 * stride in acc): FBMM_STREAM_ACC_BYTES split among 1, 2 or 4 rows. */
static inline __attribute__((always_inline)) int64_t FBMM_NAME(stream_cols)(int64_t rows)
{
    return FBMM_STREAM_ACC_BYTES / ((rows > 2 ? 4 : rows) * (int64_t)sizeof(ACC_T));
}

/*
 * Few rows (n <= FBMM_STREAM_MAX_ROWS), B with contiguous rows, same bits as
 * ACC_T: no packing at all. This is the memory-bound (b, 1, m, p) case, a
 * batched vector-matrix product; packing would read and write all of B to use
 * it for a row or two. B is read row by row, in order (what the hardware
 * prefetcher streams best), into `rows` accumulator rows of a column block
 * that stays in L1:  acc[r, :] += A[r, k] * B[k, j0:j0+jb]  for k in a panel.
 *
 * The depth is cut into the packed nest's KC-deep panels, each summed from
 * zero and then added into C through the same store (first panel: the
 * epilogue; later ones: C += alpha * partial). One accumulator over all of K
 * would grow the error with K (7.9e-5 relative at K = 10^6 in float32,
 * against 1.5e-6 blocked), and a row's result would depend on whether the
 * call has 4 rows (this path) or 5 (the packed nest): with the same panels
 * and the same per-element order, both give the same bits.
 */
static inline __attribute__((always_inline)) void FBMM_NAME(stream_block)(
    const int64_t rows, const int side_by_side, const char *a, int64_t a_sr, int64_t a_sc,
    const char *b, int64_t b_sr, int64_t K, int64_t jb, ACC_T *acc)
{
    const int64_t nvec = jb / VL;
    const int64_t ld = FBMM_NAME(stream_cols)(rows);   /* a constant: rows is */
    int64_t k = 0;
    /* side_by_side: `depth` rows of B at a time, chained into each
     * accumulator vector in k order (the same sums, in the same order, as a
     * row at a time), so as many streams in flight; 8 for 1-2 rows of C, 4
     * for 3-4, whose 8 would not fit the registers (Zen 3, GFLOP/s, depth 4
     * -> 8: 256x1x512x512 float64 4.9-5.3 -> 5.8-6.2, 256x3x512x512 float64
     * 14.5-15.4 -> 11.4-13.0) */
    const int depth = rows <= 2 ? FBMM_STREAM_DEPTH : FBMM_STREAM_DEPTH / 2;
    for (; side_by_side && k + depth <= K; k += depth) {
        ACC_T ar[FBMM_STREAM_MAX_ROWS][FBMM_STREAM_DEPTH];
        FBMM_UNROLL
        for (int r = 0; r < rows; r++)
            FBMM_UNROLL
            for (int u = 0; u < depth; u++)
                memcpy(&ar[r][u], a + r * a_sr + (k + u) * a_sc, sizeof ar[r][u]);
        const char *brow = b + k * b_sr;
        for (int64_t v = 0; v < nvec; v++) {
            VEC_T bv[FBMM_STREAM_DEPTH];
            FBMM_UNROLL
            for (int u = 0; u < depth; u++)
                memcpy(&bv[u], brow + u * b_sr + v * FBMM_VBYTES, sizeof bv[u]);
            FBMM_UNROLL
            for (int r = 0; r < rows; r++) {
                VEC_T *x = (VEC_T *)(acc + r * ld) + v, y = *x;
                FBMM_UNROLL
                for (int u = 0; u < depth; u++) y += ar[r][u] * bv[u];
                *x = y;
            }
        }
        for (int64_t j = nvec * VL; j < jb; j++) {
            FBMM_UNROLL
            for (int r = 0; r < rows; r++) {
                ACC_T y = acc[r * ld + j];
                FBMM_UNROLL
                for (int u = 0; u < depth; u++) {
                    ACC_T bu;
                    memcpy(&bu, brow + u * b_sr + j * (int64_t)sizeof(ACC_T), sizeof bu);
                    y += ar[r][u] * bu;
                }
                acc[r * ld + j] = y;
            }
        }
    }
    for (; k < K; k++) {
        ACC_T ar[FBMM_STREAM_MAX_ROWS];
        FBMM_UNROLL
        for (int r = 0; r < rows; r++) memcpy(&ar[r], a + r * a_sr + k * a_sc, sizeof ar[r]);
        const char *brow = b + k * b_sr;
        for (int64_t v = 0; v < nvec; v++) {
            VEC_T bv;
            memcpy(&bv, brow + v * FBMM_VBYTES, sizeof bv);
            FBMM_UNROLL
            for (int r = 0; r < rows; r++) {
                VEC_T *x = (VEC_T *)(acc + r * ld) + v;
                *x += ar[r] * bv;
            }
        }
        for (int64_t j = nvec * VL; j < jb; j++) {
            ACC_T y;
            memcpy(&y, brow + j * (int64_t)sizeof(ACC_T), sizeof y);
            FBMM_UNROLL
            for (int r = 0; r < rows; r++) acc[r * ld + j] += ar[r] * y;
        }
    }
}

static void FBMM_NAME(gemm_stream)(const FBMM_NAME(dtype_ops) *kd,
                                   const char *a, int64_t a_sr, int64_t a_sc,
                                   const char *b, int64_t b_sr,
                                   char *c, int64_t c_sr, int64_t c_sc,
                                   const fbmm_epilogue *ep, const char *d,
                                   int64_t rows, int64_t K, int64_t cols)
{
    const int64_t esz = (int64_t)sizeof(ACC_T);
    ACC_T acc[FBMM_STREAM_ACC_BYTES / sizeof(ACC_T)] __attribute__((aligned(FBMM_VBYTES)));
    const int64_t ld = FBMM_NAME(stream_cols)(rows);
    /* Rows of B a page or more apart are each a stream of their own to the
     * hardware prefetcher, which stops at page ends: read one at a time, every
     * page start waits for memory; read 4-8 side by side (stream_block), the
     * waits overlap. Rows closer than a page are one sequential stream through
     * each page, which interleaving would break. Measured on Zen 3 (1 thread,
     * GFLOP/s, one row -> 4 side by side): 64x1x1024x1024 float32 (4 KiB rows)
     * 6.0-6.2 -> 9.2-10.0, 256x1x512x512 float64 4.4-5.1 -> 5.5-6.1; but
     * 1024x1x256x256 float32 (1 KiB) 9.0-9.2 -> 6.3-6.5, 512x1x128x128
     * float64 4.5-4.9 -> 2.8-3.5. */
    const int side_by_side = (b_sr < 0 ? -b_sr : b_sr) >= FBMM_PAGE_BYTES;
    for (int64_t j0 = 0; j0 < cols; j0 += ld) {
        const int64_t jb = cols - j0 < ld ? cols - j0 : ld;
        for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = K - pc < KC ? K - pc : KC;
            const char *ap = a + pc * a_sc, *bp = b + pc * b_sr + j0 * esz;
            for (int64_t r = 0; r < rows; r++)
                memset(acc + r * ld, 0, (size_t)(jb * esz));
#define FBMM_STREAM_CASE(R)                                                                  \
            case R:                                                                          \
                if (side_by_side)                                                            \
                    FBMM_NAME(stream_block)(R, 1, ap, a_sr, a_sc, bp, b_sr, kc, jb, acc);    \
                else                                                                         \
                    FBMM_NAME(stream_block)(R, 0, ap, a_sr, a_sc, bp, b_sr, kc, jb, acc);    \
                break;
            switch (rows) {
            FBMM_STREAM_CASE(1) FBMM_STREAM_CASE(2) FBMM_STREAM_CASE(3)
            default: FBMM_STREAM_CASE(4)
            }
#undef FBMM_STREAM_CASE
            /* a one-row "tile" of any width: the store reads tile[0 * NR + j] */
            for (int64_t r = 0; r < rows; r++)
                kd->store(c + r * c_sr + j0 * c_sc, c_sr, c_sc, acc + r * ld, 1, jb,
                          pc == 0, ep, d ? d + r * ep->d_sr + j0 * ep->d_sc : 0);
        }
    }
}

/* A vector's lanes folded to 16 bytes by halving (lane i + lane i + half). */
typedef ACC_T FBMM_NAME(half16) __attribute__((vector_size(16)));

static inline __attribute__((always_inline)) FBMM_NAME(half16) FBMM_NAME(fold16)(VEC_T v)
{
    FBMM_NAME(half16) s;
#if FBMM_VBYTES == 64
    typedef ACC_T half32 __attribute__((vector_size(32)));
    half32 lo32, hi32;
    memcpy(&lo32, &v, 32);
    memcpy(&hi32, (const char *)&v + 32, 32);
    lo32 += hi32;
    FBMM_NAME(half16) lo, hi;
    memcpy(&lo, &lo32, 16);
    memcpy(&hi, (const char *)&lo32 + 16, 16);
    s = lo + hi;
#elif FBMM_VBYTES == 32
    FBMM_NAME(half16) lo, hi;
    memcpy(&lo, &v, 16);
    memcpy(&hi, (const char *)&v + 16, 16);
    s = lo + hi;
#elif FBMM_VBYTES == 16
    memcpy(&s, &v, 16);
#else
#error "fold16: FBMM_VBYTES must be 16, 32 or 64"
#endif
    return s;
}

/* The sum of a vector's lanes, by halving: 256 and 512 bits fold to 128,
 * then 2 or 4 lanes pairwise. The trap: the plain lane loop is VL - 1
 * dependent scalar adds (with extracts) that -O3 may not reorder without
 * -ffast-math, and at m = 64 the gemv path spent more on them than on its
 * multiply-adds. */
static inline __attribute__((always_inline)) ACC_T FBMM_NAME(hsum)(VEC_T v)
{
    FBMM_NAME(half16) s = FBMM_NAME(fold16)(v);
    ACC_T l[4];                     /* 4 lanes of 32 bits, or 2 of 64 */
    memcpy(l, &s, 16);
    if (sizeof(ACC_T) == 4) return (ACC_T)((l[0] + l[2]) + (l[1] + l[3]));
    return (ACC_T)(l[0] + l[1]);
}

/* hsum of four vectors at once, out[r] = hsum(v[r]) bit for bit (the same
 * additions in the same order), with the last steps transposed into shuffles
 * of whole vectors: four scalar reductions cost the gemv path more than its
 * multiply-adds at m = 64 (64x64 float32 matrix-vector products: 23 GFLOP/s
 * with A in L2, a quarter of the FMA peak). */
static inline __attribute__((always_inline)) void FBMM_NAME(hsum4)(const VEC_T *v, ACC_T *out)
{
    typedef FBMM_NAME(half16) h16;
    const h16 s0 = FBMM_NAME(fold16)(v[0]), s1 = FBMM_NAME(fold16)(v[1]);
    const h16 s2 = FBMM_NAME(fold16)(v[2]), s3 = FBMM_NAME(fold16)(v[3]);
#if ACC_BYTES == 4
    typedef int32_t lanes __attribute__((vector_size(16)));
    /* u01 = (s0[0] + s0[2], s1[0] + s1[2], s0[1] + s0[3], s1[1] + s1[3]) */
    const h16 u01 = __builtin_shuffle(s0, s1, (lanes){0, 4, 1, 5}) +
                    __builtin_shuffle(s0, s1, (lanes){2, 6, 3, 7});
    const h16 u23 = __builtin_shuffle(s2, s3, (lanes){0, 4, 1, 5}) +
                    __builtin_shuffle(s2, s3, (lanes){2, 6, 3, 7});
    /* lane r: (sr[0] + sr[2]) + (sr[1] + sr[3]), as hsum */
    const h16 sums = __builtin_shuffle(u01, u23, (lanes){0, 1, 4, 5}) +
                     __builtin_shuffle(u01, u23, (lanes){2, 3, 6, 7});
    memcpy(out, &sums, 16);
#else
    typedef int64_t lanes __attribute__((vector_size(16)));
    const h16 r01 = __builtin_shuffle(s0, s1, (lanes){0, 2}) + __builtin_shuffle(s0, s1, (lanes){1, 3});
    const h16 r23 = __builtin_shuffle(s2, s3, (lanes){0, 2}) + __builtin_shuffle(s2, s3, (lanes){1, 3});
    memcpy(out, &r01, 16);
    memcpy(out + 2, &r23, 16);
#endif
}

/*
 * Matrix-vector stacks: p <= FBMM_GEMV_MAX_COLS columns, A's rows contiguous,
 * same bits as ACC_T. As BLAS's gemv does, each result is a dot product
 * vectorised along the inner dimension,
 *     C[i, j] = sum_k A[i, k] * B[k, j],
 * A read once, in order. The packed nest would hold an NR-wide tile with p
 * live columns (1 of 16 on AVX2: 6% useful work).
 * Column j of B is read as K contiguous values from bt + j * b_cs: B itself
 * when its columns are contiguous (a (b, m, 1) vector, or a transposed view),
 * else a copy gathered once per task. ROWS rows of A go together: each B
 * vector is loaded once for all of them, and the ROWS x COLS x U
 * accumulators are independent FMA chains (one chain per accumulator would
 * leave the loop waiting on the FMA latency). The sum runs in KC-deep blocks,
 * each block's vector partial sums reduced and added to the total, so that a
 * long inner dimension is summed as accurately as in the packed nest.
 * sums[j * 4 + r] receives C[r, j].
 */
static inline __attribute__((always_inline)) void FBMM_NAME(gemv_rows)(
    const int ROWS, const int COLS, const char *a, int64_t a_sr, const ACC_T *bt, int64_t b_cs,
    int64_t K, ACC_T *sums)
{
    /* vectors per accumulator chain and step: 2 for one column; 1 for more,
     * whose 4 x 2 x 2 or 2 x 4 x 2 accumulators and 4 or 8 vectors of B did
     * not fit AVX2's 16 registers (the loop spilled; Zen 3, float32,
     * 128x64x64x2 +24%, 128x64x64x4 +7% with one) */
    const int U = COLS == 1 ? 2 : 1;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = K - k0 < KC ? K - k0 : KC;
        const char *ak = a + k0 * (int64_t)sizeof(ACC_T);
        const ACC_T *bk = bt + k0;
        VEC_T acc[4][FBMM_GEMV_MAX_COLS][2];
        FBMM_UNROLL
        for (int r = 0; r < ROWS; r++)
            FBMM_UNROLL
            for (int j = 0; j < COLS; j++)
                FBMM_UNROLL
                for (int u = 0; u < U; u++) acc[r][j][u] = (VEC_T){0};
        int64_t k = 0;
        for (; k + U * VL <= kc; k += U * VL) {
            VEC_T bv[FBMM_GEMV_MAX_COLS][2];
            FBMM_UNROLL
            for (int j = 0; j < COLS; j++)
                FBMM_UNROLL
                for (int u = 0; u < U; u++)
                    memcpy(&bv[j][u], bk + j * b_cs + k + u * VL, sizeof(VEC_T));
            FBMM_UNROLL
            for (int r = 0; r < ROWS; r++) {
                /* the next rows' same columns: A streams from L3 or memory,
                 * and four interleaved short rows are a pattern the hardware
                 * prefetcher follows late */
                FBMM_UNROLL
                for (int64_t o = 0; o < U * VL * (int64_t)sizeof(ACC_T); o += 64)
                    __builtin_prefetch(ak + (r + ROWS) * a_sr + k * (int64_t)sizeof(ACC_T) + o);
                FBMM_UNROLL
                for (int u = 0; u < U; u++) {
                    VEC_T av;
                    memcpy(&av, ak + r * a_sr + (k + u * VL) * (int64_t)sizeof(ACC_T), sizeof av);
                    FBMM_UNROLL
                    for (int j = 0; j < COLS; j++) acc[r][j][u] += av * bv[j][u];
                }
            }
        }
        ACC_T parts[FBMM_GEMV_MAX_COLS][4];
        FBMM_UNROLL
        for (int j = 0; j < COLS; j++) {
            VEC_T v[4];
            FBMM_UNROLL
            for (int r = 0; r < ROWS; r++) {
                v[r] = acc[r][j][0];
                FBMM_UNROLL
                for (int u = 1; u < U; u++) v[r] += acc[r][j][u];
            }
            if (ROWS == 4) {
                FBMM_NAME(hsum4)(v, parts[j]);
            } else {
                FBMM_UNROLL
                for (int r = 0; r < ROWS; r++) parts[j][r] = FBMM_NAME(hsum)(v[r]);
            }
        }
        if (ROWS == 4 && k == kc && k0 == 0) {
            /* no scalar tail to add, and the first block: the sums stay in
             * vectors (sums[j * 4 + r] is parts[j][r]); taking the lanes
             * apart to add a zero tail cost as much as the reduction */
            memcpy(sums, parts, sizeof(ACC_T) * 4 * COLS);
            continue;
        }
        FBMM_UNROLL
        for (int r = 0; r < ROWS; r++) {
            FBMM_UNROLL
            for (int j = 0; j < COLS; j++) {
                ACC_T part = parts[j][r];
                for (int64_t kk = k; kk < kc; kk++) {
                    ACC_T x;
                    memcpy(&x, ak + r * a_sr + kk * (int64_t)sizeof(ACC_T), sizeof x);
                    part += x * bk[j * b_cs + kk];
                }
                /* the first block sets the total: (0 + part) would turn -0 into +0 */
                sums[j * 4 + r] = k0 == 0 ? part : (ACC_T)(sums[j * 4 + r] + part);
            }
        }
    }
}

static void FBMM_NAME(gemm_gemv)(const FBMM_NAME(dtype_ops) *kd,
                                 const char *a, int64_t a_sr,
                                 const char *b, int64_t b_sr, int64_t b_sc,
                                 char *c, int64_t c_sr, int64_t c_sc,
                                 const fbmm_epilogue *ep, const char *d,
                                 int64_t rows, int64_t K, int64_t cols, void *scratch)
{
    const int64_t esz = (int64_t)sizeof(ACC_T);
    /* B's columns: in place when each is contiguous (aligned to its element),
     * else gathered into scratch, cols x K (row j = B[:, j]) */
    const ACC_T *bt;
    int64_t b_cs;
    if (b_sr == esz && (cols == 1 || b_sc % esz == 0) && (uintptr_t)b % sizeof(ACC_T) == 0) {
        bt = (const ACC_T *)b;
        b_cs = cols == 1 ? 0 : b_sc / esz;
    } else {
        ACC_T *g = (ACC_T *)scratch;
        for (int64_t j = 0; j < cols; j++)
            for (int64_t k = 0; k < K; k++)
                memcpy(g + j * K + k, b + k * b_sr + j * b_sc, sizeof(ACC_T));
        bt = g;
        b_cs = K;
    }
    /* a plain result is written here, element by element (one 16-byte store
     * for a column of 4 float rows); the epilogue's through kd->store */
    const int plain = !ep->scaled && !ep->has_bias;
    /* FBMM_GEMV_GROUP(cols) rows at a time: 4 for 1-2 columns (4 x 1 x 2 or
     * 4 x 2 x 1 accumulators, 2 vectors of B, one of A), 2 for 3-4 (2 x 4 x 1,
     * 4, 1): within AVX2's 16 registers */
#define FBMM_GEMV_GROUP(C) ((C) <= 2 ? 4 : 2)
#define FBMM_GEMV_ONE(C) 1
#define FBMM_GEMV_FOR_COLS(ROWS_OF, A_, S_)                                                        \
    switch (cols) {                                                                                \
    case 1: FBMM_NAME(gemv_rows)(ROWS_OF(1), 1, A_, a_sr, bt, b_cs, K, S_); break;        \
    case 2: FBMM_NAME(gemv_rows)(ROWS_OF(2), 2, A_, a_sr, bt, b_cs, K, S_); break;        \
    case 3: FBMM_NAME(gemv_rows)(ROWS_OF(3), 3, A_, a_sr, bt, b_cs, K, S_); break;        \
    default:                                                                                       \
        FBMM_NAME(gemv_rows)(ROWS_OF(4), FBMM_GEMV_MAX_COLS, A_, a_sr, bt, b_cs, K, S_);  \
        break;                                                                                     \
    }
    const int64_t group = FBMM_GEMV_GROUP(cols);
    ACC_T sums[FBMM_GEMV_MAX_COLS * 4];          /* sums[j * 4 + r] = C[i + r, j] */
    ACC_T tile[4 * NR];                          /* kd->store reads tile[r * NR + j] */
    for (int64_t i = 0; i < rows; i += group) {
        const int64_t g = rows - i < group ? rows - i : group;
        const char *ai = a + i * a_sr;
        if (g == group) {
            FBMM_GEMV_FOR_COLS(FBMM_GEMV_GROUP, ai, sums)
        } else {
            for (int64_t r = 0; r < g; r++) {    /* the last rows, one at a time */
                ACC_T one[FBMM_GEMV_MAX_COLS * 4] = {0};
                FBMM_GEMV_FOR_COLS(FBMM_GEMV_ONE, ai + r * a_sr, one)
                for (int64_t j = 0; j < cols; j++) sums[j * 4 + r] = one[j * 4];
            }
        }
        char *ci = c + i * c_sr;
        if (plain && cols == 1 && c_sr == esz && g == 4) {
            memcpy(ci, sums, 4 * sizeof(ACC_T));
        } else if (plain) {
            for (int64_t r = 0; r < g; r++)
                for (int64_t j = 0; j < cols; j++)
                    memcpy(ci + r * c_sr + j * c_sc, &sums[j * 4 + r], sizeof(ACC_T));
        } else {
            for (int64_t r = 0; r < g; r++)
                for (int64_t j = 0; j < cols; j++) tile[r * NR + j] = sums[j * 4 + r];
            kd->store(ci, c_sr, c_sc, tile, g, cols, 1, ep, d ? d + i * ep->d_sr : 0);
        }
    }
#undef FBMM_GEMV_FOR_COLS
#undef FBMM_GEMV_ONE
#undef FBMM_GEMV_GROUP
}

