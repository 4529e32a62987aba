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

#endif
