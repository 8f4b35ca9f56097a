/*
 * elements.h -- the element formats that dtypes.def's `in` and `out` columns
 * name. Format E has
 *     fbmm_E_t              its storage type (the bits in memory)
 *     fbmm_load_E(p)        the element at char *p, widened exactly to its
 *                           family's accumulator type
 *     fbmm_store_E(p, v)    v narrowed to E and written at p
 * Every access goes through memcpy: operands may be misaligned and strided by
 * any number of bytes (memcpy of a constant size is one plain move).
 *
 * Integers widen into the unsigned accumulators of the u32/u64 families:
 * signed ones sign-extend first, so that the unsigned lane holds their two's
 * complement, and narrowing keeps the low bits (the wrap torch's and C's
 * integer arithmetic give).
 */
#ifndef FASTBMM_ELEMENTS_H
#define FASTBMM_ELEMENTS_H

#include <stdint.h>
#include <string.h>
#include "half.h"

typedef float fbmm_f32_t;
typedef double fbmm_f64_t;
typedef uint16_t fbmm_f16_t;       /* IEEE binary16 bits */
typedef uint16_t fbmm_bf16_t;      /* bfloat16 bits: the top half of a binary32 */
typedef int8_t fbmm_i8_t;
typedef uint8_t fbmm_u8_t;
typedef int16_t fbmm_i16_t;
typedef int32_t fbmm_i32_t;
typedef int64_t fbmm_i64_t;

static inline float fbmm_load_f32(const char *p) { float v; memcpy(&v, p, sizeof v); return v; }
static inline double fbmm_load_f64(const char *p) { double v; memcpy(&v, p, sizeof v); return v; }
static inline float fbmm_load_f16(const char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return fbmm_half_to_float(v);
}
/* bfloat16 is binary32 with the low 16 bits cut off: widening is exact, a shift */
static inline float fbmm_load_bf16(const char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    uint32_t bits = (uint32_t)v << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
static inline uint32_t fbmm_load_i8(const char *p) { int8_t v; memcpy(&v, p, 1); return (uint32_t)(int32_t)v; }
static inline uint32_t fbmm_load_u8(const char *p) { uint8_t v; memcpy(&v, p, 1); return v; }
static inline uint32_t fbmm_load_i16(const char *p) { int16_t v; memcpy(&v, p, 2); return (uint32_t)(int32_t)v; }
static inline uint32_t fbmm_load_i32(const char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t fbmm_load_i64(const char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static inline void fbmm_store_f32(char *p, float v) { memcpy(p, &v, sizeof v); }
static inline void fbmm_store_f64(char *p, double v) { memcpy(p, &v, sizeof v); }
/* round to nearest even, once (half.h) */
static inline void fbmm_store_f16(char *p, float v)
{
    uint16_t h = fbmm_float_to_half(v);
    memcpy(p, &h, sizeof h);
}
/* Round to nearest even, once, as torch's c10::BFloat16 and ml_dtypes do.
 * The trap: adding the rounding bias to the whole bit pattern carries a
 * mantissa overflow into the exponent (up to infinity), as it must, but it
 * would also turn a NaN whose payload sits in the low bits into infinity:
 * NaNs are kept NaN (quiet, sign kept) before rounding. */
static inline uint16_t fbmm_float_to_bf16(float v)
{
    uint32_t x;
    memcpy(&x, &v, sizeof x);
    const uint16_t nan = (uint16_t)((x >> 16) | 0x0040u);
    const uint16_t rne = (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
    return (x & 0x7fffffffu) > 0x7f800000u ? nan : rne;  /* a select: loops vectorise */
}
static inline void fbmm_store_bf16(char *p, float v)
{
    uint16_t h = fbmm_float_to_bf16(v);
    memcpy(p, &h, sizeof h);
}
static inline void fbmm_store_i8(char *p, uint32_t v) { uint8_t b = (uint8_t)v; memcpy(p, &b, 1); }
static inline void fbmm_store_u8(char *p, uint32_t v) { uint8_t b = (uint8_t)v; memcpy(p, &b, 1); }
static inline void fbmm_store_i16(char *p, uint32_t v) { uint16_t b = (uint16_t)v; memcpy(p, &b, 2); }
static inline void fbmm_store_i32(char *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void fbmm_store_i64(char *p, uint64_t v) { memcpy(p, &v, 8); }


/*
 * fbmm_copy_short(dst, src, n): memcpy of n <= 128 bytes (non-overlapping)
 * without a library call. The trap: memcpy of a run-time size is a call to libc's
 * memcpy, tens of cycles, as much as a whole 4x4 product of the small path,
 * which copies a row of B in and a row of C out per row. Two overlapping
 * moves of a constant size k cover any n in [k, 2k].
 */
static inline void fbmm_copy_short(void *dst, const void *src, size_t n)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
#define FBMM_COPY_TWO(K)                                                  \
    do {                                                                  \
        char head[K], tail[K];                                            \
        memcpy(head, s, K);                                               \
        memcpy(tail, s + n - K, K);                                       \
        memcpy(d, head, K);                                               \
        memcpy(d + n - K, tail, K);                                       \
    } while (0)
    if (n > 64) FBMM_COPY_TWO(64);
    else if (n >= 32) FBMM_COPY_TWO(32);
    else if (n >= 16) FBMM_COPY_TWO(16);
    else if (n >= 8) FBMM_COPY_TWO(8);
    else if (n >= 4) FBMM_COPY_TWO(4);
    else {      /* (a byte loop would become a call to memcpy again) */
        if (n & 2) memcpy(d, s, 2);
        if (n & 1) memcpy(d + (n & 2), s + (n & 2), 1);
    }
#undef FBMM_COPY_TWO
}

/* fbmm_copy_row(dst, src, n): the same for any n (a row of B in the small
 * path: up to FBMM_SMALL_MAX doubles), 64 bytes at a time, then the rest. */
static inline void fbmm_copy_row(void *dst, const void *src, size_t n)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
    for (; n > 128; n -= 64, d += 64, s += 64) memcpy(d, s, 64);
    fbmm_copy_short(d, s, n);
}

/*
 * fbmm_widen_E(dst, src, n): n consecutive elements at src, widened into
 * dst[0 .. n) -- the packing of a contiguous row. A constant element stride
 * lets the compiler vectorise the widening (bfloat16's shift, the integers'
 * sign extension); float16 uses AVX-512F's 16-wide vcvtph2ps, then F16C's
 * 8-wide one, where the variant has them (the scalar _cvtsh_ss of
 * fbmm_load_f16 does not vectorise); fbmm_narrow_f16 the same, back.
 */
static inline void fbmm_widen_f32(float *d, const char *s, int64_t n) { memcpy(d, s, (size_t)n * 4); }
static inline void fbmm_widen_f64(double *d, const char *s, int64_t n) { memcpy(d, s, (size_t)n * 8); }
static inline void fbmm_widen_i32(uint32_t *d, const char *s, int64_t n) { memcpy(d, s, (size_t)n * 4); }
static inline void fbmm_widen_i64(uint64_t *d, const char *s, int64_t n) { memcpy(d, s, (size_t)n * 8); }
static inline void fbmm_widen_bf16(float *d, const char *s, int64_t n)
{
    for (int64_t j = 0; j < n; j++) d[j] = fbmm_load_bf16(s + 2 * j);
}
static inline void fbmm_widen_i8(uint32_t *d, const char *s, int64_t n)
{
    for (int64_t j = 0; j < n; j++) d[j] = fbmm_load_i8(s + j);
}
static inline void fbmm_widen_u8(uint32_t *d, const char *s, int64_t n)
{
    for (int64_t j = 0; j < n; j++) d[j] = fbmm_load_u8(s + j);
}
static inline void fbmm_widen_i16(uint32_t *d, const char *s, int64_t n)
{
    for (int64_t j = 0; j < n; j++) d[j] = fbmm_load_i16(s + 2 * j);
}

/*
 * fbmm_narrow_E(dst, src, n): n accumulator values at src rounded (once) to
 * format E at dst, consecutive -- a row of a tile store with no epilogue.
 * The rounding is fbmm_store_E's (written so that the compiler vectorises
 * it: bfloat16's NaN test is a select, not a branch); float16 uses F16C's
 * 8-wide vcvtps2ph where the variant has it (_cvtss_sh does not vectorise).
 */
static inline void fbmm_narrow_f32(char *d, const float *s, int64_t n) { memcpy(d, s, (size_t)n * 4); }
static inline void fbmm_narrow_f64(char *d, const double *s, int64_t n) { memcpy(d, s, (size_t)n * 8); }
static inline void fbmm_narrow_i32(char *d, const uint32_t *s, int64_t n) { memcpy(d, s, (size_t)n * 4); }
static inline void fbmm_narrow_i64(char *d, const uint64_t *s, int64_t n) { memcpy(d, s, (size_t)n * 8); }
/* the others: fbmm_store_E at a constant stride, which the compiler vectorises */
#define FBMM_NARROW_BY_STORE(E, ACC, SIZE)                                     \
    static inline void fbmm_narrow_##E(char *d, const ACC *s, int64_t n)       \
    {                                                                          \
        for (int64_t j = 0; j < n; j++) fbmm_store_##E(d + (SIZE) * j, s[j]);  \
    }
FBMM_NARROW_BY_STORE(bf16, float, 2)
FBMM_NARROW_BY_STORE(i16, uint32_t, 2)
#undef FBMM_NARROW_BY_STORE
/* The 8-bit formats 16 at a time (vpmovdb). The trap: left to itself, GCC
 * vectorises their loop by 64 lanes only, so every row of a 32-wide tile
 * took its scalar remainder. */
#define FBMM_NARROW_8BIT(E)                                                      \
    static inline void fbmm_narrow_##E(char *d, const uint32_t *s, int64_t n)   \
    {                                                                            \
        int64_t j = 0;                                                           \
        for (; j + 16 <= n; j += 16) {                                           \
            uint8_t t[16];                                                       \
            for (int i = 0; i < 16; i++) t[i] = (uint8_t)s[j + i];               \
            memcpy(d + j, t, 16);                                                \
        }                                                                        \
        for (; j < n; j++) fbmm_store_##E(d + j, s[j]);                          \
    }
FBMM_NARROW_8BIT(i8)
FBMM_NARROW_8BIT(u8)
#undef FBMM_NARROW_8BIT
static inline void fbmm_narrow_f16(char *d, const float *s, int64_t n)
{
    int64_t j = 0;
#if defined(__AVX512F__)
    for (; j + 16 <= n; j += 16)
        _mm256_storeu_si256((__m256i *)(d + 2 * j),
                            _mm512_cvtps_ph(_mm512_loadu_ps(s + j),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
#if defined(__F16C__)
    for (; j + 8 <= n; j += 8)
        _mm_storeu_si128((__m128i *)(d + 2 * j),
                         _mm256_cvtps_ph(_mm256_loadu_ps(s + j), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; j < n; j++) fbmm_store_f16(d + 2 * j, s[j]);
}

/*
 * FBMM_PAIR_DOT_E: 1 for the formats with a pair-dot nest (gemm_pairdot.h,
 * AVX512-BF16's vdpbf16ps), which kind_real.h tests with #if; 0 for the rest.
 */
#define FBMM_PAIR_DOT_f32 0
#define FBMM_PAIR_DOT_f64 0
#define FBMM_PAIR_DOT_f16 0
#define FBMM_PAIR_DOT_bf16 1
#define FBMM_PAIR_DOT_i8 0
#define FBMM_PAIR_DOT_u8 0
#define FBMM_PAIR_DOT_i16 0
#define FBMM_PAIR_DOT_i32 0
#define FBMM_PAIR_DOT_i64 0

/*
 * FBMM_VNNI_E: 1 for the integer formats whose values fit in a signed 16-bit
 * word (int8, uint8, int16), which have the AVX512-VNNI pair nest
 * (gemm_vnni.h, vpdpwssd); 0 for the rest (uint16 would not fit: 65535 is
 * no int16, and fastbmm has no uint16 row).
 */
#define FBMM_VNNI_f32 0
#define FBMM_VNNI_f64 0
#define FBMM_VNNI_f16 0
#define FBMM_VNNI_bf16 0
#define FBMM_VNNI_i8 1
#define FBMM_VNNI_u8 1
#define FBMM_VNNI_i16 1
#define FBMM_VNNI_i32 0
#define FBMM_VNNI_i64 0

static inline void fbmm_widen_f16(float *dst, const char *src, int64_t n)
{
    int64_t j = 0;
#if defined(__AVX512F__)
    for (; j + 16 <= n; j += 16)
        _mm512_storeu_ps(dst + j, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + 2 * j))));
#endif
#if defined(__F16C__)
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * j))));
#endif
    for (; j < n; j++) dst[j] = fbmm_load_f16(src + 2 * j);
}

#endif
