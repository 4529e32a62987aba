#include "kernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

size_t precis_pack_s8_size(int k, int n) { return (size_t)((k + 3) / 4) * ((n + 15) / 16) * 64; }

void precis_pack_s8(int k, int n, const int8_t *b, int ldb, int8_t *packed) {
    int n16 = (n + 15) / 16;
    memset(packed, 0, precis_pack_s8_size(k, n));
    for (int p = 0; p < k; p++)
        for (int j = 0; j < n; j++) packed[(((size_t)(p / 4) * n16 + j / 16) * 16 + j % 16) * 4 + p % 4] = b[(size_t)p * ldb + j];
}

static void gemm_u8s8_portable(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride, const int8_t *packed,
                               int32_t *c, int ldc) {
    int n16 = (n + 15) / 16;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            int32_t s = 0;
            for (int g = 0; g < segments; g++)
                for (int q = 0; q < kseg; q++) {
                    int p = g * kseg + q;
                    s += (int32_t)a[(size_t)i * lda + (size_t)g * seg_stride + q] *
                         (int32_t)packed[(((size_t)(p / 4) * n16 + j / 16) * 16 + j % 16) * 4 + p % 4];
                }
            c[(size_t)i * ldc + j] = s;
        }
}

#if defined(__x86_64__)
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

// MR rows x NP panels of 16 columns: MR*NP accumulators, one vpdpbusd per (row, panel) per 4 k.
// Rows past `rows` repeat the last row and are not stored; columns past `cols` are not stored.
// Each row of A is `segments` runs of 4·k4 bytes, `seg_stride` apart.
static inline __attribute__((always_inline)) VNNI void tile(int MR, int NP, int rows, int cols, int segments, int k4, const uint8_t *a,
                                                           int lda, int seg_stride, const int8_t *bp, int bstride, int32_t *c, int ldc) {
    __m512i acc[16];
    for (int t = 0; t < MR * NP; t++) acc[t] = _mm512_setzero_si512();
    const uint8_t *ar[16];
    for (int r = 0; r < MR; r++) ar[r] = a + (size_t)(r < rows ? r : rows - 1) * lda;
    for (int g = 0; g < segments; g++) {
        const int8_t *bg = bp + (size_t)g * k4 * bstride;
        for (int q = 0; q < k4; q++) {
            __m512i b[4];
            for (int p = 0; p < NP; p++) b[p] = _mm512_loadu_si512(bg + (size_t)q * bstride + p * 64);
            for (int r = 0; r < MR; r++) {
                int32_t quad;
                memcpy(&quad, ar[r] + (size_t)g * seg_stride + 4 * q, 4);
                __m512i av = _mm512_set1_epi32(quad);
                for (int p = 0; p < NP; p++) acc[r * NP + p] = _mm512_dpbusd_epi32(acc[r * NP + p], av, b[p]);
            }
        }
    }
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < NP; p++) {
            int left = cols - p * 16;
            if (left <= 0) break;
            _mm512_mask_storeu_epi32(c + (size_t)r * ldc + p * 16, (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1), acc[r * NP + p]);
        }
}

static VNNI void gemm_u8s8_vnni(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride, const int8_t *packed,
                                int32_t *c, int ldc) {
    int k4 = (kseg + 3) / 4, n16 = (n + 15) / 16, bstride = n16 * 64;
    for (int p0 = 0; p0 < n16; p0 += 4) {
        int np = n16 - p0 >= 4 ? 4 : n16 - p0, cols = n - p0 * 16;
        const int8_t *bp = packed + (size_t)p0 * 64;
        int mr = np == 1 ? 16 : np == 2 ? 8 : 4;
        for (int i = 0; i < m; i += mr) {
            int rows = m - i < mr ? m - i : mr;
            const uint8_t *ai = a + (size_t)i * lda;
            int32_t *ci = c + (size_t)i * ldc + p0 * 16;
            if (np == 1) tile(16, 1, rows, cols, segments, k4, ai, lda, seg_stride, bp, bstride, ci, ldc);
            else if (np == 2) tile(8, 2, rows, cols, segments, k4, ai, lda, seg_stride, bp, bstride, ci, ldc);
            else if (np == 3) tile(4, 3, rows, cols, segments, k4, ai, lda, seg_stride, bp, bstride, ci, ldc);
            else tile(4, 4, rows, cols, segments, k4, ai, lda, seg_stride, bp, bstride, ci, ldc);
        }
    }
}

static int has_vnni_u8(void) {
    return precis_kernel_level() == 2 && __builtin_cpu_supports("avx512vnni");
}
#endif

const char *precis_gemm_u8s8_path(void) {
#if defined(__x86_64__)
    if (has_vnni_u8()) return "avx512-vnni";
#endif
    return "portable";
}

void precis_gemm_u8s8_segments(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride, const int8_t *packed,
                               int32_t *c, int ldc, int force_portable) {
#if defined(__x86_64__)
    if (!force_portable && has_vnni_u8()) {
        gemm_u8s8_vnni(m, n, segments, kseg, a, lda, seg_stride, packed, c, ldc);
        return;
    }
#endif
    gemm_u8s8_portable(m, n, segments, kseg, a, lda, seg_stride, packed, c, ldc);
}

void precis_gemm_u8s8(int m, int n, int k, const uint8_t *a, int lda, const int8_t *packed, int32_t *c, int ldc, int force_portable) {
    precis_gemm_u8s8_segments(m, n, 1, k, a, lda, 0, packed, c, ldc, force_portable);
}

static inline __attribute__((always_inline)) void requantize(const int32_t *acc, int rows, int channels, const int32_t *correction,
                                                          const float *scale, float zero, float low, uint8_t *out) {
    for (int r = 0; r < rows; r++) {
        const int32_t *a = acc + (size_t)r * channels;
        uint8_t *o = out + (size_t)r * channels;
        for (int f = 0; f < channels; f++) {
            // Round half to even by adding and removing 1.5·2^23 (exact for |v| < 2^22; v is
            // clamped to a range where that holds and the clamp below decides anyway).
            float v = scale[f] * (float)(a[f] + correction[f]);
            v = v < -1e6f ? -1e6f : v > 1e6f ? 1e6f : v;
            float q = (v + 12582912.0f) - 12582912.0f + zero;
            q = q < low ? low : q;
            q = q > 255.0f ? 255.0f : q;
            o[f] = (uint8_t)(int)q;
        }
    }
}

#if defined(__x86_64__)
static VNNI void requantize_avx512(const int32_t *acc, int rows, int channels, const int32_t *correction, const float *scale, float zero,
                                   float low, uint8_t *out) {
    requantize(acc, rows, channels, correction, scale, zero, low, out);
}
#endif

void precis_requantize_u8(const int32_t *acc, int rows, int channels, const int32_t *correction, const float *scale, float zero, float low,
                          uint8_t *out) {
#if defined(__x86_64__)
    if (has_vnni_u8()) {
        requantize_avx512(acc, rows, channels, correction, scale, zero, low, out);
        return;
    }
#endif
    requantize(acc, rows, channels, correction, scale, zero, low, out);
}

void precis_max_pool2_u8(const uint8_t *x, int h, int w, int channels, uint8_t *out) {
    int oh = h / 2, ow = w / 2;
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            const uint8_t *a = x + ((size_t)(2 * oy) * w + 2 * ox) * channels, *b = a + (size_t)w * channels;
            uint8_t *o = out + ((size_t)oy * ow + ox) * channels;
            for (int c = 0; c < channels; c++) {
                uint8_t top = a[c] > a[c + channels] ? a[c] : a[c + channels];
                uint8_t bottom = b[c] > b[c + channels] ? b[c] : b[c + channels];
                o[c] = top > bottom ? top : bottom;
            }
        }
    }
}
