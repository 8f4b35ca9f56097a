/*
 * kind_real.h -- one real dtype's way into and out of its accumulator family:
 * packing (which absorbs any stride, misalignment and the widening of f16 and
 * small integers), tile stores (narrowing, strides, baddbmm's epilogue), the
 * unpacked small-matrix loops, and its entry in the engine's table of kinds.
 *
 * A parameterised include: src/generated/kinds.h (written by setup.py from
 * dtypes.def) includes it once per real row, inside the row's family (ACC,
 * ACC_T, MR, ... defined: family_begin.h), after defining
 *     KIND     the row's kind (the suffix of every name made here)
 *     IN, OUT  element formats of the operands and the result (elements.h)
 *     STAGED   1: round once after the whole inner sum (see gemm_tile)
 * and this file #undefs them at its end.
 */

#define K_(x) FBMM_CAT(x, KIND)
#define IN_T FBMM_CAT3(fbmm, IN, t)
#define OUT_T FBMM_CAT3(fbmm, OUT, t)
#define LOAD_IN FBMM_CAT(fbmm_load, IN)
#define WIDEN_IN FBMM_CAT(fbmm_widen, IN)
#define LOAD_OUT FBMM_CAT(fbmm_load, OUT)
#define STORE_OUT FBMM_CAT(fbmm_store, OUT)
#define NARROW_OUT FBMM_CAT(fbmm_narrow, OUT)
/* an element of A in the small path: in place (SAME_REPR) or widened */
#define LOAD_A(p) (SAME_REPR ? LOAD_IN(p) : FBMM_NAME(load_acc)(p))
/* The operands' (result's) elements are the accumulator's own bits: a format
 * belongs to one family, so the same size means the same representation. */
#define SAME_REPR (sizeof(IN_T) == sizeof(ACC_T))
#define OUT_SAME (sizeof(OUT_T) == sizeof(ACC_T))

static void K_(pack_a)(ACC_T *dst, const char *a, int64_t sr, int64_t sc,
                       int64_t mc, int64_t k0, int64_t kc)
{
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {
        int64_t mr = mc - i0 < MR ? mc - i0 : MR;
        const char *base = a + i0 * sr + k0 * sc;
        for (int64_t k = 0; k < kc; k++) {
            const char *col = base + k * sc;
            ACC_T *d = dst + k * MR;
            for (int64_t r = 0; r < mr; r++) d[r] = LOAD_IN(col + r * sr);
            for (int64_t r = mr; r < MR; r++) d[r] = 0;
        }
        dst += kc * MR;
    }
}

static void K_(pack_b)(ACC_T *dst, const char *b, int64_t sr, int64_t sc,
                       int64_t k0, int64_t kc, int64_t j0, int64_t nc)
{
    if (sc == (int64_t)sizeof(IN_T)) {
        /* Rows of B are contiguous: each row read once, front to back, its
         * NR-wide pieces copied (or widened) into the slivers. The trap: a
         * sliver at a time reads one line of every row, a strided walk
         * repeated per sliver, and B arrives from L3 that way: pack_b was a
         * tenth of 64x128x128x64 int32's time on Zen 3. */
        for (int64_t k = 0; k < kc; k++) {
            const char *row = b + (k0 + k) * sr + j0 * sc;
            for (int64_t jb = 0; jb < nc; jb += NR) {
                int64_t nr = nc - jb < NR ? nc - jb : NR;
                ACC_T *d = dst + jb * kc + k * NR;      /* sliver jb / NR, row k */
                if (SAME_REPR && nr == NR) /* constant size: inlined vector moves */
                    memcpy(d, row + jb * sc, NR * sizeof(ACC_T));
                else if (SAME_REPR) {
                    /* the edge sliver: zeros, then the row's piece, in moves
                     * of constant size. The trap: memcpy and the zeroing
                     * loop of a run-time length were a libc call each per
                     * row (24% of 512x24x40x56 float32 on a Xeon). */
                    const VEC_T z = {0};
                    FBMM_UNROLL
                    for (int v = 0; v < FBMM_NV; v++) memcpy(d + v * VL, &z, sizeof z);
                    fbmm_copy_short(d, row + jb * sc, (size_t)nr * sizeof(ACC_T));
                    continue;
                }
                else if (nr == NR)
                    WIDEN_IN(d, row + jb * sc, NR);
                else {
                    /* zeros first, in vector moves (a zeroing loop of a
                     * run-time length is a libc memset call per row) */
                    const VEC_T z = {0};
                    FBMM_UNROLL
                    for (int v = 0; v < FBMM_NV; v++) memcpy(d + v * VL, &z, sizeof z);
                    WIDEN_IN(d, row + jb * sc, nr);
                }
            }
        }
        return;
    }
    for (int64_t jb = 0; jb < nc; jb += NR) {
        int64_t nr = nc - jb < NR ? nc - jb : NR;
        const char *base = b + k0 * sr + (j0 + jb) * sc;
        if ((sr < 0 ? -sr : sr) <= (sc < 0 ? -sc : sc)) {
            /* columns are the short stride (a transposed view): walk down them */
            int64_t j_done = 0;
            if (SAME_REPR && sr == (int64_t)sizeof(IN_T)) {
                /* contiguous columns: VL x VL blocks, read a column vector at
                 * a time, transposed in registers, stored a row at a time
                 * (the walk below stores one element per NR-strided row) */
                const int64_t kv = kc - kc % VL;
                for (; j_done + VL <= nr; j_done += VL) {
                    const char *cols = base + j_done * sc;
                    ACC_T *d = dst + j_done;
                    for (int64_t k = 0; k < kv; k += VL) {
                        VEC_T r[VL];   /* registers, if every loop unrolls */
                        FBMM_UNROLL
                        for (int64_t j = 0; j < VL; j++)
                            memcpy(&r[j], cols + j * sc + k * sr, sizeof(VEC_T));
                        FBMM_NAME(transpose_block)(r);
                        FBMM_UNROLL
                        for (int64_t i = 0; i < VL; i++)
                            memcpy(d + (k + i) * NR, &r[i], sizeof(VEC_T));
                    }
                    for (int64_t j = 0; j < VL; j++)
                        for (int64_t k = kv; k < kc; k++)
                            d[k * NR + j] = LOAD_IN(cols + j * sc + k * sr);
                }
            }
            for (int64_t j = j_done; j < nr; j++) {
                const char *col = base + j * sc;
                for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = LOAD_IN(col + k * sr);
            }
            for (int64_t k = 0; k < kc; k++)
                for (int64_t j = nr; j < NR; j++) dst[k * NR + j] = 0;
        } else {
            for (int64_t k = 0; k < kc; k++) {
                const char *row = base + k * sr;
                ACC_T *d = dst + k * NR;
                for (int64_t j = 0; j < nr; j++) d[j] = LOAD_IN(row + j * sc);
                for (int64_t j = nr; j < NR; j++) d[j] = 0;
            }
        }
        dst += kc * NR;
    }
}

/* A plain result (no epilogue) to unit columns, rows x cols sums (row
 * stride ld) rounded row by row through the vectorised NARROW_OUT; 0,
 * writing nothing, otherwise. The store's first panel and dtype_ops'
 * narrow_rows (stage_out: a whole staging block in one call). */
static int K_(narrow_rows)(char *c, int64_t c_sr, int64_t c_sc, const ACC_T *s, int64_t ld,
                           int64_t rows, int64_t cols, const fbmm_epilogue *ep)
{
    if (ep->scaled || ep->has_bias || c_sc != (int64_t)sizeof(OUT_T)) return 0;
    for (int64_t i = 0; i < rows; i++) NARROW_OUT(c + i * c_sr, s + i * ld, cols);
    return 1;
}

static void K_(store)(char *c, int64_t sr, int64_t sc, const ACC_T *tile,
                      int64_t mr, int64_t nr, int first,
                      const fbmm_epilogue *ep, const char *d)
{
    const ACC_T al = FBMM_ALPHA(ep), be = FBMM_BETA(ep);
    /* a plain store to unit columns (bmm's): the vectorised rows; the loop
     * below branches per element */
    if (first && K_(narrow_rows)(c, sr, sc, tile, NR, mr, nr, ep)) return;
    for (int64_t i = 0; i < mr; i++) {
        for (int64_t j = 0; j < nr; j++) {
            char *q = c + i * sr + j * sc;
            ACC_T v = tile[i * NR + j];
            if (ep->scaled) v = (ACC_T)(al * v);
            if (!first) v = (ACC_T)(v + LOAD_OUT(q));
            else if (ep->has_bias) v = (ACC_T)(v + be * LOAD_OUT(d + i * ep->d_sr + j * ep->d_sc));
            STORE_OUT(q, v);
        }
    }
}

/* R rows x nb vectors of C, from row i0 and vector v0 (column j0 = v0 * VL)
 * of a small matrix: R x nb vector accumulators fed by broadcasts of A
 * against B's widened block bp (ldb vectors a row). The trap: one row alone
 * is a chain of m dependent multiply-adds (4 cycles each on Zen 3 and
 * Skylake), so R rows go together as R independent chains (an 8x8x8 product
 * took 85 ns a matrix one row at a time, the FMA latency of its 64 chained
 * steps); R and nb are constants, so acc lives in registers. */
/* Only acc[0..R)[0..nb) is set and read; GCC cannot tie R to nb and warns of
 * the rest. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
static inline __attribute__((always_inline)) void K_(small_rows)(
    const int R, const int nb, const fbmm_problem *P, const char *A, char *C, const char *D,
    int64_t i0, int64_t v0, const int64_t ldb, const int64_t a_sr, const int64_t a_sc,
    const char *bp)
{
    const int64_t m = P->m, j0 = v0 * VL;
    const int64_t pb = P->p - j0 < nb * VL ? P->p - j0 : nb * VL;   /* columns here */
    VEC_T acc[SMALL_ROWS][SMALL_BLOCK];
    FBMM_UNROLL
    for (int r = 0; r < R; r++) {
        FBMM_UNROLL
        for (int v = 0; v < nb; v++) acc[r][v] = (VEC_T){0};
    }
    const char *bk = bp + v0 * (int64_t)sizeof(VEC_T);
    /* Four steps of k a pass where it was measured (AVX-512): the loop's
     * index and pointer arithmetic is a third of a step's instructions, and
     * a 32^3 float32 product has only 32 steps. Xeon (family 6 model 167),
     * 1 thread, two builds alternated 8 times in fresh processes, median
     * ratio: float32 1024x32^3 1.07, 1024x24^3 1.05, 2048x16^3 1.03,
     * 1024x32x32x8 1.13; float16 1.01-1.10; float64 and int32 0.97-1.06
     * (within the machine's noise). */
#if FBMM_VBYTES == 64
    FBMM_UNROLL4
#endif
    for (int64_t k = 0; k < m; k++, bk += ldb) {
        VEC_T bv[SMALL_BLOCK];
        FBMM_UNROLL
        for (int v = 0; v < nb; v++) memcpy(&bv[v], bk + v * (int64_t)sizeof(VEC_T), sizeof bv[v]);
        FBMM_UNROLL
        for (int r = 0; r < R; r++) {
            ACC_T aik = LOAD_A(A + (i0 + r) * a_sr + k * a_sc);
            FBMM_UNROLL
            for (int v = 0; v < nb; v++) acc[r][v] += aik * bv[v];
        }
    }
    const int c_rows = OUT_SAME && P->c.sc == (int64_t)sizeof(OUT_T);
    const int epi = P->ep.scaled || P->ep.has_bias;
    const ACC_T al = FBMM_ALPHA(&P->ep), be = FBMM_BETA(&P->ep);
    FBMM_UNROLL
    for (int r = 0; r < R; r++) {
        const int64_t i = i0 + r;
        char *crow = C + i * P->c.sr + j0 * P->c.sc;
        /* x: 128 bytes at least, as GCC cannot see that pb <= nb * VL and
         * warns that fbmm_copy_short's longer moves could read past it. */
        ACC_T x[SMALL_BLOCK * VL > 128 / sizeof(ACC_T) ? SMALL_BLOCK * VL : 128 / sizeof(ACC_T)]
            __attribute__((aligned(FBMM_VBYTES)));
        if (c_rows && !epi) {
            /* The trap: a row of C copied out of a stack buffer its vectors
             * were just stored to reads across two of those stores (store
             * forwarding fails, ~15 cycles a load): 8x8x8 float64 ran at 0.6x
             * so. Whole vectors go straight to C, a partial one alone through
             * x. acc's address must not escape (it would keep acc in memory
             * through the k loop): copies by value. */
            int64_t v = 0;
            for (; v < nb && (v + 1) * VL <= pb; v++) {
                VEC_T t = acc[r][v];
                memcpy(crow + v * (int64_t)sizeof(VEC_T), &t, sizeof(VEC_T));
            }
            if (v < nb && v * VL < pb) {
                *(VEC_T *)x = acc[r][v];
                fbmm_copy_short(crow + v * (int64_t)sizeof(VEC_T), x,
                                (size_t)(pb - v * VL) * sizeof(ACC_T));
            }
            continue;
        }
        FBMM_UNROLL
        for (int v = 0; v < nb; v++)
            *(VEC_T *)(x + v * VL) = acc[r][v];
        if (epi) {
            const char *drow = D + i * P->ep.d_sr + j0 * P->ep.d_sc;
            for (int64_t j = 0; j < pb; j++) {
                if (P->ep.scaled) x[j] = (ACC_T)(al * x[j]);
                if (P->ep.has_bias)
                    x[j] = (ACC_T)(x[j] + be * LOAD_OUT(drow + j * P->ep.d_sc));
            }
        }
        if (c_rows) {
            fbmm_copy_short(crow, x, (size_t)pb * sizeof(ACC_T));
        } else if (P->c.sc == (int64_t)sizeof(OUT_T)) {
            NARROW_OUT(crow, x, pb);        /* the vectorised rounding of a row */
        } else {
            for (int64_t j = 0; j < pb; j++) STORE_OUT(crow + j * P->c.sc, x[j]);
        }
    }
}
#pragma GCC diagnostic pop

/* The next matrix's operands, fetched while this one computes: after rows
 * [i, i + R) of C, the same rows of the next A (pfa) and B's rows in the
 * same proportion (pfb), each row's lines once (either may be NULL: rows not
 * contiguous). Spread over the product like this, since a burst of prefetches
 * stalls the loads behind it on Intel CPUs (the packed nest's A prefetch,
 * block_sizes.h). The trap it answers: each matrix's first touch comes from
 * L3 (a batch of 32^3 float32 runs 13% faster when it fits in L2). Xeon
 * (family 6 model 167), 1 thread, one process, without / with alternated 7
 * times, median GFLOP/s: 1024x32^3 float32 101 -> 111-114, float64
 * 2048x16^3 33.3 -> 37.1; float32 16^3 and 24^3 within 2%, float64 24^3
 * and 32^3 (not prefetched: K_(small)) alike (the tiny path, up to 8, has
 * none). Not measured on an AMD CPU. */
static inline __attribute__((always_inline)) void K_(prefetch_next)(
    const fbmm_problem *P, const char *pfa, const char *pfb, int64_t i, const int R)
{
    const int64_t line = 64;
    if (pfa) {
        const int64_t bytes = P->m * (int64_t)sizeof(IN_T);
        for (int r = 0; r < R; r++)
            for (int64_t o = 0; o < bytes; o += line)
                __builtin_prefetch(pfa + (i + r) * P->a.sr + o, 0, 3);
    }
    if (pfb) {
        const int64_t bytes = P->p * (int64_t)sizeof(IN_T);
        for (int64_t k = i * P->m / P->n; k < (i + R) * P->m / P->n; k++)
            for (int64_t o = 0; o < bytes; o += line)
                __builtin_prefetch(pfb + k * P->b.sr + o, 0, 3);
    }
}

/* One column block (nb vectors from vector v0) of a small matrix, down its
 * rows: SMALL_ROWS at a time, then 2 and 1 for the rest; the next matrix's
 * operands prefetched along the way (pfa, pfb: K_(prefetch_next)). */
static inline __attribute__((always_inline)) void K_(small_block)(
    const int nb, const fbmm_problem *P, const char *A, char *C, const char *D,
    int64_t v0, const int64_t ldb, const int64_t a_sr, const int64_t a_sc, const char *bp,
    const char *pfa, const char *pfb)
{
    int64_t i = 0;
    for (; i + SMALL_ROWS <= P->n; i += SMALL_ROWS) {
        K_(small_rows)(SMALL_ROWS, nb, P, A, C, D, i, v0, ldb, a_sr, a_sc, bp);
        K_(prefetch_next)(P, pfa, pfb, i, SMALL_ROWS);
    }
    if (i + 2 <= P->n) {
        K_(small_rows)(2, nb, P, A, C, D, i, v0, ldb, a_sr, a_sc, bp);
        K_(prefetch_next)(P, pfa, pfb, i, 2);
        i += 2;
    }
    if (i < P->n) {
        K_(small_rows)(1, nb, P, A, C, D, i, v0, ldb, a_sr, a_sc, bp);
        K_(prefetch_next)(P, pfa, pfb, i, 1);
    }
}

/* Whole small matrices (n, m, p <= FBMM_SMALL_MAX): B is read in place when
 * its rows are whole, aligned vectors of the accumulator's bits, copied a
 * vector at a time when they are whole but unaligned, else widened into a
 * zero-padded m x (nv vectors) block on the stack (its rows contiguous), and
 * A, when its elements are not the accumulator's own bits (float16,
 * bfloat16, small integers), into an n x m block beside it (aw); A of the
 * accumulator's type is read in place. Then C is computed in column blocks of
 * SMALL_BLOCK vectors (and one of fewer for the rest), each down its rows
 * (small_block); no panels, no tiles, no scratch. The trap the widened A
 * avoids: converting A's elements one by one inside the product (a scalar
 * vcvtph2ps, or a sign extension, then a broadcast per multiply-add) ran
 * 32^3 float16 at a third of float32's speed (Xeon, 2026-12-05); widening a
 * row at a time is vector work (fbmm_widen_E) and leaves the product
 * float32's broadcast-from-memory multiply-adds. */
static inline __attribute__((always_inline)) void K_(small_matrix)(
    const fbmm_problem *P, const char *A, const char *B, char *C, const char *D,
    const int64_t nv, const int64_t a_sc, VEC_T *bp, ACC_T *aw, const char *pfa, const char *pfb)
{
    const int64_t n = P->n, m = P->m, p = P->p;
    int64_t a_sr = P->a.sr;
    if (nv < 1 || nv > SMALL_NVMAX) __builtin_unreachable();
    /* B's rows, ldb bytes apart. The trap: the byte-count copy of a row
     * (fbmm_copy_row's run-time branches) cost 16x16x16 float32 a fifth of
     * its time (Zen 3, 1 thread: 2048x16^3 52 -> 67 GFLOP/s without it).
     * Whole rows off a vector boundary (NumPy aligns data to 16 bytes only,
     * and a large array's data often lies 16 bytes past one) are read in
     * place with vectors of up to 32 bytes: half their loads cross a cache
     * line, and that still beats copying B first. Zen 3, 1 thread, B 16
     * bytes off, in place against copied (median ratio of 30 alternations in
     * one process): float32 2048x16^3 1.13, 1024x32^3 1.05, float64 16^3
     * 1.18, 32^3 0.95-1.0, int32 32^3 1.05. A 64-byte vector off its
     * boundary crosses a line at every load: copied (AVX-512). */
    const int b_whole = SAME_REPR && P->b.sc == (int64_t)sizeof(IN_T) && p == nv * VL;
    int64_t ldb;
    const char *bsrc = FBMM_NAME(small_b_rows)(B, P->b.sr, m, nv, b_whole, FBMM_VBYTES <= 32,
                                               bp, &ldb);
    const int b_padded = !bsrc;
    if (b_padded) bsrc = (const char *)bp;
    for (int64_t k = 0; b_padded && k < m; k++) {
        ACC_T *row = (ACC_T *)(bp + k * nv);
        const char *src = B + k * P->b.sr;
        bp[k * nv + nv - 1] = (VEC_T){0};       /* the padding of the last vector */
        if (SAME_REPR && P->b.sc == (int64_t)sizeof(IN_T)) {
            fbmm_copy_row(row, src, (size_t)p * sizeof(ACC_T));
        } else if (P->b.sc == (int64_t)sizeof(IN_T)) {
            WIDEN_IN(row, src, p);
        } else {
            for (int64_t j = 0; j < p; j++) row[j] = LOAD_IN(src + j * P->b.sc);
        }
    }
    if (!SAME_REPR) {
        for (int64_t i = 0; i < n; i++) {
            const char *src = A + i * P->a.sr;
            if (P->a.sc == (int64_t)sizeof(IN_T))
                WIDEN_IN(aw + i * m, src, m);
            else
                for (int64_t k = 0; k < m; k++) aw[i * m + k] = LOAD_IN(src + k * P->a.sc);
        }
        A = (const char *)aw;
        a_sr = m * (int64_t)sizeof(ACC_T);
    }
    int64_t v0 = 0;
    for (; v0 + SMALL_BLOCK <= nv; v0 += SMALL_BLOCK)
        K_(small_block)(SMALL_BLOCK, P, A, C, D, v0, ldb, a_sr, a_sc, bsrc, v0 ? 0 : pfa,
                        v0 ? 0 : pfb);
#if SMALL_BLOCK > 2
#error "small_matrix's remainder handles SMALL_BLOCK <= 2"
#endif
    if (v0 < nv)
        K_(small_block)(1, P, A, C, D, v0, ldb, a_sr, a_sc, bsrc, v0 ? 0 : pfa, v0 ? 0 : pfb);
}

/* Tiny matrices: m = M <= 8 and p = PC compile-time constants, rows of B
 * and C of one vector of W = 16, 32, FBMM_VBYTES or 2 * FBMM_VBYTES bytes
 * (whole: 4x4 float32, 2x2, 4x4 and 8x8 float64, 8x8 float32 on AVX2...; or
 * narrower, of 2 to 8 elements: 2 and 3 float32 in 16 bytes, 5-7 in 32, 3
 * float64 in 32, 5-7 in 64; the 2x2 and 3x3 transforms), operands and result
 * of the accumulator's bits, unit columns, no epilogue. B's M rows are
 * loaded once into registers (two vectors a row for M = 8 are more than
 * AVX2's 16: the compiler keeps some on the stack, still a constant-bound
 * loop), and each row of C is M broadcast multiply-adds and one store. The
 * traps: the general small path's per-matrix work (B copied into a block,
 * run-time loop bounds, a partial vector stored through a buffer) is ~75
 * cycles where a 4x4x4 product is 16 multiply-adds; and a row narrower than
 * its vector, copied into a zeroed register by memcpy, went
 * through the stack and waited on a failed store forwarding (4x4x4 float32
 * in a 32-byte type ran at half this speed; 3x3x3 gained nothing), so each
 * width has its own vector type and a narrower row is loaded whole where B's
 * rows are contiguous (a row's tail is the next row's head; the last row is
 * read ending where it ends, then shifted), else assembled from its elements
 * in registers; a narrower row of C is stored in pieces of 32, 16, 8 and 4
 * bytes (3x3x3 float32 1.6-2x on a Zen 3, against the copy through a
 * stack buffer). Rows of 5-7 elements took the general small path, at 2.6-3.6x
 * (float32, int32) and 1.6-1.9x (float64) this form's time on a Zen 3. */
#define K_TINY_FN(NAME, W)                                                              \
static inline __attribute__((always_inline)) void K_(NAME##_matrix)(                    \
    const int M, const int PC, int64_t n, int64_t a_sr, int64_t b_sr, int64_t c_sr,     \
    const char *A, const char *B, char *C)                                              \
{                                                                                       \
    typedef ACC_T vec_t __attribute__((vector_size(W)));                                \
    typedef int32_t words4 __attribute__((vector_size(16)));                            \
    typedef int64_t dwords2 __attribute__((vector_size(16)));                           \
    const int64_t rb = PC * (int64_t)sizeof(ACC_T);                                     \
    /* narrow rows of a contiguous B: a whole vector from each row but the last          \
     * (its tail is the next row's head), the last one ending where it ends */           \
    const int b_packed = rb < W && M >= 2 && b_sr == rb;                                \
    vec_t bv[8];                                                                        \
    FBMM_UNROLL                                                                         \
    for (int k = 0; k < M; k++) {                                                       \
        const char *row = B + k * b_sr;                                                 \
        if (PC * sizeof(ACC_T) == W || (b_packed && k < M - 1)) {                       \
            memcpy(&bv[k], row, W);                                                     \
        } else if (b_packed) {                                                          \
            vec_t t;                                                                    \
            const int skip = (int)((W - rb) / (int64_t)sizeof(ACC_T));                  \
            memcpy(&t, row + rb - W, W);                                                \
            FBMM_UNROLL                                                                 \
            for (int l = 0; l < W / (int)sizeof(ACC_T); l++)                            \
                bv[k][l] = t[l + skip < W / (int)sizeof(ACC_T) ? l + skip               \
                                                              : W / (int)sizeof(ACC_T) - 1]; \
        } else if (sizeof(ACC_T) == 4 && W == 16) {    /* 2 or 3 lanes of 16 bytes */   \
            int32_t w0, w1, w2 = 0;                                                     \
            memcpy(&w0, row, 4);                                                        \
            memcpy(&w1, row + 4, 4);                                                    \
            if (PC > 2) memcpy(&w2, row + 8, 4);                                        \
            words4 t = {w0, w1, w2, 0};                                                 \
            memcpy(&bv[k], &t, 16);                                                     \
        } else {                            /* element by element, the rest zero */     \
            vec_t t = (vec_t){0};                                                       \
            FBMM_UNROLL                                                                 \
            for (int j = 0; j < PC; j++) {                                              \
                ACC_T x;                                                                \
                memcpy(&x, row + j * (int64_t)sizeof(ACC_T), sizeof(ACC_T));            \
                t[j] = x;                                                               \
            }                                                                           \
            bv[k] = t;                                                                  \
        }                                                                               \
    }                                                                                   \
    for (int64_t i = 0; i < n; i++) {                                                   \
        const char *ai = A + i * a_sr;                                                  \
        vec_t acc = (vec_t){0};                                                         \
        FBMM_UNROLL                                                                     \
        for (int k = 0; k < M; k++)                                                     \
            acc += LOAD_IN(ai + k * (int64_t)sizeof(ACC_T)) * bv[k];                    \
        char *ci = C + i * c_sr;                                                        \
        if (rb == W) {                                                                  \
            memcpy(ci, &acc, W);                                                        \
        } else {    /* narrow: 32, 16, 8, 4 bytes in turn; no stack round trip */       \
            typedef int64_t q_lanes __attribute__((vector_size(W)));                    \
            typedef int32_t d_lanes __attribute__((vector_size(W)));                    \
            int64_t off = 0;                                                            \
            if (W > 32 && rb >= 32) {                                                   \
                memcpy(ci, &acc, 32);                                                   \
                off = 32;                                                               \
            }                                                                           \
            if (rb - off >= 16) {                                                       \
                dwords2 x = {((q_lanes)acc)[off / 8], ((q_lanes)acc)[off / 8 + 1]};     \
                memcpy(ci + off, &x, 16);                                               \
                off += 16;                                                              \
            }                                                                           \
            if (rb - off >= 8) {                                                        \
                int64_t x = ((q_lanes)acc)[off / 8];                                    \
                memcpy(ci + off, &x, 8);                                                \
                off += 8;                                                               \
            }                                                                           \
            if (rb - off >= 4) {                                                        \
                int32_t x = ((d_lanes)acc)[off / 4];                                    \
                memcpy(ci + off, &x, 4);                                                \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
static inline __attribute__((always_inline)) void K_(NAME)(                             \
    const int M, const int PC, const fbmm_problem *P, int64_t b0, int64_t b1)           \
{                                                                                       \
    const int64_t n = P->n, a_sr = P->a.sr, b_sr = P->b.sr, c_sr = P->c.sr;             \
    if (!P->bdims) {                                                                    \
        const int64_t a_sb = P->a.sb, b_sb = P->b.sb, c_sb = P->c.sb;                   \
        for (int64_t bi = b0; bi < b1; bi++)  /* no pointer past the last entry */      \
            K_(NAME##_matrix)(M, PC, n, a_sr, b_sr, c_sr, P->a.data + bi * a_sb,        \
                              P->b.data + bi * b_sb, P->c.data + bi * c_sb);            \
        return;                                                                         \
    }                                                                                   \
    fbmm_batch_cursor cur;                                                              \
    fbmm_cursor_init(&cur, P, b0, b1);                                                  \
    const char *A, *B, *D;                                                              \
    char *C;                                                                            \
    while (fbmm_cursor_step(&cur, P, &A, &B, &C, &D))                                   \
        K_(NAME##_matrix)(M, PC, n, a_sr, b_sr, c_sr, A, B, C);                         \
}
K_TINY_FN(tiny16, 16)
K_TINY_FN(tiny32, 32)
K_TINY_FN(tinyv, FBMM_VBYTES)
K_TINY_FN(tinyv2, 2 * FBMM_VBYTES)
#undef K_TINY_FN

/* Tiny matrices whose rows of C are narrower than a vector: m = p = PC
 * columns of RB = 8 or 16 bytes (4x4 float32 and int32, 2x2 float32 and
 * float64), rows contiguous. A vector holds R = VL / PC consecutive rows of
 * C, lane l at row l / PC and column l % PC, so
 *     C[r, j] = sum_k A[r, k] B[k, j]
 * is PC multiply-adds of whole vectors: A's R rows (one load) with each row's
 * element k repeated over that row's PC lanes (one vpermilps, inside 128-bit
 * lanes), times B's row k repeated R times (one broadcast load, repeat_row).
 * The per-row form (tiny16) does R times as many multiply-adds, each 1 / R of
 * a vector wide.
 * rowpack_rows: n a multiple of R, n / R vectors of C a matrix. */
static inline __attribute__((always_inline)) void K_(rowpack_rows)(
    const int RB, int64_t vectors, const char *A, const char *B, int64_t b_sr, char *C)
{
    typedef FBMM_NAME(lane_index_vec) LANES_T;
    const int PC = RB / (int)sizeof(ACC_T);
    VEC_T bk[8];
    FBMM_UNROLL
    for (int k = 0; k < PC; k++) FBMM_NAME(repeat_row)(&bk[k], B + k * b_sr, RB);
    for (int64_t v = 0; v < vectors; v++) {
        VEC_T av, acc = (VEC_T){0};
        memcpy(&av, A + v * FBMM_VBYTES, FBMM_VBYTES);
        FBMM_UNROLL
        for (int k = 0; k < PC; k++) {
            LANES_T ak;
            FBMM_UNROLL
            for (int l = 0; l < VL; l++) ak[l] = l / PC * PC + k;
            acc += __builtin_shuffle(av, ak) * bk[k];
        }
        memcpy(C + v * FBMM_VBYTES, &acc, FBMM_VBYTES);
    }
}

/* rowpack_group: n = m = p with R a multiple of n (2x2 on AVX2), so a vector
 * holds Q = R / n whole matrices, consecutive in memory; B's row k of each
 * comes from one load of Q matrices of B, shuffled like A (lane l takes
 * element k * PC + l % PC of its own matrix, l / (n PC)). */
static inline __attribute__((always_inline)) void K_(rowpack_group)(
    const int RB, const char *A, const char *B, char *C)
{
    typedef FBMM_NAME(lane_index_vec) LANES_T;
    const int PC = RB / (int)sizeof(ACC_T), G = PC * PC;
    VEC_T av, bv, acc = (VEC_T){0};
    memcpy(&av, A, FBMM_VBYTES);
    memcpy(&bv, B, FBMM_VBYTES);
    FBMM_UNROLL
    for (int k = 0; k < PC; k++) {
        LANES_T ak, bk;
        FBMM_UNROLL
        for (int l = 0; l < VL; l++) {
            ak[l] = l / PC * PC + k;
            bk[l] = l / G * G + k * PC + l % PC;
        }
        acc += __builtin_shuffle(av, ak) * __builtin_shuffle(bv, bk);
    }
    memcpy(C, &acc, FBMM_VBYTES);
}

/* Entries [b0, b1) by rowpack_rows or (q > 1: q matrices a vector, plain
 * contiguous batch) rowpack_group; returns the first entry it left (the
 * group's remainder, for the per-row form). */
static inline __attribute__((always_inline)) int64_t K_(rowpack)(
    const int RB, const fbmm_problem *P, int64_t q, int64_t b0, int64_t b1)
{
    if (q > 1) {
        const int64_t a_sb = P->a.sb, b_sb = P->b.sb, c_sb = P->c.sb;
        int64_t bi = b0;
        for (; bi + q <= b1; bi += q)
            K_(rowpack_group)(RB, P->a.data + bi * a_sb, P->b.data + bi * b_sb,
                              P->c.data + bi * c_sb);
        return bi;
    }
    const int64_t vectors = P->n * RB / FBMM_VBYTES, b_sr = P->b.sr;
    if (!P->bdims) {
        const int64_t a_sb = P->a.sb, b_sb = P->b.sb, c_sb = P->c.sb;
        /* one or two vectors a matrix (n = R, 2R: 4x4, 2x2) as constants: a
         * run-time trip count of one cost 2x2 float64 a third of its speed */
#define K_ROWPACK_LOOP(VECTORS)                                                         \
        for (int64_t bi = b0; bi < b1; bi++)                                            \
            K_(rowpack_rows)(RB, VECTORS, P->a.data + bi * a_sb, P->b.data + bi * b_sb, \
                             b_sr, P->c.data + bi * c_sb);
        if (vectors == 1) { K_ROWPACK_LOOP(1) }
        else if (vectors == 2) { K_ROWPACK_LOOP(2) }
        else { K_ROWPACK_LOOP(vectors) }
#undef K_ROWPACK_LOOP
        return b1;
    }
    fbmm_batch_cursor cur;
    fbmm_cursor_init(&cur, P, b0, b1);
    const char *A, *B, *D;
    char *C;
    while (fbmm_cursor_step(&cur, P, &A, &B, &C, &D))
        K_(rowpack_rows)(RB, vectors, A, B, b_sr, C);
    return b1;
}

/* The tiny instances' dispatch: 1 when it ran the entries [b0, b1), 0 when
 * the problem is not one of theirs. A function of its own (not inlined into
 * small), so that its many instances leave the general path's code as it was. */
static __attribute__((noinline)) int K_(tiny)(const fbmm_problem *P, int64_t b0, int64_t b1)
{
    const int64_t esz = (int64_t)sizeof(ACC_T), w = P->p * esz;
    /* The vector a row of B and C goes in: its own width, or a narrower row
     * of 2 to 8 elements (2, 3 float32 in 16 bytes; 5-7 in 32; 3 float64 in
     * 32, 5-7 in 64) in the next width up. */
    const int64_t W = w <= 16 ? 16 : w <= 32 ? 32 : w <= FBMM_VBYTES ? FBMM_VBYTES
                    : w <= 2 * FBMM_VBYTES ? 2 * FBMM_VBYTES : 0;
    if (!SAME_REPR || !OUT_SAME || P->ep.scaled || P->ep.has_bias || P->a.sc != esz ||
        P->b.sc != esz || P->c.sc != esz || P->m < 1 || P->m > 8 || P->p < 2 || !W ||
        (w < W && P->p > 8))
        return 0;
    /* rows narrower than a vector, m = p: R rows (or R / n matrices) a vector */
    const int64_t R = FBMM_VBYTES / (w ? w : 1);
    if (P->m == P->p && (w == 8 || w == 16) && w < FBMM_VBYTES &&
        P->a.sr == w && P->c.sr == w) {
        int64_t q = 0;
        if (P->n % R == 0)
            q = 1;
        else if (R % P->n == 0 && P->n == P->m && !P->bdims && P->b.sr == w &&
                 P->a.sb == P->n * w && P->b.sb == P->n * w && P->c.sb == P->n * w)
            q = R / P->n;
        if (q) {
            const int64_t done = w == 8 ? K_(rowpack)(8, P, q, b0, b1)
                                        : K_(rowpack)(16, P, q, b0, b1);
            if (done == b1) return 1;
            b0 = done;      /* fewer than q matrices left: the per-row form */
        }
    }
/* (WB, PC) instances that exist: a row of PC elements goes in WB bytes and
 * in no narrower width of the list (a compile-time test: no instance of a
 * row wider than its vector; the ternary keeps the dead branches' PC valid).
 * Every shape rowpack takes has an instance here, so a group's remainder
 * never falls back to the general path after part of the batch ran. */
#define K_TINY_FITS(WB, PC_) (PC_ * esz <= WB && (WB == 16 || 2 * PC_ * esz > WB))
#define K_TINY_PC(M_, FN, WB, PC_)                                                      \
        if (K_TINY_FITS(WB, PC_) && W == WB && P->p == PC_) {                           \
            K_(FN)(M_, K_TINY_FITS(WB, PC_) ? PC_ : 1, P, b0, b1);                      \
            return 1;                                                                   \
        }
#define K_TINY_W(M_, FN, WB)                                                            \
        K_TINY_PC(M_, FN, WB, 2) K_TINY_PC(M_, FN, WB, 3) K_TINY_PC(M_, FN, WB, 4)      \
        K_TINY_PC(M_, FN, WB, 5) K_TINY_PC(M_, FN, WB, 6) K_TINY_PC(M_, FN, WB, 7)      \
        K_TINY_PC(M_, FN, WB, 8) K_TINY_PC(M_, FN, WB, (WB / (int)sizeof(ACC_T)))
#define K_TINY_M(M_)                                                                    \
    case M_:                                                                            \
        K_TINY_W(M_, tiny16, 16)                                                        \
        K_TINY_W(M_, tiny32, 32)                                                        \
        if (FBMM_VBYTES > 32) { K_TINY_W(M_, tinyv, FBMM_VBYTES) }                      \
        if (2 * FBMM_VBYTES > 32) { K_TINY_W(M_, tinyv2, 2 * FBMM_VBYTES) }             \
        return 0;
    switch (P->m) {
    K_TINY_M(1) K_TINY_M(2) K_TINY_M(3) K_TINY_M(4)
    K_TINY_M(5) K_TINY_M(6) K_TINY_M(7) K_TINY_M(8)
    default: return 0;
    }
#undef K_TINY_FITS
#undef K_TINY_PC
#undef K_TINY_W
#undef K_TINY_M
}

/* Batch entries [b0, b1). The trap: a product of 8x8x8 is ~130 cycles, and
 * a run-time nv (index arithmetic, B's row stride, the column-block loop)
 * cost 8x8x8 float32 a third of its speed; so nv = 1 and 2 (every p up to 2
 * vectors) are constants, each with A's rows in place (or widened) as a
 * constant stride too. */
static void K_(small)(const fbmm_problem *P, int64_t b0, int64_t b1)
{
    if (K_(tiny)(P, b0, b1)) return;
    VEC_T bp[FBMM_SMALL_MAX * SMALL_NVMAX];
    /* A widened (kinds whose elements are not the accumulator's bits) */
    ACC_T aw[SAME_REPR ? 1 : FBMM_SMALL_MAX * FBMM_SMALL_MAX]
        __attribute__((aligned(FBMM_VBYTES)));
    const int64_t nv = (P->p + VL - 1) / VL;
    const int a_unit = !SAME_REPR || P->a.sc == (int64_t)sizeof(IN_T);
    const int64_t a_sc = SAME_REPR ? P->a.sc : (int64_t)sizeof(ACC_T);
    fbmm_batch_cursor cur;
    fbmm_cursor_init(&cur, P, b0, b1);
    const char *A, *B, *D;
    char *C;
    /* one matrix behind the cursor, so that the next one's operands are
     * known (prefetched during the product: K_(prefetch_next)), from 16^3
     * multiply-adds a matrix (below, the prefetches cost more than they
     * save: 4096x12^3 float32 0.90x) and up to 8 KiB of A and B (above,
     * they crowd the loads: 1024x32^3 float64 0.97-0.98x) */
    const int pf = P->n * P->m * P->p >= 16 * 16 * 16 &&
                   (P->n + P->p) * P->m * (int64_t)sizeof(IN_T) <= 8192;
    const int a_rows = P->a.sc == (int64_t)sizeof(IN_T), b_rows = P->b.sc == (int64_t)sizeof(IN_T);
    const char *pA = 0, *pB = 0, *pD = 0;
    char *pC = 0;
    int have = 0;
    for (;;) {
        const int more = fbmm_cursor_step(&cur, P, &A, &B, &C, &D);
        if (have) {
            const char *pfa = pf && more && a_rows ? A : 0;
            const char *pfb = pf && more && b_rows ? B : 0;
            if (nv == 1 && a_unit)
                K_(small_matrix)(P, pA, pB, pC, pD, 1, sizeof(ACC_T), bp, aw, pfa, pfb);
            else if (nv == 1)
                K_(small_matrix)(P, pA, pB, pC, pD, 1, a_sc, bp, aw, pfa, pfb);
            else if (nv == 2 && SMALL_NVMAX >= 2 && a_unit)
                K_(small_matrix)(P, pA, pB, pC, pD, 2, sizeof(ACC_T), bp, aw, pfa, pfb);
            else if (a_unit)
                K_(small_matrix)(P, pA, pB, pC, pD, nv, sizeof(ACC_T), bp, aw, pfa, pfb);
            else
                K_(small_matrix)(P, pA, pB, pC, pD, nv, a_sc, bp, aw, pfa, pfb);
        }
        if (!more) break;
        pA = A; pB = B; pC = C; pD = D;
        have = 1;
    }
}

/* A block of A with contiguous rows, widened row-major (gemm_tile reads it as
 * an A in place): vector conversions, where pack_a converts element by
 * element down the columns. */
static void K_(widen_a)(ACC_T *dst, const char *a, int64_t sr, int64_t mc, int64_t k0,
                        int64_t kc)
{
    for (int64_t i = 0; i < mc; i++)
        WIDEN_IN(dst + i * kc, a + i * sr + k0 * (int64_t)sizeof(IN_T), kc);
}

static const FBMM_NAME(dtype_ops) K_(ops) = {
    K_(pack_a), K_(pack_b), K_(store), /* cplx */ 0, SAME_REPR, OUT_SAME, STAGED,
    SAME_REPR ? 0 : K_(widen_a), sizeof(IN_T), K_(narrow_rows),
};

#if FBMM_PAIRDOT && FBMM_CAT(FBMM_PAIR_DOT, IN)
#include "gemm_pairdot.h"
#include "gemm_amx.h"
#include "gemm_bf16_nest.h"
#define K_PAIRDOT 1
#else
#define K_PAIRDOT 0
#endif

#if FBMM_INT_PAIRS && FBMM_CAT(FBMM_VNNI, IN)
#include "gemm_vnni.h"
#define K_VNNI 1
#else
#define K_VNNI 0
#endif

/* The packed nest on one tile; bfloat16, in the engines that have them: the
 * AMX or pair-dot nest where the CPU runs it (engine_template.h's
 * fbmm_bf16_nest); int8, uint8 and int16: the VNNI nest where the CPU runs
 * it (fbmm_int_nest). */
static void K_(tile)(const fbmm_problem *P, const char *a, const char *b, char *c,
                     const char *d, int64_t rows, int64_t cols, void *scratch,
                     const char *next_a, const char *next_b, const char *next_c)
{
#if K_VNNI
    if (fbmm_int_nest() == FBMM_INT_VNNI) {
        fbmm_vnni_gemm((int)sizeof(IN_T), (IN_T)-1 < 0, &K_(ops), a, P->a.sr, P->a.sc, b,
                       P->b.sr, P->b.sc, c, P->c.sr, P->c.sc, &P->ep, d, rows, P->m, cols,
                       scratch);
        return;
    }
#endif
#if K_PAIRDOT
    switch (fbmm_bf16_nest()) {
    case FBMM_BF16_AMX:
        fbmm_amx_gemm(&K_(ops), a, P->a.sr, P->a.sc, b, P->b.sr, P->b.sc, c, P->c.sr, P->c.sc,
                      &P->ep, d, rows, P->m, cols, scratch);
        return;
    case FBMM_BF16_PAIRDOT:
        fbmm_pairdot_gemm(&K_(ops), a, P->a.sr, P->a.sc, b, P->b.sr, P->b.sc, c, P->c.sr,
                          P->c.sc, &P->ep, d, rows, P->m, cols, scratch);
        return;
    default:
        break;
    }
#endif
    FBMM_NAME(gemm_tile)(&K_(ops), a, P->a.sr, P->a.sc, b, P->b.sr, P->b.sc, c, P->c.sr, P->c.sc,
                    &P->ep, d, rows, P->m, cols, scratch, next_a, next_b, next_c);
}

/* The largest scratch of the nests the tile may run: widening, and for
 * bfloat16 the pair-dot and AMX ones (the AMX depth is padded to whole
 * tiles); the VNNI nest's is at most half the widening one's (gemm_vnni.h). */
static size_t K_(scratch)(int64_t rows, int64_t K, int64_t cols)
{
    size_t n = FBMM_NAME(scratch_bytes)(&K_(ops), rows, K, cols);
#if K_PAIRDOT
    for (int nest = FBMM_BF16_PAIRDOT; nest <= FBMM_BF16_AMX; nest++) {
        const size_t x = fbmm_bf16_nest_scratch(nest, rows, K, cols, STAGED);
        if (x > n) n = x;
    }
#endif
    return n;
}

/* The few-rows (stream) and few-columns (gemv) paths read the operands as
 * accumulator values in place: only for kinds whose operands and result are
 * the accumulator's own bits (the table entry is NULL otherwise, and the
 * planner never picks those paths). */
static void K_(stream)(const fbmm_problem *P, const char *a, const char *b, char *c,
                       const char *d, int64_t rows, int64_t cols)
{
    FBMM_NAME(gemm_stream)(&K_(ops), a, P->a.sr, P->a.sc, b, P->b.sr, c, P->c.sr, P->c.sc,
                      &P->ep, d, rows, P->m, cols);
}

static void K_(gemv)(const fbmm_problem *P, const char *a, const char *b, char *c,
                     const char *d, int64_t rows, int64_t cols, void *scratch)
{
    FBMM_NAME(gemm_gemv)(&K_(ops), a, P->a.sr, b, P->b.sr, P->b.sc, c, P->c.sr, P->c.sc,
                    &P->ep, d, rows, P->m, cols, scratch);
}

static const fbmm_kind K_(kind) = {
    .small = K_(small),
    .small_max = FBMM_SMALL_MAX,
    .tile = K_(tile),
    .stream = SAME_REPR && OUT_SAME ? K_(stream) : 0,
    .gemv = SAME_REPR && OUT_SAME ? K_(gemv) : 0,
    .scratch = K_(scratch),
    .itemsize = sizeof(IN_T),
    .mr = MR,
    .nr = NR,
    .mc = MC,
    .staged = STAGED,
    .vnni = K_VNNI,
};

#undef K_
#undef K_PAIRDOT
#undef K_VNNI
#undef IN_T
#undef OUT_T
#undef LOAD_IN
#undef WIDEN_IN
#undef LOAD_OUT
#undef STORE_OUT
#undef NARROW_OUT
#undef LOAD_A
#undef SAME_REPR
#undef OUT_SAME
#undef KIND
#undef IN
#undef OUT
#undef STAGED
