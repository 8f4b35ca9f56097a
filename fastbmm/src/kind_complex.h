/*
 * kind_complex.h -- one complex dtype as a real product twice as wide and
 * deep (BLIS's "1m" method):
 *   A' = [a_re a_im] per element (n x 2m): exactly A's interleaved memory;
 *   B'[2k..2k+1, 2j..2j+1] = [[ re, im], [-im, re]] of B[k, j];
 *   C' = A' @ B' (n x 2p) holds re, im of C interleaved: C's own memory.
 * Each complex multiply-add costs its 8 real flops, none wasted, and the real
 * microkernel does all of it. Logical k0, kc, j0, nc are always even (KC and
 * NR are even).
 *
 * A parameterised include, like kind_real.h: KIND, and IN (the element format
 * of the real and imaginary parts, the family's own: f32 or f64); OUT and
 * STAGED are defined by the includer for uniformity and must be IN and 0.
 * This file #undefs them at its end.
 */

#define K_(x) FBMM_CAT(x, KIND)
#define PART_T FBMM_CAT3(fbmm, IN, t)     /* one real or imaginary part */

static void K_(pack_a)(ACC_T *dst, const char *a, int64_t sr, int64_t sc,
                       int64_t mc, int64_t k0, int64_t kc)
{
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {
        int64_t mr = mc - i0 < MR ? mc - i0 : MR;
        const char *base = a + i0 * sr + (k0 / 2) * sc;
        for (int64_t k = 0; k < kc / 2; k++) {
            const char *col = base + k * sc;
            ACC_T *d0 = dst + (2 * k) * MR, *d1 = d0 + MR;
            for (int64_t r = 0; r < mr; r++) {
                PART_T z[2];
                memcpy(z, col + r * sr, sizeof z);
                d0[r] = z[0];
                d1[r] = z[1];
            }
            for (int64_t r = mr; r < MR; r++) { d0[r] = 0; d1[r] = 0; }
        }
        dst += kc * MR;
    }
}

static void K_(pack_b)(ACC_T *dst, const char *b, int64_t sr, int64_t sc,
                       int64_t k0, int64_t kc, int64_t j0, int64_t nc)
{
    /* integer lanes as wide as ACC_T's (a vector comparison's type): swap
     * lanes 2l and 2l+1, and flip the sign bit of the even ones */
    typedef __typeof__((VEC_T){0} < (VEC_T){0}) LANES_T;
    LANES_T swap, neg;
    const ACC_T negzero = -(ACC_T)0;
    __typeof__(swap[0]) sign;                         /* -0's bits: the sign bit */
    memcpy(&sign, &negzero, sizeof sign);
    FBMM_UNROLL
    for (int l = 0; l < VL; l++) {
        swap[l] = l ^ 1;
        neg[l] = (l & 1) ? 0 : sign;
    }
    if (sc == 2 * (int64_t)sizeof(PART_T)) {
        /* Rows of B are contiguous: each row read once, front to back, into
         * every sliver (as the real pack_b; a sliver at a time walked B's
         * rows once per sliver). Per piece of NR parts: d0 is its memory as
         * it is, d1 its pairs swapped with the first negated, a vector at a
         * time (the sign flipped as a bit: exact for every value). The trap:
         * the same element by element through a local copy made GCC store
         * vectors and reload single lanes, each reload waiting ~15 cycles on
         * a failed store forwarding: a quarter of 64x32^3 complex64's time. */
        for (int64_t k = 0; k < kc / 2; k++) {
            const char *row = b + (k0 / 2 + k) * sr + (j0 / 2) * sc;
            for (int64_t jb = 0; jb < nc; jb += NR) {
                int64_t nr = nc - jb < NR ? nc - jb : NR;
                ACC_T *d0 = dst + jb * kc + (2 * k) * NR, *d1 = d0 + NR;
                ACC_T t[NR] = {0};
                const char *src = row + jb * (int64_t)sizeof(ACC_T);
                if (nr < NR) {                 /* a partial sliver: zero-padded */
                    memcpy(t, src, (size_t)nr * sizeof(ACC_T));
                    src = (const char *)t;
                }
                FBMM_UNROLL
                for (int v = 0; v < FBMM_NV; v++) {
                    VEC_T x;
                    memcpy(&x, src + v * (int64_t)sizeof(VEC_T), sizeof x);
                    memcpy(d0 + v * VL, &x, sizeof x);
                    LANES_T xi = (LANES_T)x;
                    xi = __builtin_shuffle(xi, swap) ^ neg;
                    memcpy(d1 + v * VL, &xi, sizeof xi);
                }
            }
        }
        return;
    }
    for (int64_t jb = 0; jb < nc; jb += NR) {
        int64_t nr = nc - jb < NR ? nc - jb : NR;
        const char *base = b + (k0 / 2) * sr + ((j0 + jb) / 2) * sc;
        for (int64_t k = 0; k < kc / 2; k++) {
            const char *row = base + k * sr;
            ACC_T *d0 = dst + (2 * k) * NR, *d1 = d0 + NR;
            for (int64_t j = 0; j < nr / 2; j++) {
                PART_T z[2];
                memcpy(z, row + j * sc, sizeof z);
                d0[2 * j] = z[0];
                d0[2 * j + 1] = z[1];
                d1[2 * j] = -z[1];
                d1[2 * j + 1] = z[0];
            }
            for (int64_t j = nr; j < NR; j++) { d0[j] = 0; d1[j] = 0; }
        }
        dst += kc * NR;
    }
}

/* z = alpha * z (+ old | + beta * d): complex scalars, applied on store */
static inline void K_(epilogue)(PART_T z[2], const fbmm_epilogue *ep, int first,
                                const char *q, const char *dq)
{
    if (ep->scaled) {
        PART_T ar = (PART_T)ep->alpha[0], ai = (PART_T)ep->alpha[1];
        PART_T t0 = ar * z[0] - ai * z[1], t1 = ar * z[1] + ai * z[0];
        z[0] = t0;
        z[1] = t1;
    }
    if (!first) {
        PART_T o[2];
        memcpy(o, q, sizeof o);
        z[0] += o[0];
        z[1] += o[1];
    } else if (ep->has_bias) {
        PART_T o[2], br = (PART_T)ep->beta[0], bi = (PART_T)ep->beta[1];
        memcpy(o, dq, sizeof o);
        z[0] += br * o[0] - bi * o[1];
        z[1] += br * o[1] + bi * o[0];
    }
}

static void K_(store)(char *c, int64_t sr, int64_t sc, const ACC_T *tile,
                      int64_t mr, int64_t nr, int first,
                      const fbmm_epilogue *ep, const char *d)
{
    for (int64_t i = 0; i < mr; i++) {
        for (int64_t j = 0; j < nr / 2; j++) {
            char *q = c + i * sr + j * sc;
            PART_T z[2] = { tile[i * NR + 2 * j], tile[i * NR + 2 * j + 1] };
            K_(epilogue)(z, ep, first, q, d ? d + i * ep->d_sr + j * ep->d_sc : 0);
            memcpy(q, z, sizeof z);
        }
    }
}

static void K_(small)(const fbmm_problem *P, int64_t b0, int64_t b1)
{
    const int64_t n = P->n, m = P->m, p = P->p;
    fbmm_batch_cursor cur;
    fbmm_cursor_init(&cur, P, b0, b1);
    const char *A, *B, *D;
    char *C;
    while (fbmm_cursor_step(&cur, P, &A, &B, &C, &D)) {
        for (int64_t i = 0; i < n; i++) {
            PART_T re[FBMM_SMALL_MAX], im[FBMM_SMALL_MAX];
            for (int64_t j = 0; j < p; j++) { re[j] = 0; im[j] = 0; }
            for (int64_t k = 0; k < m; k++) {
                PART_T x[2];
                memcpy(x, A + i * P->a.sr + k * P->a.sc, sizeof x);
                const char *brow = B + k * P->b.sr;
                for (int64_t j = 0; j < p; j++) {
                    PART_T y[2];
                    memcpy(y, brow + j * P->b.sc, sizeof y);
                    re[j] += x[0] * y[0] - x[1] * y[1];
                    im[j] += x[0] * y[1] + x[1] * y[0];
                }
            }
            for (int64_t j = 0; j < p; j++) {
                PART_T z[2] = { re[j], im[j] };
                char *q = C + i * P->c.sr + j * P->c.sc;
                K_(epilogue)(z, &P->ep, 1, q, D ? D + i * P->ep.d_sr + j * P->ep.d_sc : 0);
                memcpy(q, z, sizeof z);
            }
        }
    }
}

static const FBMM_NAME(dtype_ops) K_(ops) = {
    K_(pack_a), K_(pack_b), K_(store), /* cplx */ 1, /* same_repr */ 1, /* out_same */ 1,
    /* staged */ 0, /* widen_a */ 0, /* in_size */ 2 * (int64_t)sizeof(ACC_T),
    /* narrow_rows */ 0,
};

/* The packed nest on one tile: 2m deep and 2 * cols wide in real terms. */
static void K_(tile)(const fbmm_problem *P, const char *a, const char *b, char *c,
                     const char *d, int64_t rows, int64_t cols, void *scratch)
{
    FBMM_NAME(gemm_tile)(&K_(ops), a, P->a.sr, P->a.sc, b, P->b.sr, P->b.sc, c, P->c.sr, P->c.sc,
                    &P->ep, d, rows, 2 * P->m, 2 * cols, scratch);
}

static size_t K_(scratch)(int64_t rows, int64_t K, int64_t cols)
{
    return FBMM_NAME(scratch_bytes)(&K_(ops), rows, 2 * K, 2 * cols);
}

static const fbmm_kind K_(kind) = {
    .small = K_(small),
    .small_max = FBMM_SMALL_MAX_COMPLEX,
    .tile = K_(tile),
    .stream = 0,
    .gemv = 0,
    .scratch = K_(scratch),
    .itemsize = 2 * sizeof(PART_T),
    .mr = MR,
    .nr = NR,
    .mc = MC,
    .staged = 0,
};

#undef K_
#undef PART_T
#undef KIND
#undef IN
#undef OUT
#undef STAGED
