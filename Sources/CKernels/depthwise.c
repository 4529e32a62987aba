// Depthwise convolutions in float32, vectorized across channels: a block of channels is copied into
// a zero-padded, channels-last tile (one vector per pixel), so every tap of every output pixel is
// one vector load and the channels' chains run side by side. Written once over generic vectors and
// compiled for AVX-512 (16 channels a vector), AVX2 with FMA and any x86-64 (8; there the fused
// multiply-add is fma_odd): each element is the same chain at every level.
#include "fused.h"
#include "kernels.h"
#include "target.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The padded tile's rows and columns: what the output's windows reach.
#define TILE_H(s) (((s)->oh - 1) * (s)->sh + ((s)->kh - 1) * (s)->dh + 1)
#define TILE_W(s) (((s)->ow - 1) * (s)->sw + ((s)->kw - 1) * (s)->dw + 1)

// n vectors, aligned as vectors must be.
#define VECTORS(V, n) ((V *)aligned_alloc(sizeof(V), sizeof(V) * (size_t)(n)))

// Channels c ..< c + n of the image's planes p (C, rows, cols) as vectors v[y·cols + x], lanes past n 0.
#define GATHER(name, V)                                                                                                \
    INLINE void name(V *v, const float *p, int c, int n, int rows, int cols) {                                         \
        enum { L = sizeof(V) / sizeof(float) };                                                                        \
        float *f = (float *)v;                                                                                         \
        if (n < L) memset(v, 0, sizeof(V) * rows * cols);                                                              \
        for (int l = 0; l < n; l++)                                                                                    \
            for (int i = 0; i < rows * cols; i++) f[i * L + l] = p[(size_t)(c + l) * rows * cols + i];                 \
    }

// The input's channels c ..< c + n into the padded tile (TILE_H x TILE_W), zeros where it pads.
#define PAD(name, V)                                                                                                   \
    INLINE void name(V *tile, const precis_depthwise_shape *s, const float *x, int c, int n) {                         \
        enum { L = sizeof(V) / sizeof(float) };                                                                        \
        int th = TILE_H(s), tw = TILE_W(s);                                                                            \
        float *f = (float *)tile;                                                                                      \
        memset(tile, 0, sizeof(V) * th * tw);                                                                          \
        for (int l = 0; l < n; l++)                                                                                    \
            for (int y = 0; y < s->h && y + s->pt < th; y++)                                                           \
                for (int x0 = 0; x0 < s->w && x0 + s->pl < tw; x0++)                                                   \
                    f[((y + s->pt) * tw + x0 + s->pl) * L + l] = x[((size_t)(c + l) * s->h + y) * s->w + x0];          \
    }

#define DEPTHWISE(level, V, attr, fma)                                                                                 \
    GATHER(gather_##level, V)                                                                                          \
    PAD(pad_##level, V)                                                                                                \
    attr static void depthwise_forward_##level(const precis_depthwise_shape *s, const float *x, const float *wt,       \
                                               float *out, int c0, int c1) {                                           \
        enum { L = sizeof(V) / sizeof(float) };                                                                        \
        int k = s->kh * s->kw, pixels = s->oh * s->ow, tw = TILE_W(s);                                                 \
        V *tile = VECTORS(V, TILE_H(s) * tw), *wv = VECTORS(V, k), *o = VECTORS(V, pixels);                            \
        for (int c = c0; c < c1; c += L) {                                                                             \
            int n = c1 - c < L ? c1 - c : L;                                                                           \
            pad_##level(tile, s, x, c, n);                                                                             \
            gather_##level(wv, wt, c, n, 1, k);                                                                        \
            for (int oy = 0; oy < s->oh; oy++)                                                                         \
                for (int ox = 0; ox < s->ow; ox++) {                                                                   \
                    V acc = {};                                                                                        \
                    for (int ky = 0; ky < s->kh; ky++) {                                                               \
                        const V *row = tile + (oy * s->sh + ky * s->dh) * tw + ox * s->sw;                             \
                        for (int kx = 0; kx < s->kw; kx++) acc = fma(wv[ky * s->kw + kx], row[kx * s->dw], acc);       \
                    }                                                                                                  \
                    o[oy * s->ow + ox] = acc;                                                                          \
                }                                                                                                      \
            for (int l = 0; l < n; l++)                                                                                \
                for (int p = 0; p < pixels; p++) out[(size_t)(c + l) * pixels + p] = ((const float *)o)[p * L + l];    \
        }                                                                                                              \
        free(tile), free(wv), free(o);                                                                                 \
    }                                                                                                                  \
                                                                                                                       \
    attr static void depthwise_backward_##level(const precis_depthwise_shape *s, const float *x, const float *d,       \
                                     const float *wt, float *dwt, float *db, float *dx, int c0, int c1) {              \
        enum { L = sizeof(V) / sizeof(float) };                                                                        \
        int k = s->kh * s->kw, pixels = s->oh * s->ow, th = TILE_H(s), tw = TILE_W(s);                                 \
        V *tile = VECTORS(V, th * tw), *dxt = VECTORS(V, th * tw), *wv = VECTORS(V, k), *dv = VECTORS(V, pixels);      \
        for (int c = c0; c < c1; c += L) {                                                                             \
            int n = c1 - c < L ? c1 - c : L;                                                                           \
            pad_##level(tile, s, x, c, n);                                                                             \
            gather_##level(wv, wt, c, n, 1, k);                                                                        \
            gather_##level(dv, d, c, n, s->oh, s->ow);                                                                 \
            for (int r = 0; r < k; r++) {                                                                              \
                int ky = r / s->kw, kx = r % s->kw;                                                                    \
                V acc = {};                                                                                            \
                for (int oy = 0; oy < s->oh; oy++) {                                                                   \
                    const V *row = tile + (oy * s->sh + ky * s->dh) * tw + kx * s->dw;                                 \
                    for (int ox = 0; ox < s->ow; ox++) acc = fma(dv[oy * s->ow + ox], row[ox * s->sw], acc);           \
                }                                                                                                      \
                for (int l = 0; l < n; l++) dwt[(size_t)(c + l) * k + r] += acc[l];                                    \
            }                                                                                                          \
            V sum = {};                                                                                                \
            for (int l = 0; l < n; l++) sum[l] = db[c + l];                                                            \
            for (int p = 0; p < pixels; p++) sum += dv[p];                                                             \
            for (int l = 0; l < n; l++) db[c + l] = sum[l];                                                            \
            memset(dxt, 0, sizeof(V) * th * tw);                                                                       \
            for (int r = 0; r < k; r++) {                                                                              \
                int ky = r / s->kw, kx = r % s->kw;                                                                    \
                for (int oy = 0; oy < s->oh; oy++) {                                                                   \
                    V *row = dxt + (oy * s->sh + ky * s->dh) * tw + kx * s->dw;                                        \
                    for (int ox = 0; ox < s->ow; ox++)                                                                 \
                        row[ox * s->sw] += fma(wv[r], dv[oy * s->ow + ox], (V){});                                     \
                }                                                                                                      \
            }                                                                                                          \
            for (int l = 0; l < n; l++)                                                                                \
                for (int y = 0; y < s->h && y + s->pt < th; y++)                                                       \
                    for (int x0 = 0; x0 < s->w && x0 + s->pl < tw; x0++)                                               \
                        dx[((size_t)(c + l) * s->h + y) * s->w + x0] += dxt[(y + s->pt) * tw + x0 + s->pl][l];         \
        }                                                                                                              \
        free(tile), free(dxt), free(wv), free(dv);                                                                     \
    }

// The integer depthwise convolution of one channels-last image: per output pixel, every tap adds its
// codes times the channel's weights into the pixel's int32 sums, channels side by side. The sums are
// exact, so every level gives the same ones.
#define DEPTHWISE_U8S8(level, attr)                                                                                    \
    attr static void depthwise_u8s8_##level(const precis_depthwise_shape *s, const uint8_t *restrict x,                \
                                            uint8_t fill, const int8_t *restrict wt, int32_t *restrict out) {          \
        int c = s->channels;                                                                                           \
        for (int oy = 0; oy < s->oh; oy++)                                                                             \
            for (int ox = 0; ox < s->ow; ox++) {                                                                       \
                int32_t *restrict o = out + ((size_t)oy * s->ow + ox) * c;                                             \
                memset(o, 0, sizeof(int32_t) * c);                                                                     \
                for (int ky = 0; ky < s->kh; ky++) {                                                                   \
                    int y = oy * s->sh + ky * s->dh - s->pt;                                                           \
                    for (int kx = 0; kx < s->kw; kx++) {                                                               \
                        int xx = ox * s->sw + kx * s->dw - s->pl;                                                      \
                        const int8_t *w = wt + (size_t)(ky * s->kw + kx) * c;                                          \
                        if (y < 0 || y >= s->h || xx < 0 || xx >= s->w) {                                              \
                            for (int ch = 0; ch < c; ch++) o[ch] += (int32_t)fill * w[ch];                             \
                        } else {                                                                                       \
                            const uint8_t *p = x + ((size_t)y * s->w + xx) * c;                                        \
                            for (int ch = 0; ch < c; ch++) o[ch] += (int32_t)p[ch] * w[ch];                            \
                        }                                                                                              \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
    }

#define PORTABLE
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
DEPTHWISE(portable, f32x8, PORTABLE, fma_odd8)
#pragma clang diagnostic pop
DEPTHWISE_U8S8(portable, PORTABLE)

#if defined(__x86_64__)
DEPTHWISE(avx2, f32x8, AVX2, FUSED)
DEPTHWISE(avx512, f32x16, AVX512, FUSED)
DEPTHWISE_U8S8(avx2, AVX2)
DEPTHWISE_U8S8(avx512, AVX512)
#endif

void precis_depthwise_forward_f32(const precis_depthwise_shape *s, const float *x, const float *wt, float *out, int c0,
                                  int c1) {
    LEVELS(depthwise_forward, s, x, wt, out, c0, c1)
}

void precis_depthwise_backward_f32(const precis_depthwise_shape *s, const float *x, const float *d, const float *wt,
                                   float *dwt, float *db, float *dx, int c0, int c1) {
    LEVELS(depthwise_backward, s, x, d, wt, dwt, db, dx, c0, c1)
}

void precis_depthwise_u8s8(const precis_depthwise_shape *s, const uint8_t *x, uint8_t fill, const int8_t *wt,
                           int32_t *out) {
    LEVELS(depthwise_u8s8, s, x, fill, wt, out)
}
