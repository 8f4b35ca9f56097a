/*
 * The avx2 variant of the engine. setup.py compiles this file alone with
 * -mavx2 -mfma -mf16c; nothing else in the package is built with them, so the module
 * still imports on a CPU without them and dispatch.c decides at run time.
 */
#if defined(__x86_64__) || defined(_M_X64)
#define FBMM_ISA_AVX2 1
#define FBMM_ENGINE_NAME avx2
#include "engine_template.h"
#endif
