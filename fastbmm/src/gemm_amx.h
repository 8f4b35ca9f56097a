/*
 * gemm_amx.h -- bfloat16's packed nest on CPUs with AMX-BF16: tdpbf16ps
 * multiplies a 16 x 32 bfloat16 tile of A by a 32 x 16 tile of B into a
 * 16 x 16 float32 tile, 16 x 16 x 32 multiply-adds in one instruction.
 *
 * Included by kind_real.h after gemm_pairdot.h (whose pair layout, packing of
 * B, magnitude guard and exact step it shares), for the same dtypes and
 * engines, before the nest both run in (gemm_bf16_nest.h); one copy per
 * engine (include guard):
 *   - avx512: the tile instructions, in functions compiled for
 *     target("amx-tile,amx-bf16") and run only where the CPU reports AMX-BF16
 *     and Linux granted the tile state (dispatch.c's fbmm_amx_bf16_usable);
 *   - avx512_emulated: a software model of the tile product (DAZ, FTZ and
 *     the hardware's order), so that the tests run this nest on any x86-64 CPU.
 *
 * The register block is 32 x 32 floats of C: 4 accumulator tiles (tmm0-3)
 * fed by 2 tiles of A (tmm4-5: rows 0-15, 16-31) and 2 of B (tmm6-7:
 * columns 0-15, 16-31), every tile 16 rows of 64 bytes; each step over 16
 * pairs of the depth loads 4 tiles and issues 4 tdpbf16ps. Layouts, with the
 * depth in pairs padded with zero pairs to kc2p, a multiple of 16:
 *   - B: gemm_pairdot.h's NR-column slivers (pair kk: NR words, NR = 32),
 *     so a tile of B is 16 pair rows, 128 bytes apart, of 16 columns;
 *   - A: slivers of 32 rows, each row kc2p pair words in a row (a tile of A
 *     is 16 rows, 4 * kc2p bytes apart, of 16 pairs; fbmm_pairdot_pack_a with
 *     steps (1, kc2p)).
 * Per float32 lane, the order of the sums in one tdpbf16ps, as measured on
 * a Xeon (family 6 model 207, 2026-12-05; tests/bmm/test_bfloat16.py's
 * probes), is not the SDM pseudocode's (a pair's lower product, then its
 * upper one, pair after pair): the 16 lower products are summed in depth
 * order, the 16 upper ones likewise, then the two sums are added and the
 * result added to C, every step rounded, with DAZ and FTZ. The magnitude
 * guard of gemm_pairdot.h holds for any order of such sums, and a block it
 * refuses runs the exact step instead.
 */
#ifndef FASTBMM_GEMM_AMX_H
#define FASTBMM_GEMM_AMX_H

#define FBMM_AMX_MR 32                  /* rows of C per register block */
#define FBMM_AMX_MC 128                 /* rows of A per packed block: MC's share of 32-row blocks */
#define FBMM_AMX_KP 16                  /* pairs per tile row (64 bytes) */

_Static_assert(NR == 32, "gemm_amx.h: the register block is 2 tiles of 16 float32 columns");

static int64_t fbmm_amx_pairs(int64_t kc)
{
    return ((kc + 1) / 2 + FBMM_AMX_KP - 1) / FBMM_AMX_KP * FBMM_AMX_KP;
}

/*
 * The tile instructions the block uses, as macros: AMX's own (tile numbers
 * are immediates), or, in avx512_emulated, a model of them on 8 tiles of
 * 16 rows x 64 bytes in memory, so that the tests run the very block code
 * (tile numbers, addresses, strides) the hardware runs. The model of
 * tdpbf16ps sums in the hardware's order (above), with DAZ and FTZ.
 */
#if FBMM_PAIRDOT_EMULATED
typedef struct { uint8_t row[16][64]; } fbmm_amx_tile;

static void fbmm_amx_model_load(fbmm_amx_tile *t, const void *base, int64_t stride)
{
    for (int r = 0; r < 16; r++) memcpy(t->row[r], (const char *)base + r * stride, 64);
}

static void fbmm_amx_model_store(const fbmm_amx_tile *t, void *base, int64_t stride)
{
    for (int r = 0; r < 16; r++) memcpy((char *)base + r * stride, t->row[r], 64);
}

static void fbmm_amx_model_dpbf16ps(fbmm_amx_tile *c, const fbmm_amx_tile *a,
                                    const fbmm_amx_tile *b)
{
    for (int m = 0; m < 16; m++) {
        VEC_T acc, lower = {0}, upper = {0}, one = lower + 1.0f;
        memcpy(&acc, c->row[m], sizeof acc);
        for (int k = 0; k < 16; k++) {
            uint32_t w;
            fbmm_pair_words bk;
            VEC_T x[4];
            memcpy(&w, a->row[m] + 4 * k, sizeof w);
            memcpy(&bk, b->row[k], sizeof bk);
            fbmm_bf16_model_widen(w, bk, x);
            lower = fbmm_pairdot_fma_ftz(lower, x[2], x[0]);
            upper = fbmm_pairdot_fma_ftz(upper, x[3], x[1]);
        }
        acc = fbmm_pairdot_fma_ftz(acc, fbmm_pairdot_fma_ftz(lower, upper, one), one);
        memcpy(c->row[m], &acc, sizeof acc);
    }
}

#  define FBMM_AMX_TARGET
#  define FBMM_AMX_TILES fbmm_amx_tile tmm[8]
#  define FBMM_TILE_ZERO(t) memset(&tmm[t], 0, sizeof tmm[t])
#  define FBMM_TILE_LOAD(t, base, stride) fbmm_amx_model_load(&tmm[t], base, stride)
#  define FBMM_TILE_STORE(t, base, stride) fbmm_amx_model_store(&tmm[t], base, stride)
#  define FBMM_TILE_DPBF16PS(c, a, b) fbmm_amx_model_dpbf16ps(&tmm[c], &tmm[a], &tmm[b])
#else
#  include <immintrin.h>
#  define FBMM_AMX_TARGET __attribute__((target("amx-tile,amx-bf16")))
#  define FBMM_AMX_TILES
#  define FBMM_TILE_ZERO(t) _tile_zero(t)
#  define FBMM_TILE_LOAD(t, base, stride) _tile_loadd(t, base, stride)
#  define FBMM_TILE_STORE(t, base, stride) _tile_stored(t, base, stride)
#  define FBMM_TILE_DPBF16PS(c, a, b) _tile_dpbf16ps(c, a, b)

/* The tile configuration (palette 1): tiles 0-7 all 16 rows x 64 bytes. */
typedef struct {
    uint8_t palette_id, start_row, reserved0[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((aligned(64))) fbmm_amx_config;

_Static_assert(sizeof(fbmm_amx_config) == 64, "the tile configuration is 64 bytes");

/* ldtilecfg / sttilecfg with the whole 64-byte configuration as the memory
 * operand. The trap: GCC's _tile_loadconfig and _tile_storeconfig (GCC 12 at
 * least) tell the compiler they touch 8 bytes only (a `void *` operand), so it
 * drops the stores of colsb[] and rows[] before the load as dead: the tiles
 * end up configured with 0 rows and the first tile instruction raises #UD
 * (SIGILL). Seen on a Xeon with AMX; the tile model cannot show it. */
static inline FBMM_AMX_TARGET void fbmm_amx_load_config(const fbmm_amx_config *cfg)
{
    __asm__ volatile("ldtilecfg %0" : : "m"(*cfg));
}

static inline FBMM_AMX_TARGET void fbmm_amx_store_config(fbmm_amx_config *cfg)
{
    __asm__ volatile("sttilecfg %0" : "=m"(*cfg));
}

/* Loads fastbmm's configuration, after saving the thread's current one in
 * *saved. The trap: another library in the process (oneDNN, under torch)
 * may have configured the tiles on this thread and expect its configuration
 * to be there when it next runs, so the end of a call restores it rather
 * than releasing the tiles (tile data never lives across calls). */
static FBMM_AMX_TARGET void fbmm_amx_begin(fbmm_amx_config *saved)
{
    fbmm_amx_config cfg;
    fbmm_amx_store_config(saved);
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    fbmm_amx_load_config(&cfg);
}

static FBMM_AMX_TARGET void fbmm_amx_end(const fbmm_amx_config *saved)
{
    if (saved->palette_id != 0)
        fbmm_amx_load_config(saved);
    else
        _tile_release();
}
#endif

/* C[32 x 32] (float32 rows out_sr bytes apart, at out) = A sliver @ B
 * sliver, plus C where load (a later depth panel): 4 accumulator tiles, 2 of
 * A and 2 of B per 16 pairs of the depth. The tiles load and store C where
 * it lies (the staging rows, or C itself), so no copy of the block is made. */
static FBMM_AMX_TARGET void fbmm_amx_block_fast(int64_t kc2p, const uint32_t *ap,
                                                const uint32_t *bp, char *out, int64_t out_sr,
                                                int load)
{
    FBMM_AMX_TILES;
    const int64_t a_stride = kc2p * 4, b_stride = NR * 4;
    char *const c1 = out + 64, *const c2 = out + 16 * out_sr, *const c3 = c2 + 64;
    /* GCC's _tile_loadd has no memory operand or clobber: without this
     * barrier the stores of the packed slivers (or of C by the previous
     * panel's code) could, once inlined, be moved after the loads. */
    __asm__ volatile("" : : : "memory");
    if (load) {
        FBMM_TILE_LOAD(0, out, out_sr);
        FBMM_TILE_LOAD(1, c1, out_sr);
        FBMM_TILE_LOAD(2, c2, out_sr);
        FBMM_TILE_LOAD(3, c3, out_sr);
    } else {
        FBMM_TILE_ZERO(0);
        FBMM_TILE_ZERO(1);
        FBMM_TILE_ZERO(2);
        FBMM_TILE_ZERO(3);
    }
    for (int64_t kk = 0; kk < kc2p; kk += FBMM_AMX_KP) {
        FBMM_TILE_LOAD(4, ap + kk, a_stride);                 /* rows 0-15 of A */
        FBMM_TILE_LOAD(5, ap + 16 * kc2p + kk, a_stride);     /* rows 16-31 */
        FBMM_TILE_LOAD(6, bp + kk * NR, b_stride);            /* columns 0-15 of B */
        FBMM_TILE_LOAD(7, bp + kk * NR + 16, b_stride);       /* columns 16-31 */
        FBMM_TILE_DPBF16PS(0, 4, 6);
        FBMM_TILE_DPBF16PS(1, 4, 7);
        FBMM_TILE_DPBF16PS(2, 5, 6);
        FBMM_TILE_DPBF16PS(3, 5, 7);
    }
    FBMM_TILE_STORE(0, out, out_sr);
    FBMM_TILE_STORE(1, c1, out_sr);
    FBMM_TILE_STORE(2, c2, out_sr);
    FBMM_TILE_STORE(3, c3, out_sr);
}

/* A block the guard refused: the exact pair step, 4 rows x 2 vectors at a
 * time (8 independent chains); the same contract as fbmm_amx_block_fast. */
static void fbmm_amx_block_exact(int64_t kc2p, const uint32_t *ap, const uint32_t *bp,
                                 char *out, int64_t out_sr, int load)
{
    for (int r0 = 0; r0 < FBMM_AMX_MR; r0 += 4) {
        VEC_T acc[4][FBMM_NV];
        for (int r = 0; r < 4; r++) {
            if (load) memcpy(acc[r], out + (r0 + r) * out_sr, sizeof acc[r]);
            else for (int v = 0; v < FBMM_NV; v++) acc[r][v] = (VEC_T){0};
        }
        for (int64_t kk = 0; kk < kc2p; kk++) {
            fbmm_pair_words bv[FBMM_NV];
            memcpy(bv, bp + kk * NR, sizeof bv);
            for (int r = 0; r < 4; r++) {
                const uint32_t w = ap[(r0 + r) * kc2p + kk];
                for (int v = 0; v < FBMM_NV; v++)
                    acc[r][v] = fbmm_pairdot_step_exact(acc[r][v], w, bv[v]);
            }
        }
        for (int r = 0; r < 4; r++) memcpy(out + (r0 + r) * out_sr, acc[r], sizeof acc[r]);
    }
}

/* A 32 x 32 block of float32 sums (row stride NR) out to its destination: a
 * full block of a float32 destination with unit columns row by row through
 * tile_out's vector moves and epilogue, anything else through `store`. */
static void fbmm_amx_out(const float *blk, char *c, int64_t c_sr, int64_t c_sc, int direct,
                         int first, int64_t mr, int64_t nr,
                         void (*store)(char *, int64_t, int64_t, const float *, int64_t, int64_t,
                                       int, const fbmm_epilogue *, const char *),
                         const fbmm_epilogue *ep, const char *d)
{
    if (!direct) {
        store(c, c_sr, c_sc, blk, mr, nr, first, ep, d);
        return;
    }
    for (int64_t r = 0; r < FBMM_AMX_MR; r++) {
        VEC_T acc[MR][FBMM_NV];             /* tile_out's shape; row 0 is used */
        memcpy(acc[0], blk + r * NR, sizeof acc[0]);
        FBMM_NAME(tile_out)(1, FBMM_NV, acc, c + r * c_sr, c_sr, c_sc, 1, first, 1, NR, store,
                            ep, d ? d + r * ep->d_sr : 0);
    }
}

#endif
