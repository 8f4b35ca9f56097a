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
static inline void fbmm_store_i8(char *p, uint32_t v) { uint8_t b = (uint8_t)v; memcpy(p, &b, 1); }
static inline void fbmm_store_u8(char *p, uint32_t v) { uint8_t b = (uint8_t)v; memcpy(p, &b, 1); }
static inline void fbmm_store_i16(char *p, uint32_t v) { uint16_t b = (uint16_t)v; memcpy(p, &b, 2); }
static inline void fbmm_store_i32(char *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void fbmm_store_i64(char *p, uint64_t v) { memcpy(p, &v, 8); }

#endif
