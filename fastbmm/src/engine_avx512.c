/*
 * The avx512 variant of the engine. setup.py compiles this file alone with
 * -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma -mf16c; nothing else in the package is built with them, so the module
 * still imports on a CPU without them and dispatch.c decides at run time.
 */
#if defined(__x86_64__) || defined(_M_X64)
#define FBMM_ISA_AVX512 1
#define FBMM_ENGINE_NAME avx512
#include "engine_template.h"
#endif
