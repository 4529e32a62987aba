#include "kernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include "avx512.h"

// acc[(b·rows + r)·P + p] += the window of output pixel p of row r against the 16 filters of block
// b (of two), in ascending (channel, ky, kx): one fused multiply-add chain per output, as the GEMM
// computes it. `in` is the first pixel's window origin in channel 0's padded plane; `w` the first
// block's filters packed as (C, FH, FW, 16), the second's `block` floats further on.
static inline __attribute__((always_inline)) AVX512 void accumulate(const float *in, int plane_size, int channels,
                                                                   int row_width, int fh, int fw, const float *w,
                                                                   size_t block, const int rows, const int P,
                                                                   __m512 *acc) {
    for (int i = 0; i < 2 * rows * P; i++) acc[i] = _mm512_setzero_ps();
    for (int ch = 0; ch < channels; ch++) {
        const float *plane = in + (size_t)ch * plane_size;
        for (int ky = 0; ky < fh; ky++) {
            for (int kx = 0; kx < fw; kx++, w += 16) {
                __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + block);
                for (int r = 0; r < rows; r++) {
                    const float *src = plane + (size_t)(r + ky) * row_width + kx;
                    for (int p = 0; p < P; p++) {
                        __m512 x = _mm512_set1_ps(src[p]);
                        acc[r * P + p] = _mm512_fmadd_ps(x, w0, acc[r * P + p]);
                        acc[(rows + r) * P + p] = _mm512_fmadd_ps(x, w1, acc[(rows + r) * P + p]);
                    }
                }
            }
        }
    }
}

// Where a tile's outputs go: block b's 16 filters' planes start at y + b·block, `planes` apart.
typedef struct {
    const float *in;
    int plane_size, channels, row_width, fh, fw;
    const float *w;
    size_t weights;
    __m512 bias[2];
    int relu;
    float *y;
    size_t block, plane;
    __m512i planes;
} tile_args;

// v[0..<16] (vector p: 16 filters' outputs at pixel p) transposed: v[f] lane p = filter f at pixel p.
static inline __attribute__((always_inline)) AVX512 void transpose16(__m512 *v) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        for (int h = 0; h < 2; h++) {
            __m512d x = _mm512_castps_pd(t[4 * i + h]), y = _mm512_castps_pd(t[4 * i + h + 2]);
            u[4 * i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
            u[4 * i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
        }
    }
    // u[4i + j], 128-bit lane L: pixels 4i..4i+3 of filter 4L + j.
    for (int j = 0; j < 4; j++) {
        __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
        __m512 c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44), d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
        v[j] = _mm512_shuffle_f32x4(a, c, 0x88);
        v[4 + j] = _mm512_shuffle_f32x4(a, c, 0xDD);
        v[8 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
        v[12 + j] = _mm512_shuffle_f32x4(b, d, 0xDD);
    }
}

// R x P outputs (R rows of P, or with R = 2 two whole rows of an output P wide) for 32 filters.
// Short tiles scatter each pixel's 16 filters; wide ones are transposed in registers and written
// as 16 runs of R·P consecutive outputs (rows of P follow each other when the output is P wide).
static inline __attribute__((always_inline)) AVX512 void row_tile(const tile_args *a, const int R, const int P) {
    __m512 acc[28];
    accumulate(a->in, a->plane_size, a->channels, a->row_width, a->fh, a->fw, a->w, a->weights, R, P, acc);
    for (int b = 0; b < 2; b++) {
        const int n = R * P;
        __m512 v[16];
        for (int p = 0; p < 16; p++) v[p] = p < n ? activate(acc[b * n + p], a->bias[b], a->relu) : _mm512_setzero_ps();
        if (n < 8) {
            for (int p = 0; p < n; p++) _mm512_i32scatter_ps(a->y + b * a->block + p, a->planes, v[p], 4);
            continue;
        }
        transpose16(v);
        for (int f = 0; f < 16; f++) _mm512_mask_storeu_ps(a->y + b * a->block + f * a->plane, lanes(n), v[f]);
    }
}

// Q pooled outputs for 32 filters (2 x 2 windows, stride 2) from two rows of 2Q outputs, each
// window taken in row-major order as `MaxPooling` takes it.
static inline __attribute__((always_inline)) AVX512 void pool_tile(const tile_args *a, const int Q) {
    __m512 acc[16];
    accumulate(a->in, a->plane_size, a->channels, a->row_width, a->fh, a->fw, a->w, a->weights, 2, 2 * Q, acc);
    for (int b = 0; b < 2; b++) {
        const __m512 *top = acc + b * 4 * Q, *bottom = top + 2 * Q;
        for (int q = 0; q < Q; q++) {
            __m512 best = activate(top[2 * q], a->bias[b], a->relu);
            best = larger(best, activate(top[2 * q + 1], a->bias[b], a->relu));
            best = larger(best, activate(bottom[2 * q], a->bias[b], a->relu));
            best = larger(best, activate(bottom[2 * q + 1], a->bias[b], a->relu));
            _mm512_i32scatter_ps(a->y + b * a->block + q, a->planes, best, 4);
        }
    }
}

AVX512 void precis_conv_direct_f32(const float *input, int plane_size, int channels, int row_width, int band_rows,
                                   int images, int oh, int ow, int fh, int fw, const float *packed, int filters,
                                   const float *bias, int relu, int pooled, float *output) {
    int out_h = pooled ? oh / 2 : oh, out_w = pooled ? ow / 2 : ow, step = pooled ? 2 : 14;
    size_t weights = (size_t)channels * fh * fw * 16;
    tile_args a = {.plane_size = plane_size, .channels = channels, .row_width = row_width, .fh = fh, .fw = fw,
                   .weights = weights, .relu = relu, .block = (size_t)16 * out_h * out_w,
                   .plane = (size_t)out_h * out_w};
    a.planes = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                  _mm512_set1_epi32(out_h * out_w));
    for (int j = 0; j < images; j++) {
        for (int pair = 0; pair < filters / 32; pair++) {
            a.w = packed + (size_t)2 * pair * weights;
            a.bias[0] = _mm512_loadu_ps(bias + pair * 32);
            a.bias[1] = _mm512_loadu_ps(bias + pair * 32 + 16);
            float *plane0 = output + ((size_t)j * filters + pair * 32) * out_h * out_w;
            for (int oy = 0; oy < out_h; oy++) {
                for (int ox = 0; ox < out_w; ox += step) {
                    int n = out_w - ox < step ? out_w - ox : step;
                    int row = j * band_rows + (pooled ? 2 * oy : oy), col = pooled ? 2 * ox : ox;
                    a.in = input + (size_t)row * row_width + col;
                    a.y = plane0 + (size_t)oy * out_w + ox;
                    if (pooled) {
                        if (n == 2) pool_tile(&a, 2);
                        else pool_tile(&a, 1);
                        continue;
                    }
                    // A row of 14, two whole rows of 7, or what is left in tiles of 8, 4, 2 and 1.
                    if (n == 14) {
                        row_tile(&a, 1, 14);
                        continue;
                    }
                    if (out_w == 7 && oy + 1 < out_h) {
                        row_tile(&a, 2, 7);
                        oy++;
                        continue;
                    }
                    for (int size = 8; size > 0; size /= 2) {
                        if (!(n & size)) continue;
                        if (size == 8) row_tile(&a, 1, 8);
                        else if (size == 4) row_tile(&a, 1, 4);
                        else if (size == 2) row_tile(&a, 1, 2);
                        else row_tile(&a, 1, 1);
                        a.in += size;
                        a.y += size;
                    }
                }
            }
        }
    }
}

#else

void precis_conv_direct_f32(const float *input, int plane_size, int channels, int row_width, int band_rows,
                            int images, int oh, int ow, int fh, int fw, const float *packed, int filters,
                            const float *bias, int relu, int pooled, float *output) {
    (void)input, (void)plane_size, (void)channels, (void)row_width, (void)band_rows, (void)images, (void)oh;
    (void)ow, (void)fh, (void)fw, (void)packed, (void)filters, (void)bias, (void)relu, (void)pooled, (void)output;
    abort();
}

#endif
