/*
 * next_fetch.h -- fetching the next tile's operands while this one computes.
 *
 * A batch of medium matrices (a few KiB to a few hundred KiB each) meets
 * every matrix first in L3 or memory: the packing of B and the first sliver
 * of an A read in place wait on those lines, and the stores to C on its.
 * A prefetch of the next task's B, A and C into L2 hides that, but only
 * spread out: a burst of prefetches at the start of a task, or between two
 * microkernel calls, stalls the loads behind it on Intel CPUs
 * (BENCHMARKS.md, "tried and dropped"). So the lines are handed to the
 * microkernel, which issues one per step of its k loop: a "column" of
 * lines, the same line of consecutive rows (B's rows, then A's, then C's),
 * `stride` bytes apart, or consecutive lines where the rows lie back to
 * back (fbmm_next_fetch_region); one column a call.
 *
 * The trap: a tile with fewer calls than the next operands have columns.
 * Issuing the extra columns at once before a call is the burst again:
 * 128x24x256x64 (one 24x64 tile a matrix, 4 calls, 20 columns of up to 256
 * lines) ran float32 77 -> 97 and float64 37 -> 50 GFLOP/s once they were
 * dropped (Xeon, family 6 model 167, 1 thread, alternated processes). The
 * columns beyond one a call are left to the hardware prefetchers.
 *
 * Family-independent: bytes and 64-byte lines only.
 */
#ifndef FBMM_NEXT_FETCH_H
#define FBMM_NEXT_FETCH_H

#include <stdint.h>

#define FBMM_LINE 64

/* Up to three regions (the next B's rows, the next A's, the next C's),
 * each `rows` rows of `lines` lines, `stride` bytes apart; walked a column
 * at a time: line `line` of rows [row, row + n). */
#define FBMM_NEXT_REGIONS 3
typedef struct {
    const char *base[FBMM_NEXT_REGIONS];
    int64_t stride[FBMM_NEXT_REGIONS], rows[FBMM_NEXT_REGIONS], lines[FBMM_NEXT_REGIONS];
    int region;                 /* the region being walked; FBMM_NEXT_REGIONS: done */
    int64_t line, row;          /* the next column's line and first row */
} fbmm_next_fetch;

/* Region i: rows x bytes from p, rows `stride` bytes apart (rows = 0: none). */
static inline void fbmm_next_fetch_region(fbmm_next_fetch *f, int i, const char *p,
                                          int64_t stride, int64_t rows, int64_t bytes)
{
    /* Rows back to back (a tile as wide as its matrix): one run of lines,
     * walked in order, a column being up to `depth` consecutive lines. The
     * trap: the same line of consecutive rows is a strided walk the L2
     * streamer does not follow; lines in order it runs ahead of. Xeon
     * (family 6 model 167), 1 thread, two builds alternated 4-8 times in
     * fresh processes, median ratio: float32 128x24x256x64 1.12, 1.12,
     * 512x24x40x64 1.06, 1024x32x32x48 1.09, 512x24x40x56 1.03, 1.06,
     * 16x197x64x197T 1.04; float64 128x24x256x64 1.12, 1.08, 512x24x40x64
     * 1.08; the rest (96^3, 64x128x128x64, 36^3, 48^3, the transposed B's
     * 64x128x64x128T) 0.96-1.03 in one run, 0.99-1.01 in a second. */
    if (stride == bytes && rows > 1) {
        bytes *= rows;
        rows = 1;
    }
    /* from the line holding the first byte to the one holding the last */
    const uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(FBMM_LINE - 1);
    f->base[i] = (const char *)lo;
    f->stride[i] = stride;
    f->rows[i] = bytes > 0 ? rows : 0;
    f->lines[i] = (int64_t)(((uintptr_t)p + (uintptr_t)bytes - lo + FBMM_LINE - 1) / FBMM_LINE);
    if (f->rows[i] == 1) {      /* one row: its lines are the column's rows */
        f->rows[i] = f->lines[i];
        f->lines[i] = 1;
        f->stride[i] = FBMM_LINE;
    }
}

/* The first region after g that has rows (FBMM_NEXT_REGIONS: none). */
static inline int fbmm_next_fetch_after(const fbmm_next_fetch *f, int g)
{
    while (++g < FBMM_NEXT_REGIONS && !f->rows[g]) {
    }
    return g;
}

/* After the regions are set: walk them from the first line of B's. */
static inline void fbmm_next_fetch_start(fbmm_next_fetch *f)
{
    f->region = fbmm_next_fetch_after(f, -1);
    f->line = f->row = 0;
}

/* The next column, at most `max` lines: its first line's address, *stride
 * and *n (0: nothing left). */
static inline const char *fbmm_next_fetch_column(fbmm_next_fetch *f, int64_t max,
                                                 int64_t *stride, int64_t *n)
{
    const int g = f->region;
    if (g >= FBMM_NEXT_REGIONS) {
        *n = 0;
        return 0;
    }
    const char *p = f->base[g] + f->row * f->stride[g] + f->line * FBMM_LINE;
    const int64_t left = f->rows[g] - f->row;
    *n = left < max ? left : max;
    *stride = f->stride[g];
    f->row += *n;
    if (f->row == f->rows[g]) {
        f->row = 0;
        if (++f->line == f->lines[g]) {
            f->line = 0;
            f->region = fbmm_next_fetch_after(f, g);
        }
    }
    return p;
}

#endif /* FBMM_NEXT_FETCH_H */
