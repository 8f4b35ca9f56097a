/*
 * dispatch.c -- which engine variants were compiled in, and which of them
 * this CPU can run (NumPy's habit: build every variant, choose at import).
 *
 * The variants are isa.def's rows, best first. setup.py builds a row's
 * engine only where the target and the compiler allow it; a row left out
 * leaves its engine undefined, which the weak, hidden references below turn
 * into a NULL entry at link time (hidden: resolved inside this module, never
 * by another library's symbol of the same name).
 *
 * __builtin_cpu_supports also checks that the OS saves the wide registers
 * (XCR0), so a kernel never faults on a CPU or VM that reports AVX-512 but
 * has it disabled.
 */
#include <string.h>
#include "fastbmm.h"
#if defined(__linux__) && defined(__x86_64__)
#  include <sys/syscall.h>
#  include <unistd.h>
#endif

#define FBMM_ISA_NATIVE 0
#define FBMM_ISA_TEST_ONLY 1

#define FBMM_BLOCKS(...)
#define FBMM_SMALL(...)
#define FBMM_ISA(name, arch, vbytes, flags, features, role) \
    extern const fbmm_engine fbmm_engine_##name __attribute__((weak, visibility("hidden")));
#include "isa.def"
#undef FBMM_ISA

typedef struct {
    const fbmm_engine *engine;      /* NULL: not compiled in */
    const char *features;           /* space-separated __builtin_cpu_supports names */
    int role;
} isa_row;

static const isa_row table[] = {
#define FBMM_ISA(name, arch, vbytes, flags, features, role) { &fbmm_engine_##name, features, role },
#include "isa.def"
#undef FBMM_ISA
};
#undef FBMM_BLOCKS
#undef FBMM_SMALL

#define TABLE_ROWS ((int)(sizeof table / sizeof table[0]))

/* The compiled variants, in the table's order, native ones first: the
 * first supported entry is chosen at import, and a test-only variant comes
 * after the baseline, which every CPU runs, so it is only used when a test
 * asks for it. */
static const isa_row *compiled(int i)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int r = 0; r < TABLE_ROWS; r++) {
            if (!table[r].engine || table[r].role != (pass ? FBMM_ISA_TEST_ONLY : FBMM_ISA_NATIVE))
                continue;
            if (i-- == 0) return &table[r];
        }
    }
    return 0;
}

static const isa_row *row_of(const fbmm_engine *e)
{
    for (int r = 0; r < TABLE_ROWS; r++)
        if (e && table[r].engine == e) return &table[r];
    return 0;
}

int fbmm_num_engines(void)
{
    int n = 0;
    while (compiled(n)) n++;
    return n;
}

const fbmm_engine *fbmm_engine_at(int i)
{
    const isa_row *row = i >= 0 ? compiled(i) : 0;
    return row ? row->engine : 0;
}

int fbmm_engine_test_only(const fbmm_engine *e)
{
    const isa_row *row = row_of(e);
    return row && row->role == FBMM_ISA_TEST_ONLY;
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#  define FBMM_X86_DETECT 1
#endif
/*
 * AVX512-BF16 and AMX, read from CPUID itself: __builtin_cpu_supports knows
 * their names only in recent compilers (GCC 11 on; Clang later, and not the
 * same release for each), and a name it does not know fails the build.
 *   CPUID.(EAX=7, ECX=1):EAX bit 5    AVX512_BF16
 *   CPUID.(EAX=7, ECX=0):EDX bit 22   AMX-BF16;  bit 24  AMX-TILE
 * Whether the OS saves the registers: AVX512-BF16 uses the ZMM state that
 * the avx512 engine's own check (avx512f) covers; AMX's tile data is granted
 * per process (fbmm_amx_bf16_usable).
 */
#if defined(FBMM_X86_DETECT)
#  include <cpuid.h>
static int cpuid_bit(unsigned leaf, unsigned sub, int reg, int bit)
{
    unsigned r[4] = {0, 0, 0, 0};       /* eax, ebx, ecx, edx */
    if (__get_cpuid_max(0, 0) < leaf) return 0;
    if (sub > 0) {                      /* sub-leaf 0's EAX: the last sub-leaf */
        __cpuid_count(leaf, 0, r[0], r[1], r[2], r[3]);
        if (r[0] < sub) return 0;
    }
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    return (r[reg] >> bit) & 1;
}
#endif

/* Asked once: CPUID traps to the hypervisor in a VM (microseconds), and the
 * engine asks on every bfloat16 (and small-integer) tile. `probe` answers;
 * *state keeps the answer (-1: not asked yet). */
static int ask_once(int *state, int (*probe)(void))
{
    int s = __atomic_load_n(state, __ATOMIC_ACQUIRE);
    if (s >= 0) return s;
    s = probe();
    __atomic_store_n(state, s, __ATOMIC_RELEASE);
    return s;
}

static int probe_avx512bf16(void)
{
#if defined(FBMM_X86_DETECT)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && cpuid_bit(7, 1, 0, 5);
#else
    return 0;
#endif
}

static int probe_avx512vnni(void)
{
#if defined(FBMM_X86_DETECT)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

/* AVX-VNNI: CPUID.(EAX=7, ECX=1):EAX bit 4 (read from CPUID, like AVX512-BF16:
 * __builtin_cpu_supports knows "avxvnni" from GCC 11 only); its YMM state
 * is the avx2 engine's own check. */
static int probe_avxvnni(void)
{
#if defined(FBMM_X86_DETECT)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && cpuid_bit(7, 1, 0, 4);
#else
    return 0;
#endif
}

static int avx512bf16_state = -1, avx512vnni_state = -1, avxvnni_state = -1;

int fbmm_cpu_has_avx512bf16(void) { return ask_once(&avx512bf16_state, probe_avx512bf16); }
int fbmm_cpu_has_avx512vnni(void) { return ask_once(&avx512vnni_state, probe_avx512vnni); }
int fbmm_cpu_has_avxvnni(void) { return ask_once(&avxvnni_state, probe_avxvnni); }

/* The vendor, CPUID leaf 0's EBX-EDX-ECX: "AuthenticAMD" (and Hygon's
 * "HygonGenuine", a Zen core). AMD's prefetchers start a short row's stream
 * late, and prefetching the next A rows gains 2-11% there (block_sizes.h);
 * on an Intel Xeon the burst of prefetches stalls the loads instead:
 * 64x128x128x64 float32 129 -> 136 GFLOP/s, float64 65 -> 71 without it. */
static int probe_prefetch_a_rows(void)
{
#if defined(FBMM_X86_DETECT)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return 1;
    return (ebx == 0x68747541u && edx == 0x69746e65u && ecx == 0x444d4163u) ||  /* AuthenticAMD */
           (ebx == 0x6f677948u && edx == 0x6e65476eu && ecx == 0x656e6975u);    /* HygonGenuine */
#else
    return 1;
#endif
}

static int prefetch_a_rows_state = -1;

int fbmm_cpu_prefetch_a_rows(void) { return ask_once(&prefetch_a_rows_state, probe_prefetch_a_rows); }

static int cpu_has_amx_bf16(void)
{
#if defined(FBMM_X86_DETECT)
    return cpuid_bit(7, 0, 3, 24) && cpuid_bit(7, 0, 3, 22);
#else
    return 0;
#endif
}

/* The CPU features fastbmm asks about, by __builtin_cpu_supports's names
 * (which must be string literals: hence one line each). */
typedef struct { const char *name; int present; } cpu_feature;

static int cpu_features(cpu_feature *out, int max)
{
    int n = 0;
#if defined(FBMM_X86_DETECT)
#  define FEATURE(s) if (n < max) { out[n].name = s; out[n].present = __builtin_cpu_supports(s) != 0; n++; }
    __builtin_cpu_init();
    FEATURE("sse2") FEATURE("sse4.2") FEATURE("avx") FEATURE("avx2") FEATURE("fma")
    FEATURE("f16c") FEATURE("avx512f") FEATURE("avx512dq") FEATURE("avx512bw")
    FEATURE("avx512vl") FEATURE("avx512vnni")
    if (n + 3 < max) {                   /* read from CPUID: see above */
        out[n].name = "avxvnni"; out[n].present = fbmm_cpu_has_avxvnni(); n++;
        out[n].name = "avx512bf16"; out[n].present = fbmm_cpu_has_avx512bf16(); n++;
        out[n].name = "amx-tile"; out[n].present = cpuid_bit(7, 0, 3, 24); n++;
        out[n].name = "amx-bf16"; out[n].present = cpuid_bit(7, 0, 3, 22); n++;
    }
#  undef FEATURE
#elif defined(__aarch64__)
    if (n < max) { out[n].name = "neon"; out[n].present = 1; n++; }
#endif
    return n;
}

static int has_feature(const cpu_feature *f, int nf, const char *name, size_t len)
{
    for (int i = 0; i < nf; i++)
        if (strlen(f[i].name) == len && memcmp(f[i].name, name, len) == 0) return f[i].present;
    return 0;   /* a feature this file does not know: never assume it */
}

int fbmm_engine_supported(const fbmm_engine *e)
{
    const isa_row *row = row_of(e);
    if (!row) return 0;
    cpu_feature f[32];
    int nf = cpu_features(f, 32);
    const char *s = row->features;
    while (*s) {
        while (*s == ' ') s++;
        size_t len = strcspn(s, " ");
        if (len && !has_feature(f, nf, s, len)) return 0;
        s += len;
    }
    return 1;
}

const char *fbmm_cpu_features(void)
{
    static char buf[192];
    cpu_feature f[32];
    int nf = cpu_features(f, 32);
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < nf; i++) {
        if (!f[i].present) continue;
        const char *s = f[i].name;
        if (len && len + 1 < sizeof buf) buf[len++] = ' ';
        while (*s && len + 1 < sizeof buf) buf[len++] = *s++;
        buf[len] = 0;
    }
    return buf;
}

/*
 * AMX: the CPU reports the tiles and their bfloat16 dot product, and the OS
 * lets this process use the tile data state. Linux (5.16 on) enables the
 * 8 KiB of tile registers per process only on request: without
 * arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) the first tile
 * instruction kills the process (SIGILL). Asked once; the answer (granted
 * or not, or an OS that has no such call) is kept. Races between threads
 * asking at once only repeat the same request.
 */
int fbmm_amx_bf16_usable(void)
{
    static int state = -1;        /* -1: not asked yet; 0 or 1 */
    int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    if (s >= 0) return s;
    s = 0;
#if defined(FBMM_X86_DETECT) && defined(__linux__) && defined(__x86_64__) && \
    defined(SYS_arch_prctl)
    if (cpu_has_amx_bf16()) {
        enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023,
               XFEATURE_XTILEDATA = 18 };
        unsigned long granted = 0;
        if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 &&
            syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &granted) == 0)
            s = (granted >> XFEATURE_XTILEDATA) & 1;
    }
#endif
    __atomic_store_n(&state, s, __ATOMIC_RELEASE);
    return s;
}
