/*
 * gemm_bf16_nest.h -- the Goto loop nest of bfloat16's two instruction
 * kernels: AVX512-BF16 pair dot products (gemm_pairdot.h) and AMX-BF16
 * tiles (gemm_amx.h). Included by kind_real.h after both, for the same
 * dtypes and engines; one copy per engine (include guard).
 *
 * The nest is gemm_tile's (gemm_template.h): NC columns of B, KC deep
 * panels (the first writes C, later ones add to it), blocks of A, register
 * blocks. What differs from it: both operands are always packed, into pairs
 * of the depth (a pair of A is one broadcast word or one tile element: no
 * in-place reading); the magnitude guard (gemm_pairdot.h) picks, per A block
 * and B panel, the instruction or the exact step; staged kinds (bfloat16
 * results) sum in gemm_tile's float32 staging rows and round once at the end.
 *
 *                   register block   A block   depth in pairs        A sliver layout
 *   pair dot        MR x NR (12x32)  MC rows   kc2 = ceil(kc / 2)    kk * MR + r
 *   AMX tiles       32 x 32          128 rows  kc2 padded to 16s     r * kc2p + kk
 */
#ifndef FASTBMM_GEMM_BF16_NEST_H
#define FASTBMM_GEMM_BF16_NEST_H

/* Scratch of the nest `nest` for tiles of at most rows x cols, K deep: B's
 * panel, A's block, and (staged kinds) the float32 staging rows, in that
 * order (AMX: rows padded to whole 32-row blocks, which its tiles store).
 * The pair-dot nest's fits in gemm_tile's scratch (half its words). */
static size_t fbmm_bf16_nest_scratch(int nest, int64_t rows, int64_t K, int64_t cols, int staged)
{
    const int amx = nest == FBMM_BF16_AMX;
    const int64_t kc = K < KC ? K : KC;
    const int64_t kc2 = amx ? fbmm_amx_pairs(kc) : (kc + 1) / 2;
    int64_t nc = cols < NC ? cols : NC;
    nc = (nc + NR - 1) / NR * NR;
    int64_t mc = rows < MC ? rows : MC;              /* staged tiles: rows <= MC */
    const int64_t a_rows = amx ? FBMM_AMX_MC : (mc + MR - 1) / MR * MR;
    if (amx) mc = (mc + FBMM_AMX_MR - 1) / FBMM_AMX_MR * FBMM_AMX_MR;  /* whole tile blocks */
    size_t n = (size_t)(kc2 * nc + a_rows * kc2);
    if (staged) n += (size_t)(mc * nc);
    n *= 4;
    return (n + FBMM_ALIGN - 1) / FBMM_ALIGN * FBMM_ALIGN;
}

/*
 * C[0:rows, 0:cols] = A[0:rows, 0:K] @ B[0:K, 0:cols] for one tile of one
 * matrix of bfloat16 operands, with the nest AMX (1: gemm_amx.h's tiles) or
 * the pair-dot one (0); a constant at both call sites. Scratch:
 * fbmm_bf16_nest_scratch.
 */
static inline __attribute__((always_inline)) void fbmm_bf16_nest_body(
    const int AMX, const FBMM_NAME(dtype_ops) *kd,
    const char *a, int64_t a_sr, int64_t a_sc, const char *b, int64_t b_sr, int64_t b_sc,
    char *c, int64_t c_sr, int64_t c_sc, const fbmm_epilogue *ep, const char *d,
    int64_t rows, int64_t K, int64_t cols, void *scratch)
{
    const int64_t esz = (int64_t)sizeof(float);
    const int64_t blk_rows = AMX ? FBMM_AMX_MR : MR, blk_mc = AMX ? FBMM_AMX_MC : MC;
    const int64_t kc_max = K < KC ? K : KC;
    const int64_t kc2_max = AMX ? fbmm_amx_pairs(kc_max) : (kc_max + 1) / 2;
    int64_t nc_max = cols < NC ? cols : NC;
    nc_max = (nc_max + NR - 1) / NR * NR;
    int64_t mc_max = rows < MC ? rows : MC;
    const int64_t a_rows = AMX ? FBMM_AMX_MC : (mc_max + MR - 1) / MR * MR;
    uint32_t *bp = (uint32_t *)scratch;
    uint32_t *ap = bp + kc2_max * nc_max;
    float *stage = (float *)(ap + a_rows * kc2_max);
    const int c_direct = kd->out_same && !kd->staged && c_sc == esz &&
                         (!ep->has_bias || ep->d_sc == c_sc);
    const fbmm_epilogue *plain = &FBMM_NAME(plain_epilogue);
    const int plain_ep = !ep->scaled && !ep->has_bias;
    float blk[FBMM_AMX_MR * NR] __attribute__((aligned(64)));   /* AMX: the block's sums */

    for (int64_t jc = 0; jc < cols; jc += NC) {
        const int64_t nc = cols - jc < NC ? cols - jc : NC;
        for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = K - pc < KC ? K - pc : KC;
            const int64_t kc2 = AMX ? fbmm_amx_pairs(kc) : (kc + 1) / 2;
            const int first = (pc == 0);
            const uint16_t mb = fbmm_pairdot_pack_b(bp, b, b_sr, b_sc, pc, kc, jc, nc, kc2);
            for (int64_t ic = 0; ic < rows; ic += blk_mc) {
                const int64_t mc = rows - ic < blk_mc ? rows - ic : blk_mc;
                const uint16_t ma = fbmm_pairdot_pack_a(ap, a + ic * a_sr, a_sr, a_sc, mc, pc,
                                                        kc, blk_rows, kc2, AMX ? 1 : MR,
                                                        AMX ? kc2 : 1);
                const int fast = fbmm_pairdot_exact_in_hw(ma, mb);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t nr = nc - jr < NR ? nc - jr : NR;
                    const uint32_t *bsl = bp + jr * kc2;
                    for (int64_t ir = 0; ir < mc; ir += blk_rows) {
                        const int64_t mr = mc - ir < blk_rows ? mc - ir : blk_rows;
                        const uint32_t *asl = ap + ir * kc2;
                        /* where the block goes: the staging rows (plain sums)
                         * or C (the epilogue) */
                        char *t;
                        int64_t t_sr, t_sc;
                        const fbmm_epilogue *e;
                        const char *td;
                        void (*store)(char *, int64_t, int64_t, const float *, int64_t, int64_t,
                                      int, const fbmm_epilogue *, const char *);
                        if (kd->staged) {
                            t = (char *)(stage + (ic + ir) * nc_max + jr);
                            t_sr = nc_max * esz, t_sc = esz;
                            e = plain, td = 0, store = FBMM_NAME(store_native);
                        } else {
                            t = c + (ic + ir) * c_sr + (jc + jr) * c_sc;
                            t_sr = c_sr, t_sc = c_sc;
                            e = ep, store = kd->store;
                            td = d ? d + (ic + ir) * ep->d_sr + (jc + jr) * ep->d_sc : 0;
                        }
                        const int direct = mr == blk_rows && nr == NR && (kd->staged || c_direct);
                        if (AMX) {
                            /* the tiles straight into the staging rows (padded
                             * to whole blocks) or a whole block of plain C;
                             * else through blk and fbmm_amx_out */
                            const int in_place = kd->staged || (direct && plain_ep);
                            char *o = in_place ? t : (char *)blk;
                            const int64_t o_sr = in_place ? t_sr : NR * esz;
                            const int load = in_place && !first;
                            if (fast) fbmm_amx_block_fast(kc2, asl, bsl, o, o_sr, load);
                            else fbmm_amx_block_exact(kc2, asl, bsl, o, o_sr, load);
                            if (!in_place)
                                fbmm_amx_out(blk, t, t_sr, t_sc, direct, first, mr, nr, store, e,
                                             td);
                        } else if (fast) {
                            fbmm_pairdot_kernel_fast(kc2, asl, 0, bsl, t, t_sr, t_sc, direct, first,
                                                     mr, nr, store, e, td);
                        } else {
                            fbmm_pairdot_kernel_exact(kc2, asl, 0, bsl, t, t_sr, t_sc, direct,
                                                      first, mr, nr, store, e, td);
                        }
                    }
                }
            }
        }
        if (kd->staged)
            FBMM_NAME(stage_out)(kd, stage, nc_max, c, c_sr, c_sc, ep, d, rows, jc, nc);
    }
}

static void fbmm_pairdot_gemm(const FBMM_NAME(dtype_ops) *kd,
                              const char *a, int64_t a_sr, int64_t a_sc,
                              const char *b, int64_t b_sr, int64_t b_sc,
                              char *c, int64_t c_sr, int64_t c_sc,
                              const fbmm_epilogue *ep, const char *d,
                              int64_t rows, int64_t K, int64_t cols, void *scratch)
{
    fbmm_bf16_nest_body(0, kd, a, a_sr, a_sc, b, b_sr, b_sc, c, c_sr, c_sc, ep, d, rows, K, cols,
                        scratch);
}

/* The tile configuration is the thread's state: loaded for the call, the
 * thread's previous one (or none) back after it (gemm_amx.h). */
static void fbmm_amx_gemm(const FBMM_NAME(dtype_ops) *kd,
                          const char *a, int64_t a_sr, int64_t a_sc,
                          const char *b, int64_t b_sr, int64_t b_sc,
                          char *c, int64_t c_sr, int64_t c_sc,
                          const fbmm_epilogue *ep, const char *d,
                          int64_t rows, int64_t K, int64_t cols, void *scratch)
{
#if !FBMM_PAIRDOT_EMULATED
    fbmm_amx_config saved;
    fbmm_amx_begin(&saved);
#endif
    fbmm_bf16_nest_body(1, kd, a, a_sr, a_sc, b, b_sr, b_sc, c, c_sr, c_sc, ep, d, rows, K, cols,
                        scratch);
#if !FBMM_PAIRDOT_EMULATED
    fbmm_amx_end(&saved);
#endif
}

#endif
