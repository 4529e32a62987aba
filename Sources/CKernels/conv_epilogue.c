#include "kernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include "avx512.h"

int precis_avx512(void) { return precis_kernel_level() == 2; }

AVX512 void precis_conv_finish_f32(const float *out, int columns, int channels, int images, int band_rows,
                                   int row_width, int oh, int ow, const float *bias, int relu, int pooled, float *y) {
    for (int j = 0; j < images; j++) {
        for (int f = 0; f < channels; f++) {
            const float *src = out + (size_t)f * columns + (size_t)j * band_rows * row_width;
            float *plane = y + ((size_t)j * channels + f) * oh * ow;
            __m512 b = _mm512_set1_ps(bias[f]);
            for (int oy = 0; oy < oh; oy++) {
                float *dst = plane + (size_t)oy * ow;
                if (!pooled) {
                    const float *row = src + (size_t)oy * row_width;
                    for (int ox = 0; ox < ow; ox += 16) {
                        __mmask16 m = lanes(ow - ox);
                        _mm512_mask_storeu_ps(dst + ox, m, activate(_mm512_maskz_loadu_ps(m, row + ox), b, relu));
                    }
                    continue;
                }
                const float *r0 = src + (size_t)2 * oy * row_width, *r1 = r0 + row_width;
                for (int ox = 0; ox < ow; ox += 16) {
                    int n = ow - ox < 16 ? ow - ox : 16;
                    __mmask16 lo = lanes(2 * n), hi = lanes(2 * n - 16);
                    __m512 h = pool16(activate(_mm512_maskz_loadu_ps(lo, r0 + 2 * ox), b, relu),
                                      activate(_mm512_maskz_loadu_ps(hi, r0 + 2 * ox + 16), b, relu),
                                      activate(_mm512_maskz_loadu_ps(lo, r1 + 2 * ox), b, relu),
                                      activate(_mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16), b, relu),
                                      _mm512_setzero_si512(), 0, NULL);
                    _mm512_mask_storeu_ps(dst + ox, lanes(n), h);
                }
            }
        }
    }
}

AVX512 void precis_max_pool2_f32(const float *x, int planes, int h, int w, float *out, int32_t *arg) {
    int oh = h / 2, ow = w / 2;
    for (int p = 0; p < planes; p++) {
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = x + ((size_t)p * h + 2 * oy) * w, *r1 = r0 + w;
            size_t o = ((size_t)p * oh + oy) * ow;
            for (int ox = 0; ox < ow; ox += 16) {
                int n = ow - ox < 16 ? ow - ox : 16;
                __mmask16 lo = lanes(2 * n), hi = lanes(2 * n - 16);
                __m512 t0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * ox), t1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * ox + 16);
                __m512 b0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * ox), b1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16);
                if (!arg) {
                    __m512 best = pool16(t0, t1, b0, b1, _mm512_setzero_si512(), w, NULL);
                    _mm512_mask_storeu_ps(out + o + ox, lanes(n), best);
                    continue;
                }
                // Window i's top-left element is at 2·oy·w + 2·(ox + i) in its plane.
                __m512i at = _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox), _mm512_loadu_si512(even_lanes)),
                        from;
                _mm512_mask_storeu_ps(out + o + ox, lanes(n), pool16(t0, t1, b0, b1, at, w, &from));
                _mm512_mask_storeu_epi32(arg + o + ox, lanes(n), from);
            }
        }
    }
}

// One row of `count` half sums plus `bias`, each rounded to half (a float32 sum of two halves
// rounds to the half sum exactly), with `relu` 0 where <= 0 (NaN stays NaN): into t as floats.
INLINE AVX2 void half_row(const uint16_t *x, int count, float bias, int relu, float *t) {
    __m256 b = _mm256_set1_ps(bias), zero = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))), b);
        __m256 s = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm256_storeu_ps(t + i, relu ? _mm256_blendv_ps(s, zero, _mm256_cmp_ps(s, zero, _CMP_LE_OQ)) : s);
    }
    for (; i < count; i++) {
        float s = _cvtsh_ss(_cvtss_sh(_cvtsh_ss(x[i]) + bias, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        t[i] = relu && s <= 0 ? 0 : s;
    }
}

// The half bits of a float that holds a half value.
INLINE AVX2 uint16_t half_bits(float x) { return _cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

// Whether v replaces best in max pooling: larger, or a NaN over a number.
INLINE int beats(float best, float v) { return v > best || (v != v && best == best); }

AVX2 void precis_conv_finish_f16(const uint16_t *out, int columns, int channels, int images, int band_rows,
                                 int row_width, int oh, int ow, const uint16_t *bias, int relu, int pooled,
                                 uint16_t *y) {
    float *t = malloc(sizeof(float) * 4 * (size_t)(ow + 8));
    for (int j = 0; j < images; j++) {
        for (int f = 0; f < channels; f++) {
            const uint16_t *src = out + (size_t)f * columns + (size_t)j * band_rows * row_width;
            uint16_t *dst = y + ((size_t)j * channels + f) * oh * ow;
            float b = _cvtsh_ss(bias[f]);
            for (int oy = 0; oy < oh; oy++, dst += ow) {
                if (!pooled) {
                    half_row(src + (size_t)oy * row_width, ow, b, relu, t);
                    for (int ox = 0; ox < ow; ox++) dst[ox] = half_bits(t[ox]);
                    continue;
                }
                float *t1 = t + 2 * (ow + 4);
                half_row(src + (size_t)2 * oy * row_width, 2 * ow, b, relu, t);
                half_row(src + (size_t)(2 * oy + 1) * row_width, 2 * ow, b, relu, t1);
                for (int ox = 0; ox < ow; ox++) {
                    float best = t[2 * ox], next[3] = {t[2 * ox + 1], t1[2 * ox], t1[2 * ox + 1]};
                    for (int k = 0; k < 3; k++) best = beats(best, next[k]) ? next[k] : best;
                    dst[ox] = half_bits(best);
                }
            }
        }
    }
    free(t);
}

#else

int precis_avx512(void) { return 0; }

void precis_conv_finish_f32(const float *out, int columns, int channels, int images, int band_rows, int row_width,
                            int oh, int ow, const float *bias, int relu, int pooled, float *y) {
    (void)out, (void)columns, (void)channels, (void)images, (void)band_rows, (void)row_width, (void)oh, (void)ow;
    (void)bias, (void)relu, (void)pooled, (void)y;
    abort();
}

void precis_max_pool2_f32(const float *x, int planes, int h, int w, float *out, int32_t *arg) {
    (void)x, (void)planes, (void)h, (void)w, (void)out, (void)arg;
    abort();
}

void precis_conv_finish_f16(const uint16_t *out, int columns, int channels, int images, int band_rows,
                            int row_width, int oh, int ow, const uint16_t *bias, int relu, int pooled, uint16_t *y) {
    (void)out, (void)columns, (void)channels, (void)images, (void)band_rows, (void)row_width, (void)oh, (void)ow;
    (void)bias, (void)relu, (void)pooled, (void)y;
    abort();
}

#endif
