/*
 * gemm_pairdot.h -- bfloat16's packed nest on CPUs with AVX512-BF16: two
 * bfloat16 products summed into each float32 lane by one instruction
 * (vdpbf16ps), where the widening nest (gemm_template.h) does one.
 *
 * Included by kind_real.h, inside the f32 family, for the dtypes whose
 * operands are bfloat16 (elements.h's FBMM_PAIR_DOT_<format>), in the
 * engines where engine_template.h sets FBMM_PAIRDOT:
 *   - avx512 (AVX-512F code): the instruction itself, in functions compiled
 *     for target("avx512bf16") and called only where the CPU reports
 *     avx512bf16 (engine_template.h's fbmm_bf16_nest());
 *   - avx512_emulated (64-byte vectors on AVX2, for the tests): a software
 *     model of the instruction, DAZ and FTZ included, so that the suite runs
 *     this nest -- packing, edges, odd depths, the guard below -- on any
 *     x86-64 CPU.
 * The include guard makes one copy per engine; both bfloat16 kinds use it.
 * The loop nest around the microkernel is gemm_bf16_nest.h, shared with the
 * AMX kernel (gemm_amx.h).
 *
 * Layout (Intel's "VNNI" pairs): the depth goes two at a time. A packed
 * sliver of A holds, for pair kk, MR 32-bit words A[r, 2kk] | A[r, 2kk+1] << 16;
 * a packed sliver of B, for pair kk, NR words B[2kk, j] | B[2kk+1, j] << 16.
 * An odd depth pads its last pair's upper halves with +0; rows past mr and
 * columns past nr are zero words. One step of the microkernel is
 *     acc[r][v] = vdpbf16ps(acc[r][v], Bpairs[kk][v], broadcast(Apair[kk][r]))
 * which is, per float32 lane j, two rounded FMAs, the upper pair first (the
 * SDM's pseudocode):
 *     acc += A[r, 2kk+1] * B[2kk+1, j];   acc += A[r, 2kk] * B[2kk, j]
 * The float32 sums are those of the widening nest in another order; the
 * staged bfloat16 result is still rounded once, after the whole depth.
 *
 * The trap: the instruction reads subnormal inputs as zero and flushes
 * subnormal results to zero (DAZ, FTZ; MXCSR is not consulted), and fastbmm
 * promises IEEE float32 sums. The guard: a bfloat16 of biased exponent e is a
 * multiple of 2^(e - 134), so every product of an A element with exponent
 * >= ea and a B element with exponent >= eb is a multiple of
 * 2^(ea + eb - 268); so is every float32 sum of such products (rounding a
 * multiple of a power of two to float32 leaves a multiple of it), and a
 * nonzero one is at least that large. When the smallest nonzero magnitudes
 * of an A block and a B panel (tracked while packing them) give
 * ea + eb >= 142, no product or partial sum is below 2^-126, float32's
 * smallest normal, and without a subnormal input DAZ and FTZ never act: the
 * instruction's sums are the IEEE ones. Any other block runs the exact pair
 * step, the same two FMAs in the same order on operands widened by shifts.
 */
#ifndef FASTBMM_GEMM_PAIRDOT_H
#define FASTBMM_GEMM_PAIRDOT_H

#if FBMM_PAIRDOT_EMULATED
/* GCC warns that a 64-byte vector returned without AVX-512 has another ABI:
 * the steps below are inlined, never called across objects. */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#include "gemm_pair_kernel.h"

/* The smallest nonzero magnitude seen, minus 1 (so that +-0 wraps to 0xffff,
 * the largest, and drops out of the minimum), updated with both halves of w. */
static inline uint16_t fbmm_pairdot_min(uint16_t m, uint32_t w)
{
    uint16_t lo = (uint16_t)((w & 0x7fffu) - 1u), hi = (uint16_t)(((w >> 16) & 0x7fffu) - 1u);
    m = lo < m ? lo : m;
    return hi < m ? hi : m;
}

/* 1 if the instruction's DAZ and FTZ cannot act on a block whose A and B
 * hold these fbmm_pairdot_min values (the guard in the header comment). */
static inline int fbmm_pairdot_exact_in_hw(uint16_t ma, uint16_t mb)
{
    if (ma == 0xffff || mb == 0xffff) return 1;       /* an all-zero operand */
    const unsigned a = (unsigned)ma + 1u, b = (unsigned)mb + 1u;
    if (a < 0x80u || b < 0x80u) return 0;              /* a subnormal: DAZ drops it */
    return (a >> 7) + (b >> 7) >= 142u;
}

static inline uint32_t fbmm_pairdot_ld(const char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* fbmm_pairdot_min over n consecutive bfloat16 at x: a loop the compiler
 * turns into vector minima (the packing's contiguous rows). */
static inline uint16_t fbmm_pairdot_min_run(uint16_t m, const char *x, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        uint16_t v;
        memcpy(&v, x + 2 * j, sizeof v);
        v = (uint16_t)((v & 0x7fffu) - 1u);
        m = v < m ? v : m;
    }
    return m;
}

/* Rows [0, mc) x depth [k0, k0 + kc) of A as pairs, in slivers of `rows`
 * rows x kc2p pairs: pair kk of row r at kk * kk_step + r * r_step in its
 * sliver (the pair-dot layout: rows MR, steps (MR, 1); the AMX one: rows 32,
 * steps (1, kc2p)), zero past the edges; returns the block's
 * fbmm_pairdot_min. */
static uint16_t fbmm_pairdot_pack_a(uint32_t *dst, const char *a, int64_t sr, int64_t sc,
                                    int64_t mc, int64_t k0, int64_t kc, int64_t rows,
                                    int64_t kc2p, int64_t kk_step, int64_t r_step)
{
    const int64_t kc2 = (kc + 1) / 2;
    uint16_t m = 0xffff;
    for (int64_t i0 = 0; i0 < mc; i0 += rows) {
        const int64_t mr = mc - i0 < rows ? mc - i0 : rows;
        memset(dst, 0, (size_t)(rows * kc2p) * sizeof *dst);
        for (int64_t r = 0; r < mr; r++) {
            const char *row = a + (i0 + r) * sr + k0 * sc;
            uint32_t *d = dst + r * r_step;
            if (kk_step == 1 && sc == 2) {
                /* a row of pairs is the row itself (an odd depth's last
                 * pair gets the zero upper half of the memset) */
                memcpy(d, row, (size_t)kc * 2);
                m = fbmm_pairdot_min_run(m, row, kc);
                continue;
            }
            for (int64_t kk = 0; kk < kc2; kk++) {
                uint32_t w;
                if (2 * kk + 1 == kc) w = fbmm_pairdot_ld(row + 2 * kk * sc);   /* odd depth */
                else if (sc == 2) memcpy(&w, row + 4 * kk, sizeof w);  /* a pair is one word */
                else w = fbmm_pairdot_ld(row + 2 * kk * sc) |
                         fbmm_pairdot_ld(row + (2 * kk + 1) * sc) << 16;
                d[kk * kk_step] = w;
                m = fbmm_pairdot_min(m, w);
            }
        }
        dst += rows * kc2p;
    }
    return m;
}

/* NR bfloat16 of B's rows 2kk and 2kk + 1 (x1 zero past an odd depth) as
 * one sliver row of pairs at d, and their magnitudes into the running
 * vector minimum `mins` (fbmm_pairdot_min's measure, lane by lane). */
typedef uint16_t fbmm_pairdot_halves __attribute__((vector_size(2 * NR)));

static inline __attribute__((always_inline)) fbmm_pairdot_halves fbmm_pairdot_interleave(
    uint32_t *d, const char *r0, const char *r1, fbmm_pairdot_halves mins)
{
    fbmm_pairdot_halves x0, x1 = {0}, lo, hi, less;
    memcpy(&x0, r0, sizeof x0);
    if (r1) memcpy(&x1, r1, sizeof x1);
    for (int j = 0; j < NR; j++) d[j] = (uint32_t)x0[j] | (uint32_t)x1[j] << 16;
    lo = (x0 & 0x7fff) - 1;
    hi = (x1 & 0x7fff) - 1;
    less = lo < mins;
    mins = (lo & less) | (mins & ~less);
    less = hi < mins;
    return (hi & less) | (mins & ~less);
}

/* Depth [k0, k0 + kc) x columns [j0, j0 + nc) of B, in NR-column slivers of
 * kc2p pairs (zero pairs past the depth: the AMX nest pads to whole tiles);
 * returns the panel's fbmm_pairdot_min. The trap: walking a sliver down
 * its depth reads each row of B NR elements at a time, a row (2 KiB for
 * 1024 columns) apart, and that walk cost more than the tile products; rows
 * with unit columns are read across, every whole sliver in one pass. */
static uint16_t fbmm_pairdot_pack_b(uint32_t *dst, const char *b, int64_t sr, int64_t sc,
                                    int64_t k0, int64_t kc, int64_t j0, int64_t nc, int64_t kc2p)
{
    const int64_t kc2 = (kc + 1) / 2;
    uint16_t m = 0xffff;
    if (sc == 2) {
        fbmm_pairdot_halves mins = (fbmm_pairdot_halves){0} - 1;
        const int64_t full = nc / NR * NR;
        for (int64_t kk = 0; kk < kc2; kk++) {
            const char *r0 = b + (k0 + 2 * kk) * sr + j0 * sc;
            const char *r1 = 2 * kk + 1 < kc ? r0 + sr : 0;  /* else the upper halves are +0 */
            for (int64_t jb = 0; jb < full; jb += NR)
                mins = fbmm_pairdot_interleave(dst + jb * kc2p + kk * NR, r0 + 2 * jb,
                                               r1 ? r1 + 2 * jb : 0, mins);
        }
        if (nc > full) {
            /* the partial last sliver: its rows through zero-padded copies
             * (a zero's measure is 0xffff, so the padding leaves the minimum
             * alone); element by element it took a fifth of 1024x48^3 */
            const int64_t nr = nc - full;
            if (nr < 1 || nr >= NR) __builtin_unreachable();   /* (for GCC's bounds) */
            uint32_t *d = dst + full * kc2p;
            char t0[2 * NR], t1[2 * NR];
            memset(t0, 0, sizeof t0);
            memset(t1, 0, sizeof t1);
            for (int64_t kk = 0; kk < kc2; kk++) {
                const char *r0 = b + (k0 + 2 * kk) * sr + (j0 + full) * sc;
                const int pair = 2 * kk + 1 < kc;
                fbmm_copy_short(t0, r0, (size_t)(2 * nr));
                if (pair) fbmm_copy_short(t1, r0 + sr, (size_t)(2 * nr));
                mins = fbmm_pairdot_interleave(d + kk * NR, t0, pair ? t1 : 0, mins);
            }
        }
        for (int64_t jb = 0; jb < nc; jb += NR)
            memset(dst + jb * kc2p + kc2 * NR, 0, (size_t)((kc2p - kc2) * NR) * sizeof *dst);
        for (int j = 0; j < NR; j++) m = mins[j] < m ? mins[j] : m;
        return m;
    }
    for (int64_t jb = 0; jb < nc; jb += NR) {
        const int64_t nr = nc - jb < NR ? nc - jb : NR;
        const char *base = b + k0 * sr + (j0 + jb) * sc;
        for (int64_t kk = 0; kk < kc2; kk++) {
            const char *r0 = base + 2 * kk * sr, *r1 = r0 + sr;
            const int pair = 2 * kk + 1 < kc;           /* else the upper halves are +0 */
            uint32_t *d = dst + kk * NR;
            for (int64_t j = 0; j < nr; j++) {
                uint32_t w = fbmm_pairdot_ld(r0 + j * sc);
                if (pair) w |= fbmm_pairdot_ld(r1 + j * sc) << 16;
                d[j] = w;
                m = fbmm_pairdot_min(m, w);
            }
            for (int64_t j = nr; j < NR; j++) d[j] = 0;
        }
        memset(dst + kc2 * NR, 0, (size_t)((kc2p - kc2) * NR) * sizeof *dst);
        dst += kc2p * NR;
    }
    return m;
}

/* The exact pair step: the instruction's two FMAs, in its order, on IEEE
 * float32 (bfloat16 -> float32 is a 16-bit shift). */
static inline __attribute__((always_inline)) VEC_T fbmm_pairdot_step_exact(
    VEC_T acc, uint32_t a, fbmm_pair_words b)
{
    fbmm_pair_words blo = b << 16, bhi = b & 0xffff0000u;
    uint32_t alo_bits = a << 16, ahi_bits = a & 0xffff0000u;
    float alo, ahi;
    VEC_T bl, bh;
    memcpy(&alo, &alo_bits, 4);
    memcpy(&ahi, &ahi_bits, 4);
    memcpy(&bl, &blo, sizeof bl);
    memcpy(&bh, &bhi, sizeof bh);
    acc += ahi * bh;
    acc += alo * bl;
    return acc;
}

#if FBMM_PAIRDOT_EMULATED
/* The instructions, modelled: each FMA reads subnormal inputs as zero and
 * flushes a subnormal result to zero (sign kept), as the SDM describes for
 * vdpbf16ps and tdpbf16ps alike; vdpbf16ps adds a pair's upper product
 * first. (tdpbf16ps's order is gemm_amx.h's.) */
static inline __attribute__((always_inline)) fbmm_pair_words fbmm_pairdot_flush(
    fbmm_pair_words x)
{
    fbmm_pair_words normal = (fbmm_pair_words)((x & 0x7f800000u) != 0);
    return x & (normal | 0x80000000u);
}

static inline __attribute__((always_inline)) VEC_T fbmm_pairdot_fma_ftz(VEC_T acc, VEC_T x,
                                                                        VEC_T y)
{
    fbmm_pair_words t;
    acc += x * y;
    memcpy(&t, &acc, sizeof t);
    t = fbmm_pairdot_flush(t);
    memcpy(&acc, &t, sizeof t);
    return acc;
}

/* A pair of A (one word, broadcast) and a vector of pairs of B as float32
 * with DAZ: x = {B lower, B upper, A lower, A upper}. */
static inline __attribute__((always_inline)) void fbmm_bf16_model_widen(
    uint32_t a, fbmm_pair_words b, VEC_T x[4])
{
    fbmm_pair_words aw = (fbmm_pair_words){0} + a;     /* the broadcast */
    fbmm_pair_words w[4] = {fbmm_pairdot_flush(b << 16), fbmm_pairdot_flush(b & 0xffff0000u),
                               fbmm_pairdot_flush(aw << 16), fbmm_pairdot_flush(aw & 0xffff0000u)};
    memcpy(x, w, sizeof w);
}

/* vdpbf16ps: the upper product, then the lower one (the SDM; so on a Xeon too). */
static inline __attribute__((always_inline)) VEC_T fbmm_bf16_model_step(
    VEC_T acc, uint32_t a, fbmm_pair_words b)
{
    VEC_T x[4];
    fbmm_bf16_model_widen(a, b, x);
    acc = fbmm_pairdot_fma_ftz(acc, x[3], x[1]);
    return fbmm_pairdot_fma_ftz(acc, x[2], x[0]);
}

static inline __attribute__((always_inline)) VEC_T fbmm_pairdot_step_fast(
    VEC_T acc, uint32_t a, fbmm_pair_words b)
{
    return fbmm_bf16_model_step(acc, a, b);
}
#  define FBMM_PAIRDOT_TARGET
#else
#  include <immintrin.h>
#  define FBMM_PAIRDOT_TARGET __attribute__((target("avx512bf16")))
static inline __attribute__((always_inline)) FBMM_PAIRDOT_TARGET VEC_T fbmm_pairdot_step_fast(
    VEC_T acc, uint32_t a, fbmm_pair_words b)
{
    /* src2 is the broadcast pair: the compiler folds it into {1to16} */
    return (VEC_T)_mm512_dpbf16_ps((__m512)acc, (__m512bh)b,
                                   (__m512bh)_mm512_set1_epi32((int)a));
}
#endif

/* The microkernel's two instances (gemm_pair_kernel.h) differ only in the
 * step: the instruction (where the guard passed) and the exact one. */
FBMM_PAIR_MICROKERNEL(fbmm_pairdot_kernel_fast, FBMM_PAIRDOT_TARGET, fbmm_pairdot_step_fast,
                      FBMM_PAIR_A_SLIVER, FBMM_NV)
FBMM_PAIR_MICROKERNEL(fbmm_pairdot_kernel_exact, , fbmm_pairdot_step_exact, FBMM_PAIR_A_SLIVER,
                      FBMM_NV)

#endif
