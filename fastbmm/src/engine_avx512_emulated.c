/*
 * A testing variant: the AVX-512 engine's exact source and block sizes
 * (12 x 32 float tiles of 64-byte vectors, ...), compiled for AVX2, where the
 * compiler splits each 64-byte vector into two 32-byte halves. It is slow
 * (the tile no longer fits the register file) and never chosen at import,
 * but it runs the AVX-512 variant's tiling, edge handling and packing logic
 * on any AVX2 machine, so the test suite covers them where no AVX-512 CPU is
 * at hand. Select it with fastbmm._bmm.set_kernel("avx512_emulated").
 */
#if defined(__x86_64__) || defined(_M_X64)
#define FBMM_ISA_AVX512 1
#define FBMM_ENGINE_NAME avx512_emulated
#include "engine_template.h"
#endif
