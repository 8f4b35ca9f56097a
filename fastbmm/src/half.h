/*
 * half.h -- IEEE binary16 <-> binary32 conversion, portable C.
 *
 * float16 operands are widened exactly when packed; the float32 sum is
 * rounded to binary16 once, at the end, with round-to-nearest-even (what
 * torch does on the CPU). The trap in narrowing: a mantissa that rounds up
 * may carry into the exponent (and up to infinity); adding the rounding
 * increment to the whole bit pattern gets that carry right for free.
 */
#ifndef FASTBMM_HALF_H
#define FASTBMM_HALF_H

#include <stdint.h>
#include <string.h>

/*
 * The variants compiled with F16C (avx2, avx512: setup.py's flags, so
 * __F16C__ is defined in their translation units only) convert with one
 * instruction each way; round-to-nearest-even is the immediate 0
 * (_MM_FROUND_TO_NEAREST_INT), independent of MXCSR. The baseline variant
 * keeps the portable code below, which gives the same bits (NaNs: quiet,
 * payload truncated, as the hardware does).
 */
#if defined(__F16C__)
#include <immintrin.h>
static inline float fbmm_half_to_float(uint16_t h) { return _cvtsh_ss(h); }
static inline uint16_t fbmm_float_to_half(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
#else

static inline float fbmm_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {                      /* inf / nan: keep the payload */
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {                  /* normal */
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {                  /* +-0 */
        bits = sign;
    } else {                                /* subnormal: exact as a float */
        float f = (float)man * (1.0f / 16777216.0f);   /* man * 2^-24 */
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static inline uint16_t fbmm_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {                /* inf or nan (quiet it, keep top payload) */
        if (ax == 0x7f800000u) return sign | 0x7c00u;
        return sign | 0x7e00u | (uint16_t)((ax >> 13) & 0x3ffu);
    }
    if (ax >= 0x477ff000u) {                /* rounds to >= 65520: overflow to inf */
        return sign | 0x7c00u;
    }
    if (ax >= 0x38800000u) {                /* normal half (>= 2^-14) */
        uint32_t r = ax - 0x38000000u;      /* rebias exponent 127 -> 15 */
        /* round to nearest even on the 13 dropped bits */
        r += 0x0fffu + ((r >> 13) & 1u);
        return sign | (uint16_t)(r >> 13);
    }
    if (ax < 0x33000000u) {                 /* below half the smallest subnormal */
        return sign;                         /* (2^-25 exactly ties to even: 0) */
    }
    /* subnormal half: value = man * 2^-24 */
    {
        uint32_t e = ax >> 23;               /* 102 .. 112 */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e;           /* 14 .. 24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1u))) q += 1u;
        return sign | (uint16_t)q;           /* q may carry to 0x400: the smallest normal */
    }
}
#endif /* __F16C__ */

#endif
