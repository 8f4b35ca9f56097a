/*
 * dispatch.c -- which engine variants were compiled in, and which of them
 * this CPU can run (NumPy's habit: build every variant, choose at import).
 *
 * setup.py defines FBMM_HAVE_AVX512 / FBMM_HAVE_AVX2 when the compiler took
 * that variant's flags. __builtin_cpu_supports also checks that the OS saves
 * the wide registers (XCR0), so a kernel never faults on a CPU or VM that
 * reports AVX-512 but has it disabled.
 */
#include "fastbmm.h"

#if defined(FBMM_HAVE_AVX512)
extern const fbmm_engine fbmm_engine_avx512;
#endif
#if defined(FBMM_HAVE_AVX2)
extern const fbmm_engine fbmm_engine_avx2;
#endif
extern const fbmm_engine fbmm_engine_baseline;
#if defined(FBMM_HAVE_AVX512_EMULATED)
extern const fbmm_engine fbmm_engine_avx512_emulated;
#endif

/* Best first: the first supported entry is chosen at import. The emulated
 * variant comes after the baseline, which every CPU runs, so it is only ever
 * used when a test asks for it. */
static const fbmm_engine *const engines[] = {
#if defined(FBMM_HAVE_AVX512)
    &fbmm_engine_avx512,
#endif
#if defined(FBMM_HAVE_AVX2)
    &fbmm_engine_avx2,
#endif
    &fbmm_engine_baseline,
#if defined(FBMM_HAVE_AVX512_EMULATED)
    &fbmm_engine_avx512_emulated,
#endif
};

int fbmm_num_engines(void) { return (int)(sizeof engines / sizeof engines[0]); }

const fbmm_engine *fbmm_engine_at(int i)
{
    return (i >= 0 && i < fbmm_num_engines()) ? engines[i] : 0;
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#  define FBMM_X86_DETECT 1
#endif

int fbmm_engine_supported(const fbmm_engine *e)
{
#if defined(FBMM_HAVE_AVX512)
    if (e == &fbmm_engine_avx512) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
#endif
#if defined(FBMM_HAVE_AVX2)
    if (e == &fbmm_engine_avx2) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    }
#endif
#if defined(FBMM_HAVE_AVX512_EMULATED)
    if (e == &fbmm_engine_avx512_emulated) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    }
#endif
    return e == &fbmm_engine_baseline;
}

const char *fbmm_cpu_features(void)
{
#if defined(FBMM_X86_DETECT)
    static char buf[160];
    static const char *const names[] = {
        "sse2", "sse4.2", "avx", "avx2", "fma", "f16c",
        "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512vnni",
    };
    int ok[sizeof names / sizeof names[0]];
    __builtin_cpu_init();
    ok[0] = __builtin_cpu_supports("sse2");
    ok[1] = __builtin_cpu_supports("sse4.2");
    ok[2] = __builtin_cpu_supports("avx");
    ok[3] = __builtin_cpu_supports("avx2");
    ok[4] = __builtin_cpu_supports("fma");
    ok[5] = __builtin_cpu_supports("f16c");
    ok[6] = __builtin_cpu_supports("avx512f");
    ok[7] = __builtin_cpu_supports("avx512dq");
    ok[8] = __builtin_cpu_supports("avx512bw");
    ok[9] = __builtin_cpu_supports("avx512vl");
    ok[10] = __builtin_cpu_supports("avx512vnni");
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!ok[i]) continue;
        const char *s = names[i];
        if (len && len + 1 < sizeof buf) buf[len++] = ' ';
        while (*s && len + 1 < sizeof buf) buf[len++] = *s++;
        buf[len] = 0;
    }
    return buf;
#elif defined(__aarch64__)
    return "neon";
#else
    return "";
#endif
}
