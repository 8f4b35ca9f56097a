/*
 * block_sizes.h -- every register and cache block size of every ISA variant,
 * in one place (the BLIS habit).
 *
 *   MR x NR  the C tile a microkernel holds in registers; NR = FBMM_NV vectors
 *   KC       depth of a packed panel: a KC x NR sliver of B stays in L1
 *   MC       rows of A per packed block: MC x KC stays in L2
 *   NC       columns of B per packed panel: KC x NC stays in L3
 *
 * Register budget of a microkernel: MR*NV accumulators + NV loads of B + 1
 * broadcast of A must fit the vector register file (16 on SSE2/AVX2, 32 on
 * AVX-512 and NEON), or the compiler spills and the kernel runs at half speed.
 *
 * The engine_*.c file that includes this defines FBMM_ISA_AVX512, _AVX2 or
 * _BASELINE first.
 */
#ifndef FASTBMM_BLOCK_SIZES_H
#define FASTBMM_BLOCK_SIZES_H

#if defined(FBMM_ISA_AVX512)
#  define FBMM_VBYTES 64            /* zmm */
#  define FBMM_MR_F32 12            /* 12 x 32: 24 acc + 2 + 1 = 27 of 32 regs */
#  define FBMM_MR_F64 12            /* 12 x 16 */
#  define FBMM_MR_U32 12
#  define FBMM_MR_U64 12
#  define FBMM_KC 256
#  define FBMM_MC 144
#  define FBMM_NC 3072
#  define FBMM_SMALL_MAX 8
#elif defined(FBMM_ISA_AVX2)
#  define FBMM_VBYTES 32            /* ymm */
#  define FBMM_MR_F32 6             /* 6 x 16: 12 acc + 2 + 1 = 15 of 16 regs */
#  define FBMM_MR_F64 6             /* 6 x 8 */
#  define FBMM_MR_U32 6
#  define FBMM_MR_U64 4             /* 64-bit lane multiply is emulated: needs temporaries */
#  define FBMM_KC 256
#  define FBMM_MC 120
#  define FBMM_NC 3072
#  define FBMM_SMALL_MAX 8
#else /* baseline: SSE2 on x86-64, NEON on AArch64, generic vectors elsewhere */
#  define FBMM_VBYTES 16
#  define FBMM_MR_F32 6             /* 6 x 8 */
#  define FBMM_MR_F64 6             /* 6 x 4 */
#  define FBMM_MR_U32 6
#  define FBMM_MR_U64 4
#  define FBMM_KC 256
#  define FBMM_MC 96
#  define FBMM_NC 2048
#  define FBMM_SMALL_MAX 8
#endif

#define FBMM_NV 2                   /* vectors per row of the C tile: NR = 2 * lanes */

/* B's rows are read in place (float/double, contiguous rows) when the KC rows
 * of a sliver lie within this many bytes (half of a 32 KiB L1); further
 * apart they collide in L1's sets: pack. */
#define FBMM_B_INPLACE_SPAN 16384

/* Matrices of at most this many rows with contiguous rows of B (float,
 * double, int32, int64) stream B once, unpacked (a batched vector-matrix
 * product is memory-bound: packing would double its traffic). */
#define FBMM_STREAM_MAX_ROWS 4
#define FBMM_STREAM_BLOCK 512       /* columns per accumulator block (<= 16 KiB) */

/* Products with at most this many columns (matrix-vector stacks) whose A
 * rows are contiguous run as dot products along the inner dimension (gemv):
 * an NR-wide tile would hold mostly dead columns. The switch in
 * gemm_template.h's gemv() has a case for each count up to this. */
#define FBMM_GEMV_MAX_COLS 4
/* ... and whose gathered columns (p x m values, per thread) stay within L2:
 * a longer inner dimension takes the packed nest, whose scratch is bounded. */
#define FBMM_GEMV_MAX_B_BYTES (256 * 1024)

/* A's rows (and columns) are read in place when an MC x KC block's rows lie
 * within this many bytes of each other (about L2's size); else A is packed. */
#define FBMM_A_INPLACE_SPAN (256 * 1024)

/* Parallel split of one matrix (batch smaller than the thread count): C tiles
 * of at least this many rows/columns, so each task amortises its packing. */
#define FBMM_MIN_TILE_ROWS 96
#define FBMM_MIN_TILE_COLS 256

/* Multiply-adds of one matrix above which a matrix split across threads gets
 * one tile per thread rather than four (the tiles' repeated packing costs
 * more than the imbalance it saves). */
#define FBMM_BIG_MATRIX_WORK (256.0 * 256.0 * 256.0)

/* Work (multiply-adds) below which a call runs on one thread: starting an
 * OpenMP region costs a few microseconds. */
#define FBMM_SERIAL_WORK 32768

#endif
