#include "kernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include "avx512.h"

// What every tile of one block of 16 filters reads: the input (see `precis_conv_input`), the
// block's filters packed as (C, FH, FW, 16), and whether taps that read padding are skipped (they
// add exactly nothing when every weight is finite: each chain starts at +0, so it is never -0, and
// x + (±0) is x).
typedef struct {
    precis_conv_input in;
    int fh, fw, skip;
    const float *weights;
} conv_src;

// acc[0..<P] = the windows of P neighbouring pixels of one output row (window origin `at` elements
// from `image`, in channel 0; input row `iy` under ky = 0, input column `ix` under kx = 0 for the
// first pixel) against the block's 16 filters: one fused multiply-add chain per output from +0, in
// ascending (channel, ky, kx), each input value broadcast straight from memory into its multiply-add.
// When padding is skipped, rows of padding are left out for the whole row of pixels, and columns of
// padding for the two pixels at either end (all there are with pad <= 2; with more, none are).
INLINE AVX512 void row_pass(const conv_src *s, const float *image, ptrdiff_t at, int iy, int ix, const int P,
                            __m512 *acc) {
    const precis_conv_input *in = &s->in;
    int lo = 0, hi = s->fh;
    unsigned width = 0xFFFFFFFFu;
    if (s->skip) {
        lo = iy < 0 ? -iy : 0;
        hi = in->h - iy < s->fh ? in->h - iy : s->fh;
        if (in->pad <= 2) width = (unsigned)in->w;
    }
    if (width == 0xFFFFFFFFu) ix = 0;
    #pragma unroll
    for (int p = 0; p < P; p++) acc[p] = _mm512_setzero_ps();
    const float *w = s->weights;
    for (int ch = 0; ch < in->channels; ch++, w += (size_t)s->fh * s->fw * 16) {
        for (int ky = lo; ky < hi; ky++) {
            for (int kx = 0; kx < s->fw; kx++) {
                const float *src = image + (at + ch * in->channel_stride + (ptrdiff_t)ky * in->row_width + kx);
                // Hides that src[p] of this kx is src[p + 1] of the last: reusing those values
                // would keep more vectors live than the registers hold.
                __asm__("" : "+r"(src));
                __m512 wv = _mm512_loadu_ps(w + (ky * s->fw + kx) * 16);
                #pragma unroll
                for (int p = 0; p < P; p++) {
                    if ((p < 2 || p >= P - 2) && (unsigned)(ix + kx + p) >= width) continue;
                    acc[p] = _mm512_fmadd_ps(_mm512_set1_ps(src[p]), wv, acc[p]);
                }
            }
        }
    }
}

// n zeros at o.
INLINE AVX512 void zeros(float *o, size_t n) {
    for (size_t i = 0; i < n; i += 16)
        _mm512_mask_storeu_ps(o + i, lanes((int)(n - i < 16 ? n - i : 16)), _mm512_setzero_ps());
}

AVX512 void precis_pad_planes_f32(const float *x, const float *mask, int images, int channels, int h, int w,
                                  int pad, int plane_size, float *out) {
    const __m512 zero = _mm512_setzero_ps();
    size_t row_width = (size_t)w + pad;
    for (int ch = 0; ch < channels; ch++) {
        float *o = out + (size_t)ch * plane_size;
        zeros(o, pad * row_width);
        o += pad * row_width;
        for (int j = 0; j < images; j++) {
            size_t at = ((size_t)j * channels + ch) * h * w;
            for (int y = 0; y < h; y++, o += row_width, at += w) {
                zeros(o, pad);
                for (int i = 0; i < w; i += 16) {
                    __mmask16 m = lanes(w - i);
                    __m512 v = _mm512_maskz_loadu_ps(m, x + at + i);
                    if (mask) {
                        __m512 r = _mm512_maskz_loadu_ps(m, mask + at + i);
                        v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(r, zero, _CMP_LE_OQ), zero);
                    }
                    _mm512_mask_storeu_ps(o + pad + i, m, v);
                }
            }
            zeros(o, pad * row_width);
            o += pad * row_width;
        }
        zeros(o, (size_t)(out + (size_t)(ch + 1) * plane_size - o));
    }
}

// Where a tile's outputs go: filter f's run of n outputs at y + f·plane, for the block's first
// `filters` filters.
INLINE AVX512 void store_rows(__m512 *v, int n, float *y, size_t plane, int filters) {
    #pragma unroll
    for (int p = n; p < 16; p++) v[p] = _mm512_setzero_ps();
    transpose16(v);
    for (int f = 0; f < filters; f++) _mm512_mask_storeu_ps(y + f * plane, lanes(n), v[f]);
}

typedef struct {
    conv_src s;
    __m512 bias;
    int relu, filters;
    size_t plane;
} tile_args;

// P outputs of one row (input row iy under ky = 0) for the block, activated and stored.
INLINE AVX512 void row_tile(const tile_args *a, const float *image, ptrdiff_t at, int iy, int ix, float *y,
                            const int P) {
    __m512 acc[16];
    row_pass(&a->s, image, at, iy, ix, P, acc);
    #pragma unroll
    for (int p = 0; p < P; p++) acc[p] = activate(acc[p], a->bias, a->relu);
    store_rows(acc, P, y, a->plane, a->filters);
}

// Q pooled outputs (2 x 2 windows, stride 2) from two rows of 2Q outputs: the top row's pairs are
// reduced before the bottom row is computed, which takes each window in row-major order as
// `MaxPooling` does.
INLINE AVX512 void pool_tile(const tile_args *a, const float *image, ptrdiff_t at, int iy, int ix, float *y,
                             const int Q) {
    __m512 acc[14], best[16];
    row_pass(&a->s, image, at, iy, ix, 2 * Q, acc);
    #pragma unroll
    for (int q = 0; q < Q; q++)
        best[q] = larger(activate(acc[2 * q], a->bias, a->relu), activate(acc[2 * q + 1], a->bias, a->relu));
    row_pass(&a->s, image, at + a->s.in.row_width, iy + 1, ix, 2 * Q, acc);
    #pragma unroll
    for (int q = 0; q < Q; q++) {
        best[q] = larger(best[q], activate(acc[2 * q], a->bias, a->relu));
        best[q] = larger(best[q], activate(acc[2 * q + 1], a->bias, a->relu));
    }
    store_rows(best, Q, y, a->plane, a->filters);
}

#define WIDTHS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14)
#define POOLED_WIDTHS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

AVX512 void precis_conv_direct_f32(precis_conv_input in, int images, int oh, int ow, int fh, int fw,
                                   const float *packed, int filters, const float *bias, int relu, int pooled,
                                   int skip_padding, float *output) {
    int out_h = pooled ? oh / 2 : oh, out_w = pooled ? ow / 2 : ow, most = pooled ? 7 : 14;
    // A row in as few tiles as fit, as even as they come (16 -> 8 + 8, not 14 + 2), so that every
    // tile keeps enough multiply-add chains in flight.
    int tiles = (out_w + most - 1) / most;
    size_t weights = (size_t)in.channels * fh * fw * 16, plane = (size_t)out_h * out_w;
    tile_args a = {.s = {.in = in, .fh = fh, .fw = fw, .skip = skip_padding}, .relu = relu, .plane = plane};
    for (int j = 0; j < images; j++) {
        const float *image = in.data + j * in.image_stride;
        for (int block = 0; block * 16 < filters; block++) {
            a.s.weights = packed + block * weights;
            a.filters = filters - block * 16 < 16 ? filters - block * 16 : 16;
            a.bias = _mm512_maskz_loadu_ps(lanes(a.filters), bias + block * 16);
            float *y0 = output + ((size_t)j * filters + block * 16) * plane;
            for (int oy = 0; oy < out_h; oy++) {
                int row = pooled ? 2 * oy : oy;
                ptrdiff_t at = in.origin + (ptrdiff_t)row * in.row_width;
                for (int t = 0, ox = 0; t < tiles; t++) {
                    int n = (t + 1) * out_w / tiles - t * out_w / tiles;
                    float *y = y0 + (size_t)oy * out_w + ox;
                    if (pooled) {
                        switch (n) {
#define POOL(Q)                                                                                                        \
    case Q: pool_tile(&a, image, at + 2 * ox, row - in.pad, 2 * ox - in.pad, y, Q); break;
                            POOLED_WIDTHS(POOL)
                        }
                    } else {
                        switch (n) {
#define ROW(P)                                                                                                         \
    case P: row_tile(&a, image, at + ox, row - in.pad, ox - in.pad, y, P); break;
                            WIDTHS(ROW)
                        }
                    }
                    ox += n;
                }
            }
        }
    }
}

// The lanes of output vector v (pixels 16v..16v+15 of an h x w plane, in raster order) whose tap
// (ky, kx) reads inside the input, for a "same" convolution (output h x w): mask[(v·fh + ky)·fw + kx].
static void same_masks(int h, int w, int pad, int fh, int fw, uint16_t *mask) {
    int vectors = (h * w + 15) / 16;
    for (int v = 0; v < vectors; v++) {
        for (int t = 0; t < fh * fw; t++) {
            uint16_t m = 0;
            for (int lane = 0; lane < 16; lane++) {
                int q = 16 * v + lane, iy = q / w + t / fw - pad, ix = q % w + t % fw - pad;
                if (q < h * w && iy >= 0 && iy < h && ix >= 0 && ix < w) m |= (uint16_t)(1u << lane);
            }
            mask[v * fh * fw + t] = m;
        }
    }
}

AVX512 void precis_conv_same_f32(const float *x, int images, int channels, int h, int w, int pad, int fh, int fw,
                                 const float *packed, int filters, const float *bias, int relu, float *y) {
    int pixels = h * w, vectors = (pixels + 15) / 16, taps = fh * fw;
    uint16_t *mask = malloc(sizeof(uint16_t) * vectors * taps);
    same_masks(h, w, pad, fh, fw, mask);
    for (int j = 0; j < images; j++) {
        const float *image = x + (size_t)j * channels * pixels;
        for (int block = 0; block * 16 < filters; block++) {
            const float *wb = packed + (size_t)block * channels * taps * 16;
            int count = filters - block * 16 < 16 ? filters - block * 16 : 16;
            float *out = y + ((size_t)j * filters + block * 16) * pixels;
            for (int v = 0; v < vectors; v++) {
                __m512 acc[16];
                #pragma unroll
                for (int f = 0; f < 16; f++) acc[f] = _mm512_setzero_ps();
                const float *wt = wb;
                for (int ch = 0; ch < channels; ch++) {
                    const float *at = image + (size_t)ch * pixels + 16 * v - pad * w - pad;
                    const uint16_t *m = mask + v * taps;
                    for (int ky = 0; ky < fh; ky++) {
                        for (int kx = 0; kx < fw; kx++, wt += 16, m++) {
                            // Lanes whose tap reads padding load 0, and 0 · w is added, as in the chain.
                            __m512 xv = _mm512_maskz_loadu_ps(*m, at + ky * w + kx);
                            #pragma unroll
                            for (int f = 0; f < 16; f++) acc[f] = _mm512_fmadd_ps(xv, _mm512_set1_ps(wt[f]), acc[f]);
                        }
                    }
                }
                __mmask16 tail = lanes(pixels - 16 * v);
                #pragma unroll
                for (int f = 0; f < 16; f++) {
                    if (f < count)
                        _mm512_mask_storeu_ps(out + (size_t)f * pixels + 16 * v, tail,
                                              activate(acc[f], _mm512_set1_ps(bias[block * 16 + f]), relu));
                }
            }
        }
    }
    free(mask);
}

#else

void precis_conv_direct_f32(precis_conv_input in, int images, int oh, int ow, int fh, int fw, const float *packed,
                            int filters, const float *bias, int relu, int pooled, int skip_padding, float *output) {
    (void)in, (void)images, (void)oh, (void)ow, (void)fh, (void)fw, (void)packed, (void)filters, (void)bias;
    (void)relu, (void)pooled, (void)skip_padding, (void)output;
    abort();
}

void precis_pad_planes_f32(const float *x, const float *mask, int images, int channels, int h, int w, int pad,
                           int plane_size, float *out) {
    (void)x, (void)mask, (void)images, (void)channels, (void)h, (void)w, (void)pad, (void)plane_size, (void)out;
    abort();
}

void precis_conv_same_f32(const float *x, int images, int channels, int h, int w, int pad, int fh, int fw,
                          const float *packed, int filters, const float *bias, int relu, float *y) {
    (void)x, (void)images, (void)channels, (void)h, (void)w, (void)pad, (void)fh, (void)fw, (void)packed;
    (void)filters, (void)bias, (void)relu, (void)y;
    abort();
}

#endif
