#include "kernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include "avx512.h"

AVX512 void precis_pixel_major_f32(const float *d, const float *mask, int images, int channels, int pixels, int ld,
                                   float *out) {
    const __m512 zero = _mm512_setzero_ps();
    for (int j = 0; j < images; j++) {
        for (int block = 0; block * 16 < ld; block++) {
            for (int p = 0; p < pixels; p += 16) {
                __mmask16 m = lanes(pixels - p);
                __m512 v[16];
                #pragma unroll
                for (int f = 0; f < 16; f++) {
                    int ch = block * 16 + f;
                    if (ch >= channels) {
                        v[f] = zero;
                        continue;
                    }
                    size_t at = ((size_t)j * channels + ch) * pixels + p;
                    v[f] = _mm512_maskz_loadu_ps(m, d + at);
                    if (mask) {
                        __m512 r = _mm512_maskz_loadu_ps(m, mask + at);
                        v[f] = _mm512_mask_mov_ps(v[f], _mm512_cmp_ps_mask(r, zero, _CMP_LE_OQ), zero);
                    }
                }
                transpose16(v);
                int n = pixels - p < 16 ? pixels - p : 16;
                for (int q = 0; q < n; q++)
                    _mm512_storeu_ps(out + ((size_t)j * pixels + p + q) * ld + block * 16, v[q]);
            }
        }
    }
}

// acc[(g·S + ky)·S + kx] (16 filters each) = Σ over the chunk's output pixels, in order, of the
// filters' gradients at the pixel times input value (channel g, ky, kx) of its window: one fused
// multiply-add chain per weight from +0. `in` is channel 0 of the group in the padded planes.
INLINE AVX512 void weight_sums(const float *in, int plane_size, int row_width, int band_rows, int images, int oh,
                               int ow, const float *d, int ld, const int S, const int G, __m512 *acc) {
    #pragma unroll
    for (int i = 0; i < G * S * S; i++) acc[i] = _mm512_setzero_ps();
    for (int j = 0; j < images; j++) {
        for (int oy = 0; oy < oh; oy++) {
            const float *row = in + (size_t)(j * band_rows + oy) * row_width;
            const float *dp = d + (size_t)(j * oh + oy) * ow * ld;
            for (int ox = 0; ox < ow; ox++, row++, dp += ld) {
                // Hides that this pixel's tap (ky, kx) is the last pixel's (ky, kx + 1), as in row_pass.
                __asm__("" : "+r"(row));
                __m512 dv = _mm512_loadu_ps(dp);
                #pragma unroll
                for (int g = 0; g < G; g++) {
                    #pragma unroll
                    for (int ky = 0; ky < S; ky++) {
                        #pragma unroll
                        for (int kx = 0; kx < S; kx++) {
                            int t = (g * S + ky) * S + kx;
                            __m512 x = _mm512_set1_ps(row[(size_t)g * plane_size + ky * row_width + kx]);
                            acc[t] = _mm512_fmadd_ps(x, dv, acc[t]);
                        }
                    }
                }
            }
        }
    }
}

// The weight gradient of channels [ch, ch + G) for one block of 16 filters into dw (filters, C·S·S).
INLINE AVX512 void weight_group(const float *input, int plane_size, int channels, int row_width, int band_rows,
                                int images, int oh, int ow, const float *d, int ld, int filters, int block, int ch,
                                float *dw, const int S, const int G) {
    __m512 acc[28];
    weight_sums(input + (size_t)ch * plane_size, plane_size, row_width, band_rows, images, oh, ow, d + block * 16, ld,
                S, G, acc);
    float lane[16];
    for (int t = 0; t < G * S * S; t++) {
        _mm512_storeu_ps(lane, acc[t]);
        for (int f = 0; f < 16 && block * 16 + f < filters; f++)
            dw[(size_t)(block * 16 + f) * channels * S * S + (size_t)ch * S * S + t] = lane[f];
    }
}

AVX512 void precis_conv_weight_gradient_f32(const float *input, int plane_size, int channels, int row_width,
                                            int band_rows, int images, int oh, int ow, int size, const float *d,
                                            int ld, int filters, float *dw, float *db) {
    for (int block = 0; block * 16 < filters; block++) {
        if (size == 3) {
            // Channels in groups of 3 (27 chains), or of 2 where 3 do not divide them, never of 1.
            int groups = (channels + 2) / 3;
            for (int i = 0, ch = 0; i < groups; i++) {
                int n = (i + 1) * channels / groups - i * channels / groups;
                if (n == 3)
                    weight_group(input, plane_size, channels, row_width, band_rows, images, oh, ow, d, ld, filters,
                                 block, ch, dw, 3, 3);
                else if (n == 2)
                    weight_group(input, plane_size, channels, row_width, band_rows, images, oh, ow, d, ld, filters,
                                 block, ch, dw, 3, 2);
                else
                    weight_group(input, plane_size, channels, row_width, band_rows, images, oh, ow, d, ld, filters,
                                 block, ch, dw, 3, 1);
                ch += n;
            }
        } else {
            for (int ch = 0; ch < channels; ch++)
                weight_group(input, plane_size, channels, row_width, band_rows, images, oh, ow, d, ld, filters, block,
                             ch, dw, 5, 1);
        }
        __m512 sum = _mm512_setzero_ps();
        for (size_t p = 0; p < (size_t)images * oh * ow; p++)
            sum = _mm512_add_ps(sum, _mm512_loadu_ps(d + p * ld + block * 16));
        _mm512_mask_storeu_ps(db + block * 16, lanes(filters - block * 16), sum);
    }
}

#else

void precis_pixel_major_f32(const float *d, const float *mask, int images, int channels, int pixels, int ld,
                            float *out) {
    (void)d, (void)mask, (void)images, (void)channels, (void)pixels, (void)ld, (void)out;
    abort();
}

void precis_conv_weight_gradient_f32(const float *input, int plane_size, int channels, int row_width, int band_rows,
                                     int images, int oh, int ow, int size, const float *d, int ld, int filters,
                                     float *dw, float *db) {
    (void)input, (void)plane_size, (void)channels, (void)row_width, (void)band_rows, (void)images, (void)oh;
    (void)ow, (void)size, (void)d, (void)ld, (void)filters, (void)dw, (void)db;
    abort();
}

#endif
