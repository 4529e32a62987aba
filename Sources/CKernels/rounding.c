// Rounding to number formats, elementwise: the same loop compiled for AVX-512, for AVX2 and for any
// x86-64. Each value is rounded on its own, so every level gives the same values.
#include "kernels.h"
#include "target.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

INLINE uint32_t bits_of(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    return b;
}

INLINE float float_of(uint32_t b) {
    float x;
    memcpy(&x, &b, 4);
    return x;
}

// The grid value nearest x (ties to even), as `GridRounder` defines it.
INLINE float grid_value(const precis_grid *g, float x) {
    uint32_t bits = bits_of(x), sign = bits & 0x80000000u, a = bits & 0x7FFFFFFFu, low = (1u << g->shift) - 1;
    // Normal range: drop `shift` mantissa bits, ties to even; a carry moves into the exponent.
    uint32_t normal = (a + (low >> 1) + ((a >> g->shift) & 1)) & ~low;
    // Below it the spacing is fixed: the float32 addition rounds to it.
    uint32_t fixed = bits_of((float_of(a) + g->magic) - g->magic);
    float r = float_of(a < g->min_normal_bits ? fixed : normal);
    float v = a > 0x7F800000u ? g->nan_value : (r > g->max_value ? g->overflow : r);
    return float_of(bits_of(v) | sign);
}

// x[i] = f·grid(x[i] / d) with one scale pair (stride 0) or a pair per value (stride 1).
#define GRID_ROUND(name, attr)                                                                                         \
    static attr void name(precis_grid g, float *x, const float *d, const float *f, int64_t count,                      \
                          int64_t stride) {                                                                            \
        if (stride == 0) {                                                                                             \
            float dv = *d, fv = *f;                                                                                    \
            for (int64_t i = 0; i < count; i++) x[i] = grid_value(&g, x[i] / dv) * fv;                                 \
        } else {                                                                                                       \
            for (int64_t i = 0; i < count; i++) x[i] = grid_value(&g, x[i] / d[i * stride]) * f[i * stride];           \
        }                                                                                                              \
    }

// x[i] = (clamp(roundeven(x[i] / s) + zp, lo, hi) - zp) · s, NaN giving lo, as Swift's min and max
// take it.
#define FAKE_QUANT(name, attr)                                                                                         \
    static attr void name(float *x, int64_t count, float s, float zp, float lo, float hi) {                            \
        for (int64_t i = 0; i < count; i++) {                                                                          \
            float q = __builtin_roundevenf(x[i] / s) + zp;                                                             \
            float m = q >= lo ? q : lo;                                                                                \
            x[i] = ((m < hi ? m : hi) - zp) * s;                                                                       \
        }                                                                                                              \
    }

// x[i] rounded to bfloat16 (the upper half of its bits, to nearest even; NaN stays a quiet NaN).
#define ROUND_BFLOAT16(name, attr)                                                                                     \
    static attr void name(float *x, int64_t count) {                                                                   \
        for (int64_t i = 0; i < count; i++) {                                                                          \
            uint32_t b = bits_of(x[i]);                                                                                \
            uint32_t r = (b & 0x7FFFFFFFu) > 0x7F800000u ? (b >> 16 | 0x40) << 16                                      \
                                                         : (b + 0x7FFF + (b >> 16 & 1)) >> 16 << 16;                   \
            x[i] = float_of(r);                                                                                        \
        }                                                                                                              \
    }

GRID_ROUND(grid_round_portable, )
FAKE_QUANT(fake_quant_portable, )
ROUND_BFLOAT16(round_bfloat16_portable, )

#if defined(__x86_64__)
GRID_ROUND(grid_round_avx2, AVX2)
GRID_ROUND(grid_round_avx512, AVX512)
FAKE_QUANT(fake_quant_avx2, AVX2)
FAKE_QUANT(fake_quant_avx512, AVX512)
ROUND_BFLOAT16(round_bfloat16_avx2, AVX2)
ROUND_BFLOAT16(round_bfloat16_avx512, AVX512)

// Every value rounded to IEEE half (to nearest, ties to even) and widened back.
static AVX2 void round_half_avx2(float *x, int64_t count) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < count; i++) x[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}
#endif

void precis_grid_round(precis_grid g, float *x, const float *d, const float *f, int64_t count, int64_t stride) {
#if defined(__x86_64__)
    switch (precis_kernel_level()) {
    case 2: return grid_round_avx512(g, x, d, f, count, stride);
    case 1: return grid_round_avx2(g, x, d, f, count, stride);
    }
#endif
    grid_round_portable(g, x, d, f, count, stride);
}

void precis_fake_quant_f32(float *x, int64_t count, float scale, float zero_point, float qmin, float qmax) {
#if defined(__x86_64__)
    switch (precis_kernel_level()) {
    case 2: return fake_quant_avx512(x, count, scale, zero_point, qmin, qmax);
    case 1: return fake_quant_avx2(x, count, scale, zero_point, qmin, qmax);
    }
#endif
    fake_quant_portable(x, count, scale, zero_point, qmin, qmax);
}

void precis_round_bfloat16_f32(float *x, int64_t count) {
#if defined(__x86_64__)
    switch (precis_kernel_level()) {
    case 2: return round_bfloat16_avx512(x, count);
    case 1: return round_bfloat16_avx2(x, count);
    }
#endif
    round_bfloat16_portable(x, count);
}

void precis_round_half_f32(float *x, int64_t count) {
#if defined(__x86_64__)
    round_half_avx2(x, count);
#else
    abort();
#endif
}
