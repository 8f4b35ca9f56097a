/*
 * gemm_pair_kernel.h -- the microkernel of the pair-layout nests, as a macro
 * that each nest instantiates with its step: bfloat16's vdpbf16ps
 * (gemm_pairdot.h, in the f32 family) and the 16-bit integers' vpdpwssd
 * (gemm_vnni.h, in the u32 family). A step adds two products of one 32-bit
 * word of A (a pair of the depth, broadcast) and a vector of pair words of B
 * to each accumulator lane.
 *
 * The packed slivers: A, for pair kk, MR words at ap[kk * MR]; B, for pair
 * kk, NR words at bp[kk * NR]. The tile goes out through the family's
 * tile_out (gemm_template.h), so ACC_T, VEC_T and FBMM_NAME are those of the
 * family the macro is expanded in.
 */
#ifndef FASTBMM_GEMM_PAIR_KERNEL_H
#define FASTBMM_GEMM_PAIR_KERNEL_H

/* a vector of pair words (B's sliver rows) */
typedef uint32_t fbmm_pair_words __attribute__((vector_size(FBMM_VBYTES)));

/* NAME: an MR x NR tile from a packed A sliver (kc2 pairs of MR rows) and a
 * packed B sliver (kc2 pairs of NR words), out through tile_out (direct: a
 * full tile of an accumulator-typed destination with unit columns); STEP(acc,
 * A's word, B's fbmm_pair_words): one pair of the depth; A_AT(kk, r): the
 * index of row r's pair kk in the A sliver, FBMM_PAIR_A_SLIVER (MR words per
 * pair) or FBMM_PAIR_A_ROWS (rows of a_rs pair words: a row of A packs as one
 * run, which the integers' widening does with vector moves); NVEC: the vectors
 * of B's sliver row the tile computes, FBMM_NV or 1 (an edge sliver of one
 * vector or less: the second would be dead columns). */
#define FBMM_PAIR_A_SLIVER(kk, r) ((kk) * MR + (r))
#define FBMM_PAIR_A_ROWS(kk, r) ((r) * a_rs + (kk))
#define FBMM_PAIR_MICROKERNEL(NAME, ATTR, STEP, A_AT, NVEC)                                  \
    static ATTR void NAME(int64_t kc2, const uint32_t *restrict ap, int64_t a_rs,            \
                          const uint32_t *restrict bp, char *c, int64_t c_sr, int64_t c_sc,  \
                          int direct, int first, int64_t mr, int64_t nr,                     \
                          void (*store)(char *, int64_t, int64_t, const ACC_T *, int64_t,    \
                                        int64_t, int, const fbmm_epilogue *, const char *),  \
                          const fbmm_epilogue *ep, const char *d)                            \
    {                                                                                        \
        VEC_T acc[MR][FBMM_NV];                                                              \
        (void)a_rs;                                                                          \
        FBMM_UNROLL                                                                          \
        for (int r = 0; r < MR; r++) {                                                       \
            FBMM_UNROLL                                                                      \
            for (int v = 0; v < NVEC; v++) acc[r][v] = (VEC_T){0};                           \
        }                                                                                    \
        FBMM_UNROLL4                                                                         \
        for (int64_t kk = 0; kk < kc2; kk++) {                                               \
            fbmm_pair_words bv[FBMM_NV];                                                     \
            FBMM_UNROLL                                                                      \
            for (int v = 0; v < NVEC; v++)                                                   \
                memcpy(&bv[v], bp + kk * NR + v * VL, sizeof bv[v]);                         \
            FBMM_UNROLL                                                                      \
            for (int r = 0; r < MR; r++) {                                                   \
                const uint32_t ar = ap[A_AT(kk, r)];                                         \
                FBMM_UNROLL                                                                  \
                for (int v = 0; v < NVEC; v++) acc[r][v] = STEP(acc[r][v], ar, bv[v]);       \
            }                                                                                \
        }                                                                                    \
        FBMM_NAME(tile_out)(MR, NVEC, acc, c, c_sr, c_sc, direct, first, mr, nr, store,     \
                            ep, d);                                                          \
    }

#endif
