/*
 * peak.h -- the arithmetic peak of one thread on one ISA variant: a
 * multiply-add loop that touches no memory, for `python -m fastbmm.bench`'s
 * "% of peak" (fastbmm/bench.py times it; fastbmm._bmm.peak_fma runs it).
 *
 * A parameterised include, inside the float families and the 32-bit integer
 * one (family_begin.h: ACC_T, VEC_T, VL, FBMM_NAME): it defines
 * FBMM_NAME(peak), i.e. peak_f32, peak_f64 and peak_u32, compiled with the
 * variant's own flags: the same vector width and the same multiply-add
 * instructions the microkernel gets from `acc += a * b` (an FMA where the
 * flags have one, -ffp-contract being GCC's default in GNU C; a multiply and
 * an add on SSE2; for 32-bit integer lanes, which no x86 ISA fuses, a
 * vpmulld and a vpaddd: int32 products, and on AVX2 the int8/int16 ones
 * widened to 32-bit lanes). Nothing of the engine is used, and nothing here
 * is used by the engine.
 *
 * The loop: PEAK_CHAINS vector accumulators, lane l of chain c starting at
 * c * VL + l, each stepped `iters` times by acc = acc * x + y with x = 0.5
 * and y = 1 in float (the values stay between 2 and their start: no
 * overflow, no subnormals, which would slow some CPUs down), x = 3 and y = 1
 * in the unsigned integer lanes (wrapping modulo 2^32, which is defined and
 * costs nothing). The steps of one chain depend on each other; the chains
 * do not: enough chains keep every pipe busy despite the latency (chains >=
 * latency x pipes: FMA 4 x 2 on Zen 3 and Skylake-X, vpmulld + vpaddd 3 + 1
 * cycles; 12 or 16 leave margin for a 5- or 6-cycle latency).
 *
 * Traps:
 *  - x and y come from volatile objects: constants would let the compiler
 *    rewrite (or, for x = 1 and y = 0, delete) the recurrence.
 *  - The result is returned (a sum of every lane) through a function pointer
 *    the caller cannot see into, so the loop cannot be dropped as dead.
 *  - Chains + 2 (x and y) must fit the vector register file (16 on SSE2 and
 *    AVX2, 32 on AVX-512 and NEON), or the accumulators spill to memory and
 *    the loop measures the stack (the test-only avx512_emulated variant does
 *    spill: it is not a peak).
 *
 * double peak(int64_t iters, int64_t *flops): run the loop (`iters` <= 0: no
 * step), store the operations it did in *flops (2 per lane per step: a
 * multiply and an add; not stored when flops is NULL) and return the sum of
 * every accumulator's lanes, in double (exact for the integer lanes: at most
 * 16 x 16 values below 2^32).
 */
#define PEAK_CHAINS (FBMM_VBYTES >= 64 ? 16 : 12)   /* 64-byte vectors: AVX-512's 32 registers */

static double FBMM_NAME(peak)(int64_t iters, int64_t *flops)
{
    volatile ACC_T x_in = ACC_IS_INT ? (ACC_T)3 : (ACC_T)0.5, y_in = (ACC_T)1;
    const ACC_T xs = x_in, ys = y_in;
    VEC_T x, y, acc[PEAK_CHAINS];
    for (int l = 0; l < VL; l++) { x[l] = xs; y[l] = ys; }
    for (int c = 0; c < PEAK_CHAINS; c++)
        for (int l = 0; l < VL; l++) acc[c][l] = (ACC_T)(c * VL + l);
    for (int64_t i = 0; i < iters; i++) {
        FBMM_UNROLL
        for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = acc[c] * x + y;
    }
    double sum = 0;
    for (int c = 0; c < PEAK_CHAINS; c++)
        for (int l = 0; l < VL; l++) sum += (double)acc[c][l];
    if (flops) *flops = iters > 0 ? 2 * (int64_t)PEAK_CHAINS * VL * iters : 0;
    return sum;
}

#undef PEAK_CHAINS
