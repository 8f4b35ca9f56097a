/*
 * family_begin.h -- opens one accumulator family inside an engine: derives
 * the family's macros from ACC, ACC_T, ACC_BYTES and ACC_IS_INT (defined by
 * the includer, src/generated/kinds.h, from dtypes.def's FBMM_FAMILY row) and
 * from the engine's block sizes (isa.def's FBMM_BLOCKS row for this ISA and
 * family, defined as FBMM_MR_<family>, ... in src/generated/engine_<isa>.c),
 * then includes the family's kernels (gemm_template.h, transpose.h, and
 * peak.h in the float families and the 32-bit integer one). The family's dtypes follow (kind_real.h,
 * kind_complex.h); family_end.h closes it.
 */
#define FBMM_NAME(x) FBMM_CAT(x, ACC)
_Static_assert(sizeof(ACC_T) == ACC_BYTES, "tools/codegen.py's _ACC_BYTES is wrong for ACC_T");
#define MR FBMM_CAT(FBMM_MR, ACC)
#define KC FBMM_CAT(FBMM_KC, ACC)
#define MC FBMM_CAT(FBMM_MC, ACC)
#define NC FBMM_CAT(FBMM_NC, ACC)
#define VL ((int64_t)(FBMM_VBYTES / sizeof(ACC_T)))   /* lanes per vector */
#define NR (FBMM_NV * VL)
#define VEC_T FBMM_NAME(vec)
/* vectors per row of the small-matrix path's accumulators */
#define SMALL_NVMAX ((FBMM_SMALL_MAX + VL - 1) / VL)
/* the small path's register block: SMALL_ROWS rows of C x SMALL_BLOCK
 * vectors, 4 x 2 = 8 independent accumulators (8 chains cover 2 FMA ports x
 * 4 cycles of latency; half the AVX2 register file) */
#define SMALL_ROWS 4
#define SMALL_BLOCK 2

/* an accumulator value stored in memory (a widened operand) */
static inline ACC_T FBMM_NAME(load_acc)(const char *p)
{
    ACC_T v;
    memcpy(&v, p, sizeof v);
    return v;
}

#include "gemm_template.h"
#include "transpose.h"      /* VL x VL blocks in registers (B's packing) */
#if !ACC_IS_INT || ACC_BYTES == 4
#include "peak.h"       /* the bench's register-only multiply-add loop */
#endif
