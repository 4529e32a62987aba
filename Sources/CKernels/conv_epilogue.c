#include "kernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

int precis_avx512(void) { return __builtin_cpu_supports("avx512f"); }

static inline __mmask16 lanes(int count) {
    return count >= 16 ? 0xFFFF : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

// acc + bias, and with relu 0 where that is <= 0 (NaN stays NaN).
static inline __attribute__((always_inline)) AVX512 __m512 activate(__m512 acc, __m512 bias, int relu) {
    __m512 s = _mm512_add_ps(acc, bias);
    return relu ? _mm512_mask_mov_ps(s, _mm512_cmp_ps_mask(s, _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps())
                : s;
}

// The lanes where v beats best in max pooling: larger, or a NaN over a number.
static inline __attribute__((always_inline)) AVX512 __mmask16 wins(__m512 best, __m512 v) {
    return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
           (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
}

// v where it beats best, else best.
static inline __attribute__((always_inline)) AVX512 __m512 larger(__m512 best, __m512 v) {
    return _mm512_mask_mov_ps(best, wins(best, v), v);
}

static const int even_lanes[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
static const int odd_lanes[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};

// The maxima of 16 2 x 2 windows, from their top rows (t0, t1: 32 values) and bottom rows (b0, b1),
// taken in window order (top left, top right, bottom left, bottom right) as `MaxPooling` does.
static inline __attribute__((always_inline)) AVX512 __m512 pool16(__m512 t0, __m512 t1, __m512 b0, __m512 b1) {
    const __m512i even = _mm512_loadu_si512(even_lanes), odd = _mm512_loadu_si512(odd_lanes);
    __m512 best = larger(_mm512_permutex2var_ps(t0, even, t1), _mm512_permutex2var_ps(t0, odd, t1));
    best = larger(best, _mm512_permutex2var_ps(b0, even, b1));
    return larger(best, _mm512_permutex2var_ps(b0, odd, b1));
}

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
                                      activate(_mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16), b, relu));
                    _mm512_mask_storeu_ps(dst + ox, lanes(n), h);
                }
            }
        }
    }
}

AVX512 void precis_max_pool2_arg_f32(const float *x, int planes, int h, int w, float *out, int32_t *arg) {
    const __m512i even = _mm512_loadu_si512(even_lanes), odd = _mm512_loadu_si512(odd_lanes);
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
                // Window i's top-left element is at 2·oy·w + 2·(ox + i) in its plane.
                __m512i at = _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox), _mm512_loadu_si512(even_lanes));
                __m512 best = _mm512_permutex2var_ps(t0, even, t1);
                __m512 next[3] = {_mm512_permutex2var_ps(t0, odd, t1), _mm512_permutex2var_ps(b0, even, b1),
                                  _mm512_permutex2var_ps(b0, odd, b1)};
                int offsets[3] = {1, w, w + 1};
                __m512i from = at;
                for (int k = 0; k < 3; k++) {
                    __mmask16 m = wins(best, next[k]);
                    best = _mm512_mask_mov_ps(best, m, next[k]);
                    from = _mm512_mask_mov_epi32(from, m, _mm512_add_epi32(at, _mm512_set1_epi32(offsets[k])));
                }
                _mm512_mask_storeu_ps(out + o + ox, lanes(n), best);
                _mm512_mask_storeu_epi32(arg + o + ox, lanes(n), from);
            }
        }
    }
}

AVX512 void precis_max_pool2_f32(const float *x, int planes, int h, int w, float *out) {
    int oh = h / 2, ow = w / 2;
    for (int p = 0; p < planes; p++) {
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = x + ((size_t)p * h + 2 * oy) * w, *r1 = r0 + w;
            float *dst = out + ((size_t)p * oh + oy) * ow;
            for (int ox = 0; ox < ow; ox += 16) {
                int n = ow - ox < 16 ? ow - ox : 16;
                __mmask16 lo = lanes(2 * n), hi = lanes(2 * n - 16);
                __m512 m = pool16(_mm512_maskz_loadu_ps(lo, r0 + 2 * ox), _mm512_maskz_loadu_ps(hi, r0 + 2 * ox + 16),
                                  _mm512_maskz_loadu_ps(lo, r1 + 2 * ox), _mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16));
                _mm512_mask_storeu_ps(dst + ox, lanes(n), m);
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

void precis_max_pool2_f32(const float *x, int planes, int h, int w, float *out) {
    (void)x, (void)planes, (void)h, (void)w, (void)out;
    abort();
}

void precis_max_pool2_arg_f32(const float *x, int planes, int h, int w, float *out, int32_t *arg) {
    (void)x, (void)planes, (void)h, (void)w, (void)out, (void)arg;
    abort();
}

#endif
