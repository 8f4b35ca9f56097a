/*
 * kinds_template.h -- how each dtype enters and leaves an accumulator family:
 * packing (which absorbs any stride, misalignment and the widening of f16 and
 * small integers), tile stores (narrowing, strides, accumulation), and the
 * unpacked small-matrix loops.
 *
 * Instantiated inside a family (ACC, ACC_T, MR defined; NR as in
 * gemm_template.h) by the macros below:
 *   FBMM_REAL_KIND(name, SRC_T, LOAD, OUT_T, LOAD_OUT, STORE_T, NARROW,
 *                  in_same, out_same, staged)
 *   FBMM_COMPLEX_KIND(name, REAL_T)
 * LOAD(p) reads one input element at char *p and widens it to ACC_T; OUT_T
 * is the result's element type, LOAD_OUT reads one (C, or baddbmm's D), and
 * NARROW(x) turns an ACC_T into the STORE_T bits that are written. in_same /
 * out_same: the inputs / the result are ACC_T's own bits.
 */

#define FBMM_VL ((int64_t)(FBMM_VBYTES / sizeof(ACC_T)))
#define FBMM_NR (FBMM_NV * FBMM_VL)
#define FBMM_SMALL_NVMAX ((FBMM_SMALL_MAX + FBMM_VL - 1) / FBMM_VL)

#define FBMM_REAL_KIND(NAME, SRC_T, LOAD, OUT_T, LOAD_OUT, STORE_T, NARROW, SAME_REPR, OUT_SAME, STAGED) \
static void pack_a_##NAME(ACC_T *dst, const char *a, int64_t sr, int64_t sc,             \
                          int64_t mc, int64_t k0, int64_t kc)                             \
{                                                                                         \
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {                                             \
        int64_t mr = mc - i0 < MR ? mc - i0 : MR;                                         \
        const char *base = a + i0 * sr + k0 * sc;                                         \
        for (int64_t k = 0; k < kc; k++) {                                                \
            const char *col = base + k * sc;                                              \
            ACC_T *d = dst + k * MR;                                                      \
            for (int64_t r = 0; r < mr; r++) d[r] = LOAD(col + r * sr);                   \
            for (int64_t r = mr; r < MR; r++) d[r] = 0;                                   \
        }                                                                                 \
        dst += kc * MR;                                                                   \
    }                                                                                     \
}                                                                                         \
static void pack_b_##NAME(ACC_T *dst, const char *b, int64_t sr, int64_t sc,             \
                          int64_t k0, int64_t kc, int64_t j0, int64_t nc)                 \
{                                                                                         \
    for (int64_t jb = 0; jb < nc; jb += FBMM_NR) {                                        \
        int64_t nr = nc - jb < FBMM_NR ? nc - jb : FBMM_NR;                               \
        const char *base = b + k0 * sr + (j0 + jb) * sc;                                  \
        if (SAME_REPR && sc == (int64_t)sizeof(SRC_T)) {                                  \
            /* rows of B are contiguous: one copy per row */                              \
            for (int64_t k = 0; k < kc; k++) {                                            \
                ACC_T *d = dst + k * FBMM_NR;                                             \
                if (nr == FBMM_NR) /* constant size: inlined vector moves */             \
                    memcpy(d, base + k * sr, FBMM_NR * sizeof(ACC_T));                    \
                else                                                                      \
                    memcpy(d, base + k * sr, (size_t)nr * sizeof(ACC_T));                 \
                for (int64_t j = nr; j < FBMM_NR; j++) d[j] = 0;                          \
            }                                                                             \
        } else if ((sr < 0 ? -sr : sr) <= (sc < 0 ? -sc : sc)) {                          \
            /* columns are the short stride (a transposed view): walk down them */        \
            for (int64_t j = 0; j < nr; j++) {                                            \
                const char *col = base + j * sc;                                          \
                for (int64_t k = 0; k < kc; k++) dst[k * FBMM_NR + j] = LOAD(col + k * sr);\
            }                                                                             \
            for (int64_t k = 0; k < kc; k++)                                              \
                for (int64_t j = nr; j < FBMM_NR; j++) dst[k * FBMM_NR + j] = 0;          \
        } else {                                                                          \
            for (int64_t k = 0; k < kc; k++) {                                            \
                const char *row = base + k * sr;                                          \
                ACC_T *d = dst + k * FBMM_NR;                                             \
                for (int64_t j = 0; j < nr; j++) d[j] = LOAD(row + j * sc);               \
                for (int64_t j = nr; j < FBMM_NR; j++) d[j] = 0;                          \
            }                                                                             \
        }                                                                                 \
        dst += kc * FBMM_NR;                                                              \
    }                                                                                     \
}                                                                                         \
static void store_##NAME(char *c, int64_t sr, int64_t sc, const ACC_T *tile,              \
                         int64_t mr, int64_t nr, int first,                               \
                         const fbmm_epilogue *ep, const char *d)                          \
{                                                                                         \
    const ACC_T al = FBMM_ALPHA(ep), be = FBMM_BETA(ep);                                  \
    for (int64_t i = 0; i < mr; i++) {                                                    \
        for (int64_t j = 0; j < nr; j++) {                                                \
            char *q = c + i * sr + j * sc;                                                \
            ACC_T v = tile[i * FBMM_NR + j];                                              \
            if (ep->scaled) v = (ACC_T)(al * v);                                          \
            if (!first) v = (ACC_T)(v + LOAD_OUT(q));                                     \
            else if (ep->has_bias) v = (ACC_T)(v + be * LOAD_OUT(d + i * ep->d_sr + j * ep->d_sc));\
            STORE_T bits = NARROW(v);                                                     \
            memcpy(q, &bits, sizeof bits);                                                \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
/* Whole small matrices (n, m, p <= FBMM_SMALL_MAX): B is widened into a  \
 * zero-padded m x (nv vectors) block on the stack, then each row of C is   \
 * nv vector accumulators fed by broadcasts of A; no panels, no tiles. */   \
static inline __attribute__((always_inline)) void small_matrix_##NAME(       \
    const fbmm_problem *P, const char *A, const char *B, char *C, const char *D, \
    const int64_t nv, const int64_t a_sc, FBMM_NAME(vec) *bp)                 \
{                                                                             \
    const int64_t n = P->n, m = P->m, p = P->p;                               \
    if (nv < 1 || nv > FBMM_SMALL_NVMAX) __builtin_unreachable();             \
    for (int64_t k = 0; k < m; k++) {                                         \
        ACC_T *row = (ACC_T *)(bp + k * nv);                                  \
        const char *src = B + k * P->b.sr;                                    \
        if (SAME_REPR && P->b.sc == (int64_t)sizeof(SRC_T)) {                 \
            memcpy(row, src, (size_t)p * sizeof(ACC_T));                      \
        } else {                                                              \
            for (int64_t j = 0; j < p; j++) row[j] = LOAD(src + j * P->b.sc); \
        }                                                                     \
        for (int64_t j = p; j < nv * FBMM_VL; j++) row[j] = 0;                \
    }                                                                         \
    const int c_rows = OUT_SAME && P->c.sc == (int64_t)sizeof(OUT_T);         \
    const int epi = P->ep.scaled || P->ep.has_bias;                           \
    const ACC_T al = FBMM_ALPHA(&P->ep), be = FBMM_BETA(&P->ep);              \
    for (int64_t i = 0; i < n; i++) {                                         \
        FBMM_NAME(vec) acc[FBMM_SMALL_NVMAX];                                 \
        FBMM_UNROLL                                                           \
        for (int64_t v = 0; v < FBMM_SMALL_NVMAX; v++) acc[v] = (FBMM_NAME(vec)){0};        \
        const char *arow = A + i * P->a.sr;                                   \
        for (int64_t k = 0; k < m; k++) {                                     \
            ACC_T aik = LOAD(arow + k * a_sc);                                \
            FBMM_UNROLL                                                       \
            for (int64_t v = 0; v < nv; v++) acc[v] += aik * bp[k * nv + v];  \
        }                                                                     \
        /* acc's address must not escape (a memcpy from it would keep it in   \
         * memory through the k loop): copy it out by value first. */         \
        ACC_T x[FBMM_SMALL_NVMAX * FBMM_VL] __attribute__((aligned(FBMM_VBYTES)));\
        FBMM_UNROLL                                                           \
        for (int64_t v = 0; v < FBMM_SMALL_NVMAX; v++)                                      \
            *(FBMM_NAME(vec) *)(x + v * FBMM_VL) = acc[v];                    \
        char *crow = C + i * P->c.sr;                                         \
        if (epi) {                                                                        \
            for (int64_t j = 0; j < p; j++) {                                             \
                if (P->ep.scaled) x[j] = (ACC_T)(al * x[j]);                              \
                if (P->ep.has_bias)                                                       \
                    x[j] = (ACC_T)(x[j] + be * LOAD_OUT(D + i * P->ep.d_sr + j * P->ep.d_sc));\
            }                                                                             \
        }                                                                                 \
        if (c_rows) {                                                         \
            memcpy(crow, x, (size_t)p * sizeof(ACC_T));                       \
        } else {                                                              \
            for (int64_t j = 0; j < p; j++) {                                 \
                STORE_T bits = NARROW(x[j]);                                  \
                memcpy(crow + j * P->c.sc, &bits, sizeof bits);               \
            }                                                                 \
        }                                                                     \
    }                                                                         \
}                                                                             \
/* Batch entries [b0, b1); nv is made a constant so that the accumulators \
 * live in registers. */                                                      \
static void small_##NAME(const fbmm_problem *P, int64_t b0, int64_t b1)                   \
{                                                                                         \
    FBMM_NAME(vec) bp[FBMM_SMALL_MAX * FBMM_SMALL_NVMAX];                                 \
    const int64_t nv = (P->p + FBMM_VL - 1) / FBMM_VL;                                    \
    fbmm_batch_cursor cur; fbmm_cursor_init(&cur, P, b0);                                 \
    for (int64_t bi = b0; bi < b1; bi++) {                                                \
        if (bi > b0) fbmm_cursor_next(&cur, P);                                           \
        const char *A = cur.at[FBMM_OP_a], *B = cur.at[FBMM_OP_b], *D = cur.at[FBMM_OP_d];\
        char *C = (char *)cur.at[FBMM_OP_c];                                              \
        /* constant nv = 1 and (rows of A in place) a constant stride let                 \
         * the accumulators live in registers and A's loads be plain */                   \
        if (nv == 1 && SAME_REPR && P->a.sc == (int64_t)sizeof(SRC_T))                    \
            small_matrix_##NAME(P, A, B, C, D, 1, sizeof(SRC_T), bp);                     \
        else if (nv == 1)                                                                 \
            small_matrix_##NAME(P, A, B, C, D, 1, P->a.sc, bp);                           \
        else                                                                              \
            small_matrix_##NAME(P, A, B, C, D, nv, P->a.sc, bp);                          \
    }                                                                                     \
}                                                                                         \
static const FBMM_NAME(dtype_ops) ops_##NAME = {                                              \
    pack_a_##NAME, pack_b_##NAME, store_##NAME, 0, SAME_REPR, OUT_SAME, STAGED };             \
enum { staged_##NAME = STAGED };   /* the same flag as a constant (engine_template's table) */

/*
 * Complex as a real product twice as wide and deep (BLIS's "1m" method):
 *   A' = [a_re a_im] per element (n x 2m): exactly A's interleaved memory;
 *   B'[2k..2k+1, 2j..2j+1] = [[ re, im], [-im, re]] of B[k, j];
 *   C' = A' @ B' (n x 2p) holds re, im of C interleaved: C's own memory.
 * Each complex multiply-add costs its 8 real flops, none wasted, and the real
 * microkernel does all of it. Logical k0, kc, j0, nc are always even (KC and NR
 * are even).
 */
#define FBMM_COMPLEX_KIND(NAME, REAL_T)                                                   \
static void pack_a_##NAME(ACC_T *dst, const char *a, int64_t sr, int64_t sc,             \
                          int64_t mc, int64_t k0, int64_t kc)                             \
{                                                                                         \
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {                                             \
        int64_t mr = mc - i0 < MR ? mc - i0 : MR;                                         \
        const char *base = a + i0 * sr + (k0 / 2) * sc;                                   \
        for (int64_t k = 0; k < kc / 2; k++) {                                            \
            const char *col = base + k * sc;                                              \
            ACC_T *d0 = dst + (2 * k) * MR, *d1 = d0 + MR;                                \
            for (int64_t r = 0; r < mr; r++) {                                            \
                REAL_T z[2];                                                              \
                memcpy(z, col + r * sr, sizeof z);                                        \
                d0[r] = z[0]; d1[r] = z[1];                                               \
            }                                                                             \
            for (int64_t r = mr; r < MR; r++) { d0[r] = 0; d1[r] = 0; }                   \
        }                                                                                 \
        dst += kc * MR;                                                                   \
    }                                                                                     \
}                                                                                         \
static void pack_b_##NAME(ACC_T *dst, const char *b, int64_t sr, int64_t sc,             \
                          int64_t k0, int64_t kc, int64_t j0, int64_t nc)                 \
{                                                                                         \
    for (int64_t jb = 0; jb < nc; jb += FBMM_NR) {                                        \
        int64_t nr = nc - jb < FBMM_NR ? nc - jb : FBMM_NR;                               \
        const char *base = b + (k0 / 2) * sr + ((j0 + jb) / 2) * sc;                      \
        for (int64_t k = 0; k < kc / 2; k++) {                                            \
            const char *row = base + k * sr;                                              \
            ACC_T *d0 = dst + (2 * k) * FBMM_NR, *d1 = d0 + FBMM_NR;                      \
            if (sc == 2 * (int64_t)sizeof(REAL_T)) {                                      \
                /* contiguous row: d0 is its memory as it is, d1 its pairs                \
                 * swapped with the first negated. Through a local copy, so               \
                 * that the compiler sees no aliasing and vectorises. */                  \
                ACC_T t[FBMM_NR] = {0};                                                   \
                if (nr == FBMM_NR) /* constant size: inlined vector moves */              \
                    memcpy(t, row, FBMM_NR * sizeof(ACC_T));                              \
                else                                                                      \
                    memcpy(t, row, (size_t)nr * sizeof(ACC_T));                           \
                for (int64_t j = 0; j < FBMM_NR; j += 2) {                                \
                    d0[j] = t[j]; d0[j + 1] = t[j + 1];                                   \
                    d1[j] = -t[j + 1]; d1[j + 1] = t[j];                                  \
                }                                                                         \
                continue;                                                                 \
            }                                                                             \
            for (int64_t j = 0; j < nr / 2; j++) {                                        \
                REAL_T z[2];                                                              \
                memcpy(z, row + j * sc, sizeof z);                                        \
                d0[2 * j] = z[0];  d0[2 * j + 1] = z[1];                                  \
                d1[2 * j] = -z[1]; d1[2 * j + 1] = z[0];                                  \
            }                                                                             \
            for (int64_t j = nr; j < FBMM_NR; j++) { d0[j] = 0; d1[j] = 0; }              \
        }                                                                                 \
        dst += kc * FBMM_NR;                                                              \
    }                                                                                     \
}                                                                                         \
/* z = alpha * z (+ old | + beta * d): complex scalars, applied on store */               \
static inline void epilogue_##NAME(REAL_T z[2], const fbmm_epilogue *ep, int first,       \
                                   const char *q, const char *dq)                         \
{                                                                                         \
    if (ep->scaled) {                                                                     \
        REAL_T ar = (REAL_T)ep->alpha[0], ai = (REAL_T)ep->alpha[1];                      \
        REAL_T t0 = ar * z[0] - ai * z[1], t1 = ar * z[1] + ai * z[0];                    \
        z[0] = t0; z[1] = t1;                                                             \
    }                                                                                     \
    if (!first) {                                                                         \
        REAL_T o[2];                                                                      \
        memcpy(o, q, sizeof o);                                                           \
        z[0] += o[0]; z[1] += o[1];                                                       \
    } else if (ep->has_bias) {                                                            \
        REAL_T o[2], br = (REAL_T)ep->beta[0], bi = (REAL_T)ep->beta[1];                  \
        memcpy(o, dq, sizeof o);                                                          \
        z[0] += br * o[0] - bi * o[1];                                                    \
        z[1] += br * o[1] + bi * o[0];                                                    \
    }                                                                                     \
}                                                                                         \
static void store_##NAME(char *c, int64_t sr, int64_t sc, const ACC_T *tile,              \
                         int64_t mr, int64_t nr, int first,                               \
                         const fbmm_epilogue *ep, const char *d)                          \
{                                                                                         \
    for (int64_t i = 0; i < mr; i++) {                                                    \
        for (int64_t j = 0; j < nr / 2; j++) {                                            \
            char *q = c + i * sr + j * sc;                                                \
            REAL_T z[2] = { tile[i * FBMM_NR + 2 * j], tile[i * FBMM_NR + 2 * j + 1] };   \
            epilogue_##NAME(z, ep, first, q, d ? d + i * ep->d_sr + j * ep->d_sc : 0);    \
            memcpy(q, z, sizeof z);                                                       \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
static void small_##NAME(const fbmm_problem *P, int64_t b0, int64_t b1)                  \
{                                                                                         \
    const int64_t n = P->n, m = P->m, p = P->p;                                           \
    fbmm_batch_cursor cur; fbmm_cursor_init(&cur, P, b0);                                 \
    for (int64_t bi = b0; bi < b1; bi++) {                                                \
        if (bi > b0) fbmm_cursor_next(&cur, P);                                           \
        const char *A = cur.at[FBMM_OP_a], *B = cur.at[FBMM_OP_b], *D = cur.at[FBMM_OP_d];\
        char *C = (char *)cur.at[FBMM_OP_c];                                              \
        for (int64_t i = 0; i < n; i++) {                                                 \
            REAL_T re[FBMM_SMALL_MAX], im[FBMM_SMALL_MAX];                                \
            for (int64_t j = 0; j < p; j++) { re[j] = 0; im[j] = 0; }                     \
            for (int64_t k = 0; k < m; k++) {                                             \
                REAL_T x[2];                                                              \
                memcpy(x, A + i * P->a.sr + k * P->a.sc, sizeof x);                       \
                const char *brow = B + k * P->b.sr;                                       \
                for (int64_t j = 0; j < p; j++) {                                         \
                    REAL_T y[2];                                                          \
                    memcpy(y, brow + j * P->b.sc, sizeof y);                              \
                    re[j] += x[0] * y[0] - x[1] * y[1];                                   \
                    im[j] += x[0] * y[1] + x[1] * y[0];                                   \
                }                                                                         \
            }                                                                             \
            for (int64_t j = 0; j < p; j++) {                                             \
                REAL_T z[2] = { re[j], im[j] };                                           \
                char *q = C + i * P->c.sr + j * P->c.sc;                                  \
                epilogue_##NAME(z, &P->ep, 1, q, D ? D + i * P->ep.d_sr + j * P->ep.d_sc : 0);\
                memcpy(q, z, sizeof z); \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
static const FBMM_NAME(dtype_ops) ops_##NAME = {                                              \
    pack_a_##NAME, pack_b_##NAME, store_##NAME, 1, 1, 1, 0 };                                 \
enum { staged_##NAME = 0 };
