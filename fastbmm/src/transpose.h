/*
 * transpose.h -- a VL x VL block of the family's elements transposed in
 * registers: B's packing reads a transposed view (columns contiguous, as in
 * attention's q @ k^T) a column vector at a time and writes rows.
 *
 * The butterfly: for g = 1, 2, 4, ..., VL/2, the rows i and i + g (bit g of
 * i clear) swap their off-diagonal g x g blocks,
 *     r_i'[j]     = (j & g) ? r_{i+g}[j - g] : r_i[j]
 *     r_{i+g}'[j] = (j & g) ? r_{i+g}[j]     : r_i[j + g]
 * so element (i, j) trades places with (i ^ g, j ^ g) wherever bit g of i and
 * j differ; after every bit, (i, j) has gone to (j, i). log2(VL) stages of VL
 * two-input shuffles: 24 for 8 x 8 floats on AVX2, against 64 scalar loads
 * and 64 scalar stores (the strided pack's cost, 1.7 cycles an element).
 *
 * The trap: the shuffles' masks must be constants the compiler sees, or it
 * builds each mask in registers at run time (vpinsrd, vpcmpeqd, vpblendvb)
 * and the pack gets slower than the scalar one. Hence one literal table per
 * lane count, picked by the preprocessor (LANES = VL as a #if constant).
 */

#define LANES (FBMM_VBYTES / ACC_BYTES)
#define FBMM_UNPAREN(...) __VA_ARGS__   /* a table's (i, j, ...) as i, j, ... */

#if LANES == 2
#define FBMM_TR_STAGES(X) \
    X(1, (0, 2), (1, 3))
#elif LANES == 4
#define FBMM_TR_STAGES(X) \
    X(1, (0, 4, 2, 6), (1, 5, 3, 7)) \
    X(2, (0, 1, 4, 5), (2, 3, 6, 7))
#elif LANES == 8
#define FBMM_TR_STAGES(X) \
    X(1, (0, 8, 2, 10, 4, 12, 6, 14), (1, 9, 3, 11, 5, 13, 7, 15)) \
    X(2, (0, 1, 8, 9, 4, 5, 12, 13), (2, 3, 10, 11, 6, 7, 14, 15)) \
    X(4, (0, 1, 2, 3, 8, 9, 10, 11), (4, 5, 6, 7, 12, 13, 14, 15))
#elif LANES == 16
#define FBMM_TR_STAGES(X) \
    X(1, (0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30), \
         (1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31)) \
    X(2, (0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29), \
         (2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31)) \
    X(4, (0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27), \
         (4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31)) \
    X(8, (0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), \
         (8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
#else
#error "transpose.h: no shuffle table for this lane count"
#endif

/* the shuffles' index vectors: integer lanes of the elements' size (GCC's
 * rule; the type of a vector comparison is opaque, no literal of it) */
#if ACC_BYTES == 4
typedef int32_t FBMM_NAME(lane_index_vec) __attribute__((vector_size(FBMM_VBYTES)));
#else
typedef int64_t FBMM_NAME(lane_index_vec) __attribute__((vector_size(FBMM_VBYTES)));
#endif

/* r[0..VL-1] (row i = r[i]) becomes its transpose */
static inline __attribute__((always_inline)) void FBMM_NAME(transpose_block)(VEC_T *r)
{
    typedef FBMM_NAME(lane_index_vec) LANES_T;
#define FBMM_TR_STAGE(g, lo, hi)                                          \
    FBMM_UNROLL                                                           \
    for (int i = 0; i < LANES; i++) {                                     \
        if (i & (g)) continue;                                            \
        VEC_T x = r[i], y = r[i + (g)];                                   \
        r[i] = __builtin_shuffle(x, y, (LANES_T){FBMM_UNPAREN lo});       \
        r[i + (g)] = __builtin_shuffle(x, y, (LANES_T){FBMM_UNPAREN hi}); \
    }
    FBMM_TR_STAGES(FBMM_TR_STAGE)
#undef FBMM_TR_STAGE
}

#undef FBMM_TR_STAGES
#undef LANES
#undef FBMM_UNPAREN
