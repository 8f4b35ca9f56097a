/*
 * block_sizes.h -- the engine's path thresholds and the sizes shared by every
 * ISA variant. The per-ISA register and cache blocking (MR, KC, MC, NC for
 * each accumulator family, the vector width, the small-matrix limit) is in
 * isa.def's table; setup.py writes one ISA's row into its generated
 * engine_<isa>.c as FBMM_VBYTES, FBMM_SMALL_MAX and FBMM_MR_<family>, ...,
 * before that file includes engine_template.h.
 */
#ifndef FASTBMM_BLOCK_SIZES_H
#define FASTBMM_BLOCK_SIZES_H

#define FBMM_NV 2                   /* vectors per row of the C tile: NR = 2 * lanes */
/* gemm_template.h's microkernel_wide: FBMM_WIDE_ROWS x 3 vectors, where 32
 * vector registers hold its 24 accumulators */
#define FBMM_WIDE_TILE (FBMM_VBYTES == 64)
#define FBMM_WIDE_ROWS 8

/* B's rows are read in place (float/double, contiguous rows) when the KC rows
 * of a sliver lie within this many bytes (half of a 32 KiB L1); further
 * apart they collide in L1's sets: pack. */
#define FBMM_B_INPLACE_SPAN 16384

/* Matrices of at most this many rows with contiguous rows of B (float,
 * double, int32, int64) stream B once, unpacked (a batched vector-matrix
 * product is memory-bound: packing would double its traffic). */
#define FBMM_STREAM_MAX_ROWS 4
/* Bytes of L1 for the accumulator rows of one column block: 16 KiB, shared
 * by 1, 2 or 4 rows (3 take 4's share), so a row's block is 16, 8 or 4 KiB,
 * a whole number of pages of B's rows. The trap with part of a page per
 * pass: the L2 streamer fetches the rest of the page, which is evicted (all
 * of B is many times L2) before the next pass reads it. Zen 3, 1 thread,
 * GFLOP/s, 2 KiB -> 4 KiB blocks: 64x2x1024x1024 float32 16-19 -> 21-22,
 * 64x4x1024x1024 29-32 -> 34-37; 4 KiB -> 16 KiB for one row:
 * 4x1x8192x8192 10.1-10.8 -> 11.7-12.3. */
#define FBMM_STREAM_ACC_BYTES 16384
#define FBMM_STREAM_DEPTH 8         /* rows of B read side by side (gemm_stream; half for 3-4 rows) */
#define FBMM_PAGE_BYTES 4096        /* the hardware prefetchers' span */

/* Products with at most this many columns (matrix-vector stacks) whose A
 * rows are contiguous run as dot products along the inner dimension (gemv):
 * an NR-wide tile would hold mostly dead columns. The switch in
 * gemm_template.h's gemv() has a case for each count up to this. */
#define FBMM_GEMV_MAX_COLS 4
/* ... and whose gathered columns (p x m values, per thread) stay within L2:
 * a longer inner dimension takes the packed nest, whose scratch is bounded. */
#define FBMM_GEMV_MAX_B_BYTES (256 * 1024)

/* A small matrix-vector product (p == 1) with an inner dimension of at least
 * this takes the gemv path rather than the small path, whose one live lane of
 * VL per multiply-add loses to dot products along m (16x16x1 float64: 4.4
 * against 5.5 GFLOP/s on Zen 3; at m = 8 the small path is faster, 3.1
 * against 2.4). */
#define FBMM_SMALL_GEMV_MIN_M 12

/* A's rows (and columns) are read in place when an MC x KC block's rows lie
 * within this many bytes of each other (about L2's size); else A is packed. */
#define FBMM_A_INPLACE_SPAN (256 * 1024)

/* An A read in place: during the first pass over a block (its first sliver
 * of B), the next MR rows are prefetched before each microkernel call when
 * the block's rows are at least this many bytes long. The first pass reads A
 * from L3 (later ones from L2), MR rows (six on AVX2) of short streams at once, and the
 * hardware prefetchers start each stream late. Zen 3, 1 thread, median
 * ratio of 30 alternations in one process: float64 64x128x128x64 1.02-1.05,
 * 64x128x64x128 1.07, 256x64^3 1.11, 512x24x40x56 1.08; float32
 * 64x128x128x64 1.02-1.06, 32x256^3 1.01; cache-resident 4x128x128x64
 * 0.99. Shorter rows (float32 512x24x40x56, 160 bytes: 0.975) are left to
 * the hardware. On Intel CPUs none at all (dispatch.c's
 * fbmm_cpu_prefetch_a_rows): on a Xeon (family 6 model 167, 1 thread, best /
 * median of 7 alternated in one process) the prefetches cost float32
 * 64x128x128x64 132/129 -> 137/136 GFLOP/s without them, float64 67/65 ->
 * 72/71, 32x256^3 float32 166/158 -> 168/162; the rest within noise. */
#define FBMM_A_PREFETCH_MIN_ROW_BYTES 256

/* The packed nest's prefetch of the next tile's operands (next_fetch.h):
 * only where the next A and B together take at most MAX_BYTES (below), and
 * only where the whole batch's A and B take more than MIN_BATCH_BYTES (a
 * batch that stays in L2 pays for the prefetch instructions and gains
 * nothing: 8x96^3 float32 0.95x, 8x24x40x56 0.92x). Xeon (family 6 model
 * 167, AVX-512), 1 thread, without -> with, median GFLOP/s, alternated in
 * one process: float32
 * 512x24x40x56 77-77 -> 81, 256x96^3 130-131 -> 132-134, 64x128x128x64
 * 136 -> 138, 64x128x64x128T 128-129 -> 133, 1024x36^3 69-70 -> 75;
 * float64 512x24x40x56 42 -> 45, 256x96^3 56-57 -> 63-64, 64x128x128x64
 * 68 -> 71-72, 1024x36^3 42 -> 44; 32x160^3 and 32x256^3 unchanged; at 2
 * threads the same gains (float32 1024x36^3 108-109 -> 115-117). The
 * rest of the gap to a batch resident in L2 (512x24x40x56 float32: 106) is
 * not this prefetch's to close. */
/* MAX_BYTES was 256 KiB: with bursts of prefetches, 32x256^3 float32 (512
 * KiB a matrix) ran 0.94x with it; with one column a call but contiguous
 * rows still walked down the rows, 1.5 MiB ran float32 0.92-0.97x, float64
 * 0.90-1.00x. With runs of lines in order too (next_fetch.h), 256 KiB -> 1
 * MiB (Xeon, family 6 model 167, 1 thread), two runs of 6 alternated
 * processes, median ratio: float32 32x256^3 1.08, 1.03,
 * 64x192^3 1.03, 1.04, 32x128x512x128 1.05, 1.02; float64 32x256^3 1.02,
 * 1.05, 64x192^3 1.16, 1.20, 32x128x512x128 0.99, 1.00; 4x1024^3 and
 * 8x384^3 (above 1 MiB, as before) 0.98-1.04: the machine's noise. */
#define FBMM_NEXT_FETCH_MAX_BYTES (1024 * 1024)
#define FBMM_NEXT_FETCH_MIN_BATCH_BYTES (1024.0 * 1024.0)

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

/* int8, uint8 and int16 products whose n and p both exceed this take the
 * AVX512-VNNI nest (gemm_vnni.h) where it runs, even below FBMM_SMALL_MAX:
 * two products per instruction and lane beat the small path's one, once the
 * 12 x 32 register tile is not mostly dead columns. Measured on a Xeon
 * (family 6 model 207, 1 thread, GOP/s, small -> VNNI nest): 1024x32^3 int8
 * 43 -> 66, int16 46 -> 111; 1024x24^3 21 -> 31, 27 -> 44; 1024x32x12x32
 * int8 31 -> 52; but 2048x16^3 int16 33 -> 23 and 1024x16x32x16 int8
 * 22 -> 20, int16 37 -> 29. */
#define FBMM_SMALL_MAX_VNNI 16

/* Complex matrices take the small path as far as real ones (kind_complex.h's
 * vector loops, two accumulators per vector of C). Against the packed 1m
 * nest it replaced above 8, and the scalar loops below (Zen 3, 1 thread,
 * complex64 GFLOP/s counting 2 a multiply-add, best of alternated runs):
 * 10000x4^3 0.9 -> 6.0, 4096x8^3 1.4 -> 16.8, 2048x16^3 13.7 -> 19.7,
 * 1024x32^3 15.4 -> 17.4, 64x32^3 18.5 -> 21.0, 256x30x31x29 15.3 -> 18.1. */
#define FBMM_SMALL_MAX_COMPLEX FBMM_SMALL_MAX

#endif
