/*
 * gemm_vnni.h -- the packed nest of the integer dtypes whose values fit in
 * 16 bits (int8, uint8, int16) on CPUs with AVX512-VNNI or AVX-VNNI: vpdpwssd adds two
 * products of signed 16-bit words to each 32-bit lane in one instruction,
 * where the widening nest (gemm_template.h) multiplies 32-bit lanes with
 * vpmulld (two micro-ops) and adds them with another instruction: four
 * times the multiply-adds per instruction.
 *
 * Included by kind_real.h, inside the u32 family, for the dtypes whose
 * format elements.h marks FBMM_VNNI_<format>, in the engines where
 * engine_template.h sets FBMM_INT_PAIRS:
 *   - avx512 (AVX-512F code): the instruction itself, in a function compiled
 *     for target("avx512vnni") and run only where the CPU reports avx512vnni
 *     (engine_template.h's fbmm_int_nest());
 *   - avx2: AVX-VNNI's 256-bit form (target("avxvnni")), run only where the
 *     CPU reports AVX-VNNI (client CPUs without AVX-512, Alder Lake on);
 *   - avx512_emulated (64-byte vectors on AVX2, for the tests): a model of
 *     the instruction in vector arithmetic, so that the suite runs this nest
 *     -- packing, edges, odd depths -- on any x86-64 CPU.
 * One copy per engine (include guard); the three kinds inline the packing
 * and the nest with their element size and signedness as constants.
 *
 * Layout: gemm_pairdot.h's pairs of the depth, with 16-bit integers in place
 * of bfloat16. A packed sliver of A holds MR rows of kc2 words, word kk of
 * row r a16(A[r, 2kk]) | a16(A[r, 2kk+1]) << 16 (AMX's layout: a row of A
 * packs as one run); a sliver of B, for pair kk, NR words of B[2kk, j],
 * B[2kk+1, j] alike; a16 is the element as a 16-bit two's
 * complement word (int8 sign-extended, uint8 zero-extended: 0..255 is a
 * non-negative int16). An odd depth pads its last pair's upper halves with 0;
 * rows past mr and columns past nr are zero words. One step:
 *     acc[r][v] = vpdpwssd(acc[r][v], Bpairs[kk][v], broadcast(Apair[kk][r]))
 *     = acc + A[r, 2kk] * B[2kk, j] + A[r, 2kk+1] * B[2kk+1, j]   per lane j.
 *
 * Exactness: the products of 16-bit values are exact in 32 bits, and the
 * instruction's sums wrap mod 2^32 (vpdpwssd, not the saturating vpdpwssds):
 * the u32 family's own arithmetic. Its sums are those of the widening nest in
 * another order, equal mod 2^32, so every result (int8 and uint8 wrap mod
 * 2^8, int16 mod 2^16, as torch's do) is bit for bit the same. No guard of
 * the kind bfloat16 needs: integers have no subnormals.
 *
 * The nest is gemm_tile's Goto loops (NC columns of B, KC deep panels, MC
 * rows of A, MR x NR register blocks), both operands always packed; the
 * first panel writes C, later ones add to it (C's type wraps like the sums).
 * Its scratch, kc2 * nc + mc * kc2 words, is at most half the widening
 * nest's (kc * nc + mc * kc words), which kind_real.h's K_(scratch) sizes.
 */
#ifndef FASTBMM_GEMM_VNNI_H
#define FASTBMM_GEMM_VNNI_H

#include "gemm_pair_kernel.h"

/* One element as the low 16 bits of a pair word (ESIZE bytes, SGN: signed). */
static inline __attribute__((always_inline)) uint32_t fbmm_vnni_half(const int ESIZE,
                                                                     const int SGN,
                                                                     const char *p)
{
    if (ESIZE == 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    if (SGN) return (uint16_t)(int16_t)(int8_t)*p;
    return (uint8_t)*p;
}

/* kc contiguous elements at row as kc2 = ceil(kc / 2) pair words at d (an
 * odd kc's last upper half 0). Little-endian, a run of pair words is the run
 * of 16-bit values itself: int16 is a copy, and 8-bit elements widen 32 at a
 * time (vpmovsxbw / vpmovzxbw), the rest through a zero-padded copy. The
 * trap: GCC's own vectorisation of the word loop wants 64 pairs, so every
 * row shorter than 128 took the scalar loop (half of 1024x48^3 int8). */
typedef int8_t fbmm_vnni_s8x32 __attribute__((vector_size(32)));
typedef uint8_t fbmm_vnni_u8x32 __attribute__((vector_size(32)));
typedef int16_t fbmm_vnni_s16x32 __attribute__((vector_size(64)));

/* 32 bytes at x widened to 32 16-bit values at o (64 bytes). */
static inline __attribute__((always_inline)) void fbmm_vnni_widen32(const int SGN, char *o,
                                                                   const char *x)
{
    fbmm_vnni_s16x32 y;
    if (SGN) {
        fbmm_vnni_s8x32 s;
        memcpy(&s, x, 32);
        y = __builtin_convertvector(s, fbmm_vnni_s16x32);
    } else {
        fbmm_vnni_u8x32 u;
        memcpy(&u, x, 32);
        y = __builtin_convertvector(u, fbmm_vnni_s16x32);
    }
    memcpy(o, &y, 64);
}

static inline __attribute__((always_inline)) void fbmm_vnni_widen_row(
    const int ESIZE, const int SGN, uint32_t *d, const char *row, int64_t kc)
{
    char *o = (char *)d;
    if (kc & 1) d[kc / 2] = 0;
    if (ESIZE == 2) {
        memcpy(o, row, (size_t)kc * 2);
        return;
    }
    int64_t j = 0;
    for (; j <= kc - 32; j += 32) fbmm_vnni_widen32(SGN, o + 2 * j, row + j);
    if (j < kc) {
        const int64_t rest = kc - j;
        if (rest < 1 || rest >= 32) __builtin_unreachable();   /* (for GCC's bounds) */
        char x[32], tail[64];
        memset(x, 0, 32);
        fbmm_copy_short(x, row + j, (size_t)rest);
        fbmm_vnni_widen32(SGN, tail, x);
        fbmm_copy_short(o + 2 * j, tail, (size_t)(2 * rest));
    }
}

/* Rows [0, mc) x depth [k0, k0 + kc) of A as pair words, in MR-row slivers
 * whose rows are runs of kc2 pairs (pair kk of row r at r * kc2 + kk; an odd
 * depth's last upper half and rows past mc zero). A row with unit columns is
 * one run of words (fbmm_vnni_widen_row): element by element down the
 * sliver's columns (the bfloat16 pair-dot layout) it took as long as the
 * products at 64x128x128x64. */
static inline __attribute__((always_inline)) void fbmm_vnni_pack_a(
    const int ESIZE, const int SGN, uint32_t *dst, const char *a, int64_t sr, int64_t sc,
    int64_t mc, int64_t k0, int64_t kc)
{
    const int64_t kc2 = (kc + 1) / 2, full = kc / 2;
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {
        const int64_t mr = mc - i0 < MR ? mc - i0 : MR;
        for (int64_t r = 0; r < mr; r++) {
            const char *row = a + (i0 + r) * sr + k0 * sc;
            uint32_t *d = dst + r * kc2;
            if (sc == ESIZE) {
                fbmm_vnni_widen_row(ESIZE, SGN, d, row, kc);
                continue;
            }
            for (int64_t kk = 0; kk < full; kk++)
                d[kk] = fbmm_vnni_half(ESIZE, SGN, row + 2 * kk * sc) |
                        fbmm_vnni_half(ESIZE, SGN, row + (2 * kk + 1) * sc) << 16;
            if (kc2 > full) d[full] = fbmm_vnni_half(ESIZE, SGN, row + 2 * full * sc);
        }
        if (mr < MR) memset(dst + mr * kc2, 0, (size_t)((MR - mr) * kc2) * sizeof *dst);
        dst += kc2 * MR;
    }
}

/* NR elements of B's rows r0 and r1 (r1 NULL: past an odd depth, upper
 * halves 0), unit columns, as one sliver row of NR pair words at d: a loop
 * of constant length that GCC turns into widening moves and interleaves. */
static inline __attribute__((always_inline)) void fbmm_vnni_interleave(
    const int ESIZE, const int SGN, uint32_t *d, const char *r0, const char *r1)
{
    if (r1) {
        for (int j = 0; j < NR; j++)
            d[j] = fbmm_vnni_half(ESIZE, SGN, r0 + j * ESIZE) |
                   fbmm_vnni_half(ESIZE, SGN, r1 + j * ESIZE) << 16;
    } else {
        for (int j = 0; j < NR; j++) d[j] = fbmm_vnni_half(ESIZE, SGN, r0 + j * ESIZE);
    }
}

/* Depth [k0, k0 + kc) x columns [j0, j0 + nc) of B as pair words, in
 * NR-column slivers of kc2 pairs. Rows with unit columns are read across
 * (whole slivers from the rows in place, the partial last one through
 * zero-padded copies); any other layout element by element. */
static inline __attribute__((always_inline)) void fbmm_vnni_pack_b(
    const int ESIZE, const int SGN, uint32_t *dst, const char *b, int64_t sr, int64_t sc,
    int64_t k0, int64_t kc, int64_t j0, int64_t nc)
{
    const int64_t kc2 = (kc + 1) / 2;
    if (sc == ESIZE) {
        const int64_t full = nc / NR * NR;
        for (int64_t kk = 0; kk < kc2; kk++) {
            const char *r0 = b + (k0 + 2 * kk) * sr + j0 * sc;
            const char *r1 = 2 * kk + 1 < kc ? r0 + sr : 0;
            for (int64_t jb = 0; jb < full; jb += NR)
                fbmm_vnni_interleave(ESIZE, SGN, dst + jb * kc2 + kk * NR, r0 + jb * ESIZE,
                                     r1 ? r1 + jb * ESIZE : 0);
        }
        if (nc > full) {
            const int64_t nr = nc - full;
            if (nr < 1 || nr >= NR) __builtin_unreachable();   /* (for GCC's bounds) */
            uint32_t *d = dst + full * kc2;
            char t0[ESIZE * NR], t1[ESIZE * NR];
            memset(t0, 0, sizeof t0);
            memset(t1, 0, sizeof t1);
            for (int64_t kk = 0; kk < kc2; kk++) {
                const char *r0 = b + (k0 + 2 * kk) * sr + (j0 + full) * sc;
                const int pair = 2 * kk + 1 < kc;
                fbmm_copy_short(t0, r0, (size_t)(ESIZE * nr));
                if (pair) fbmm_copy_short(t1, r0 + sr, (size_t)(ESIZE * nr));
                fbmm_vnni_interleave(ESIZE, SGN, d + kk * NR, t0, pair ? t1 : 0);
            }
        }
        return;
    }
    for (int64_t jb = 0; jb < nc; jb += NR) {
        const int64_t nr = nc - jb < NR ? nc - jb : NR;
        const char *base = b + k0 * sr + (j0 + jb) * sc;
        for (int64_t kk = 0; kk < kc2; kk++) {
            const char *r0 = base + 2 * kk * sr, *r1 = r0 + sr;
            const int pair = 2 * kk + 1 < kc;
            uint32_t *d = dst + kk * NR;
            for (int64_t j = 0; j < nr; j++) {
                uint32_t w = fbmm_vnni_half(ESIZE, SGN, r0 + j * sc);
                if (pair) w |= fbmm_vnni_half(ESIZE, SGN, r1 + j * sc) << 16;
                d[j] = w;
            }
            for (int64_t j = nr; j < NR; j++) d[j] = 0;
        }
        dst += kc2 * NR;
    }
}

#if FBMM_PAIRDOT_EMULATED
/* The instruction, modelled: each word's halves sign-extended, two exact
 * products, sums mod 2^32 (unsigned lanes: wrapping is defined). */
typedef int32_t fbmm_vnni_ivec __attribute__((vector_size(FBMM_VBYTES)));

static inline __attribute__((always_inline)) VEC_T fbmm_vnni_step(VEC_T acc, uint32_t a,
                                                                  fbmm_pair_words b)
{
    const uint32_t alo = (uint32_t)(int32_t)(int16_t)(a & 0xffffu);
    const uint32_t ahi = (uint32_t)(int32_t)(int16_t)(a >> 16);
    const VEC_T blo = (VEC_T)(((fbmm_vnni_ivec)(b << 16)) >> 16);
    const VEC_T bhi = (VEC_T)((fbmm_vnni_ivec)b >> 16);
    return acc + alo * blo + ahi * bhi;
}
#  define FBMM_VNNI_TARGET
#elif FBMM_INT_PAIRS_AVX2
#  include <immintrin.h>
#  define FBMM_VNNI_TARGET __attribute__((target("avxvnni")))
static inline __attribute__((always_inline)) FBMM_VNNI_TARGET VEC_T fbmm_vnni_step(
    VEC_T acc, uint32_t a, fbmm_pair_words b)
{
    /* AVX-VNNI: the same instruction, VEX-encoded, on 256-bit vectors */
    return (VEC_T)_mm256_dpwssd_avx_epi32((__m256i)acc, (__m256i)b, _mm256_set1_epi32((int)a));
}
#else
#  include <immintrin.h>
#  define FBMM_VNNI_TARGET __attribute__((target("avx512vnni")))
static inline __attribute__((always_inline)) FBMM_VNNI_TARGET VEC_T fbmm_vnni_step(
    VEC_T acc, uint32_t a, fbmm_pair_words b)
{
    /* the broadcast pair: the compiler folds it into {1to16} */
    return (VEC_T)_mm512_dpwssd_epi32((__m512i)acc, (__m512i)b, _mm512_set1_epi32((int)a));
}
#endif

/* the tile, and the tile of one vector for an edge sliver of <= VL columns
 * (1024x48^3 int16: a quarter of the products were dead columns) */
FBMM_PAIR_MICROKERNEL(fbmm_vnni_kernel, FBMM_VNNI_TARGET, fbmm_vnni_step, FBMM_PAIR_A_ROWS, FBMM_NV)
FBMM_PAIR_MICROKERNEL(fbmm_vnni_kernel_1v, FBMM_VNNI_TARGET, fbmm_vnni_step, FBMM_PAIR_A_ROWS, 1)

/*
 * C[0:rows, 0:cols] = A[0:rows, 0:K] @ B[0:K, 0:cols] for one tile of one
 * matrix of ESIZE-byte integers (SGN: signed), summed by fbmm_vnni_kernel.
 * Scratch: B's panel (kc2 * nc words), then A's block (MC rows, rounded up
 * to MR, of kc2 words).
 */
static inline __attribute__((always_inline)) void fbmm_vnni_gemm(
    const int ESIZE, const int SGN, const FBMM_NAME(dtype_ops) *kd,
    const char *a, int64_t a_sr, int64_t a_sc, const char *b, int64_t b_sr, int64_t b_sc,
    char *c, int64_t c_sr, int64_t c_sc, const fbmm_epilogue *ep, const char *d,
    int64_t rows, int64_t K, int64_t cols, void *scratch)
{
    const int64_t kc_max = K < KC ? K : KC, kc2_max = (kc_max + 1) / 2;
    int64_t nc_max = cols < NC ? cols : NC;
    nc_max = (nc_max + NR - 1) / NR * NR;
    uint32_t *bp = (uint32_t *)scratch;
    uint32_t *ap = bp + kc2_max * nc_max;
    const int c_direct = kd->out_same && c_sc == (int64_t)sizeof(ACC_T) &&
                         (!ep->has_bias || ep->d_sc == c_sc);

    for (int64_t jc = 0; jc < cols; jc += NC) {
        const int64_t nc = cols - jc < NC ? cols - jc : NC;
        for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = K - pc < KC ? K - pc : KC, kc2 = (kc + 1) / 2;
            const int first = pc == 0;
            fbmm_vnni_pack_b(ESIZE, SGN, bp, b, b_sr, b_sc, pc, kc, jc, nc);
            for (int64_t ic = 0; ic < rows; ic += MC) {
                const int64_t mc = rows - ic < MC ? rows - ic : MC;
                fbmm_vnni_pack_a(ESIZE, SGN, ap, a + ic * a_sr, a_sr, a_sc, mc, pc, kc);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t nr = nc - jr < NR ? nc - jr : NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t mr = mc - ir < MR ? mc - ir : MR;
                        const char *td = d ? d + (ic + ir) * ep->d_sr + (jc + jr) * ep->d_sc : 0;
                        char *t = c + (ic + ir) * c_sr + (jc + jr) * c_sc;
                        if (nr <= VL)
                            fbmm_vnni_kernel_1v(kc2, ap + ir * kc2, kc2, bp + jr * kc2, t, c_sr,
                                                c_sc, mr == MR && nr == VL && c_direct, first, mr,
                                                nr, kd->store, ep, td);
                        else
                            fbmm_vnni_kernel(kc2, ap + ir * kc2, kc2, bp + jr * kc2, t, c_sr,
                                             c_sc, mr == MR && nr == NR && c_direct, first, mr,
                                             nr, kd->store, ep, td);
                    }
                }
            }
        }
    }
}

#endif
