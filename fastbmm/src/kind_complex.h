/*
 * kind_complex.h -- one complex dtype as a real product twice as wide and
 * deep (BLIS's "1m" method):
 *   A' = [a_re a_im] per element (n x 2m): exactly A's interleaved memory;
 *   B'[2k..2k+1, 2j..2j+1] = [[ re, im], [-im, re]] of B[k, j];
 *   C' = A' @ B' (n x 2p) holds re, im of C interleaved: C's own memory.
 * Each complex multiply-add costs its 8 real flops, none wasted, and the real
 * microkernel does all of it. Logical k0, kc, j0, nc are always even (KC and
 * NR are even). Matrices within the small path's limit skip the expansion
 * and the packing: K_(small) below multiplies the interleaved pairs directly.
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

/* *out = x with each (re, im) pair swapped and the part that lands first
 * negated: [-x_im, x_re] per pair, the sign flipped as a bit (exact for every
 * value), in integer lanes as wide as ACC_T's (a vector comparison's type).
 * Through pointers, not vectors passed and returned: GCC warns that a
 * 64-byte vector value without AVX-512 (the test-only avx512_emulated
 * variant) has another ABI; always inlined, so nothing goes through memory
 * (callers pass copies: an accumulator's own address must not escape, or it
 * stays in memory through the k loop). */
static inline __attribute__((always_inline)) void K_(swap_neg)(VEC_T *out, const VEC_T *x)
{
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
    LANES_T xi = (LANES_T)*x;
    xi = __builtin_shuffle(xi, swap) ^ neg;
    *out = (VEC_T)xi;
}

static void K_(pack_b)(ACC_T *dst, const char *b, int64_t sr, int64_t sc,
                       int64_t k0, int64_t kc, int64_t j0, int64_t nc)
{
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
                    VEC_T y;
                    K_(swap_neg)(&y, &x);
                    memcpy(d1 + v * VL, &y, sizeof y);
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

/*
 * The small path: whole matrices (n, m, p <= FBMM_SMALL_MAX), no packing, no
 * scratch. B's rows are read as vectors of interleaved (re, im) pairs, in
 * place when they are whole, aligned vectors, else copied into a zero-padded
 * block on the stack; A's elements are read in place, a broadcast of each
 * part. Per element of A and vector b of B's row, two multiply-adds into two
 * accumulators:
 *   acc_re += a_re * b   -> [a_re b_re, a_re b_im, ...]
 *   acc_im += a_im * b   -> [a_im b_re, a_im b_im, ...]
 * and once, after the sum over k, C = acc_re + swap_neg(acc_im), where
 * swap_neg swaps each pair and negates its first part: [-a_im b_im,
 * a_im b_re], so C's pair is (a_re b_re - a_im b_im, a_re b_im + a_im b_re).
 * The 8 real flops of a complex multiply-add, none wasted, and no expanded
 * copy of B (the packed 1m nest writes B twice over: a tenth of 64x32^3
 * complex128's time). The trap the two accumulators avoid: negating or
 * swapping inside the k loop (a shuffle per vector per step, on the ports the
 * multiply-adds need).
 */
/* 2 rows x 2 vectors x 2 = 8 accumulators: 8 chains cover 2 FMA ports x 4
 * cycles of latency. The trap at 3 rows: 12 accumulators, 2 vectors of B and
 * 2 broadcasts fill AVX2's 16 registers, and GCC kept an accumulator on the
 * stack, a store and a reload in every step's dependency chain: 64x32^3
 * complex64 ran at 12.0 GFLOP/s, 20.9 with 2 rows (Zen 3). */
#define CSMALL_ROWS 2       /* rows of C at a time */
#define CSMALL_BLOCK 2      /* vectors of C's row at a time */
#define CSMALL_NVMAX ((2 * FBMM_SMALL_MAX + VL - 1) / VL)   /* vectors of a row, at most */

/* Only acc[0..R)[0..NB) is set and read; GCC cannot tie R to NB and warns of
 * the rest. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
/* R rows x NB vectors of C from row i0 and vector v0 (complex column
 * v0 * VL / 2), against B's rows at bsrc, ldb bytes apart. */
static inline __attribute__((always_inline)) void K_(small_rows)(
    const int R, const int NB, const fbmm_problem *P, const char *A, char *C, const char *D,
    int64_t i0, int64_t v0, const char *bsrc, int64_t ldb)
{
    const int64_t m = P->m, j0 = v0 * (VL / 2);
    const int64_t pb = P->p - j0 < NB * (VL / 2) ? P->p - j0 : NB * (VL / 2);  /* columns */
    VEC_T acc_re[CSMALL_ROWS][CSMALL_BLOCK], acc_im[CSMALL_ROWS][CSMALL_BLOCK];
    FBMM_UNROLL
    for (int r = 0; r < R; r++) {
        FBMM_UNROLL
        for (int v = 0; v < NB; v++) { acc_re[r][v] = (VEC_T){0}; acc_im[r][v] = (VEC_T){0}; }
    }
    const char *bk = bsrc + v0 * (int64_t)sizeof(VEC_T);
    for (int64_t k = 0; k < m; k++, bk += ldb) {
        VEC_T bv[CSMALL_BLOCK];
        FBMM_UNROLL
        for (int v = 0; v < NB; v++) memcpy(&bv[v], bk + v * (int64_t)sizeof(VEC_T), sizeof bv[v]);
        FBMM_UNROLL
        for (int r = 0; r < R; r++) {
            PART_T z[2];
            memcpy(z, A + (i0 + r) * P->a.sr + k * P->a.sc, sizeof z);
            FBMM_UNROLL
            for (int v = 0; v < NB; v++) {
                acc_re[r][v] += z[0] * bv[v];
                acc_im[r][v] += z[1] * bv[v];
            }
        }
    }
    const int c_rows = P->c.sc == 2 * (int64_t)sizeof(PART_T);
    const int epi = P->ep.scaled || P->ep.has_bias;
    FBMM_UNROLL
    for (int r = 0; r < R; r++) {
        const int64_t i = i0 + r;
        char *crow = C + i * P->c.sr + j0 * P->c.sc;
        /* x: 128 bytes at least, as GCC cannot see that a partial vector's
         * bytes are fewer than a vector's and warns that fbmm_copy_short's
         * longer moves could read past it */
        PART_T x[CSMALL_BLOCK * VL > 128 / sizeof(PART_T) ? CSMALL_BLOCK * VL
                                                           : 128 / sizeof(PART_T)]
            __attribute__((aligned(FBMM_VBYTES)));
        VEC_T sum[CSMALL_BLOCK];            /* the row's NB vectors of C */
        FBMM_UNROLL
        for (int v = 0; v < NB; v++) {
            VEC_T im = acc_im[r][v];
            K_(swap_neg)(&sum[v], &im);
            sum[v] += acc_re[r][v];
        }
        if (c_rows && !epi) {
            /* whole vectors straight to C, a partial one through x (the
             * general copy below reads the stack buffer just stored, and a
             * load across two stores fails store forwarding) */
            int64_t v = 0;
            for (; v < NB && (v + 1) * (VL / 2) <= pb; v++)
                memcpy(crow + v * (int64_t)sizeof(VEC_T), &sum[v], sizeof sum[v]);
            if (v < NB && v * (VL / 2) < pb) {
                *(VEC_T *)x = sum[v];
                fbmm_copy_short(crow + v * (int64_t)sizeof(VEC_T), x,
                                (size_t)(pb - v * (VL / 2)) * 2 * sizeof(PART_T));
            }
            continue;
        }
        FBMM_UNROLL
        for (int v = 0; v < NB; v++) memcpy(x + v * VL, &sum[v], sizeof sum[v]);
        const char *drow = D ? D + i * P->ep.d_sr + j0 * P->ep.d_sc : 0;
        for (int64_t j = 0; j < pb; j++) {
            PART_T z[2] = { x[2 * j], x[2 * j + 1] };
            char *q = crow + j * P->c.sc;
            K_(epilogue)(z, &P->ep, 1, q, drow ? drow + j * P->ep.d_sc : 0);
            memcpy(q, z, sizeof z);
        }
    }
}
#pragma GCC diagnostic pop

/* One column block (NB vectors from vector v0), down the rows. */
static inline __attribute__((always_inline)) void K_(small_block)(
    const int NB, const fbmm_problem *P, const char *A, char *C, const char *D, int64_t v0,
    const char *bsrc, int64_t ldb)
{
    int64_t i = 0;
    for (; i + CSMALL_ROWS <= P->n; i += CSMALL_ROWS)
        K_(small_rows)(CSMALL_ROWS, NB, P, A, C, D, i, v0, bsrc, ldb);
#if CSMALL_ROWS != 2
#error "K_(small_block)'s remainder handles CSMALL_ROWS == 2 (one row left at most)"
#endif
    if (i < P->n)
        K_(small_rows)(1, NB, P, A, C, D, i, v0, bsrc, ldb);
}

/* Batch entries [b0, b1). */
static void K_(small)(const fbmm_problem *P, int64_t b0, int64_t b1)
{
    const int64_t m = P->m, p = P->p;
    const int64_t nv = (2 * p + VL - 1) / VL;     /* vectors of a row of B or C */
    const int64_t row_bytes = 2 * p * (int64_t)sizeof(PART_T);
    VEC_T bp[FBMM_SMALL_MAX * CSMALL_NVMAX];
    /* B's rows: whole vectors of contiguous pairs (p a multiple of VL / 2) */
    const int b_whole = P->b.sc == 2 * (int64_t)sizeof(PART_T) && 2 * p == nv * VL;
    fbmm_batch_cursor cur;
    fbmm_cursor_init(&cur, P, b0, b1);
    const char *A, *B, *D;
    char *C;
    while (fbmm_cursor_step(&cur, P, &A, &B, &C, &D)) {
        /* whole rows: in place or copied a vector at a time; else copied,
         * zero-padded. Off a vector boundary they are copied: in place (as
         * the real kinds read them) cost 1024x32^3 complex64 7-10% (Zen 3). */
        int64_t ldb;
        const char *bsrc = FBMM_NAME(small_b_rows)(B, P->b.sr, m, nv, b_whole, 0, bp, &ldb);
        const int b_padded = !bsrc;
        if (b_padded) bsrc = (const char *)bp;
        for (int64_t k = 0; b_padded && k < m; k++) {
            const char *src = B + k * P->b.sr;
            bp[k * nv + nv - 1] = (VEC_T){0};     /* the padding of the last vector */
            if (P->b.sc == 2 * (int64_t)sizeof(PART_T)) {
                fbmm_copy_row(&bp[k * nv], src, (size_t)row_bytes);
            } else {
                PART_T *row = (PART_T *)&bp[k * nv];
                for (int64_t j = 0; j < p; j++)
                    memcpy(row + 2 * j, src + j * P->b.sc, 2 * sizeof(PART_T));
            }
        }
        int64_t v0 = 0;
        for (; v0 + CSMALL_BLOCK <= nv; v0 += CSMALL_BLOCK)
            K_(small_block)(CSMALL_BLOCK, P, A, C, D, v0, bsrc, ldb);
#if CSMALL_BLOCK > 2
#error "K_(small)'s remainder handles CSMALL_BLOCK <= 2"
#endif
        if (v0 < nv)
            K_(small_block)(1, P, A, C, D, v0, bsrc, ldb);
    }
}

#undef CSMALL_ROWS
#undef CSMALL_BLOCK
#undef CSMALL_NVMAX

static const FBMM_NAME(dtype_ops) K_(ops) = {
    K_(pack_a), K_(pack_b), K_(store), /* cplx */ 1, /* same_repr */ 1, /* out_same */ 1,
    /* staged */ 0, /* widen_a */ 0, /* in_size */ 2 * (int64_t)sizeof(ACC_T),
    /* narrow_rows */ 0,
};

/* The packed nest on one tile: 2m deep and 2 * cols wide in real terms. */
static void K_(tile)(const fbmm_problem *P, const char *a, const char *b, char *c,
                     const char *d, int64_t rows, int64_t cols, void *scratch,
                     const char *next_a, const char *next_b, const char *next_c)
{
    FBMM_NAME(gemm_tile)(&K_(ops), a, P->a.sr, P->a.sc, b, P->b.sr, P->b.sc, c, P->c.sr, P->c.sc,
                    &P->ep, d, rows, 2 * P->m, 2 * cols, scratch, next_a, next_b, next_c);
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
