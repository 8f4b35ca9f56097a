/*
 * The baseline variant of the engine. setup.py compiles this file alone with
 * (none: SSE2 on x86-64, NEON on AArch64); nothing else in the package is built with them, so the module
 * still imports on a CPU without them and dispatch.c decides at run time.
 */
#if 1
#define FBMM_ISA_BASELINE 1
#define FBMM_ENGINE_NAME baseline
#include "engine_template.h"
#endif
