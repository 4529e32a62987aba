#include "kernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include "avx512.h"

#define ROUND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

int precis_half_kernels(void) {
    return precis_kernel_level() >= 1;
}

// x rounded to the nearest half (ties to even) and widened back: every value a strict half
// device holds, kept in float32 lanes.
INLINE AVX512 __m512 round_half(__m512 x) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, ROUND));
}

INLINE AVX512 __m512 load_half(const uint16_t *p, __mmask16 mask) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}

INLINE AVX512 void store_half(uint16_t *p, __m512 x, __mmask16 mask) {
    _mm256_mask_storeu_epi16(p, mask, _mm512_cvtps_ph(x, ROUND));
}

// One block of 8 rows (A as floats, (k, 8)) times one panel of 32 columns starting at column j.
INLINE AVX512 void tile(int rows, int cols, int k, const float *af,
                                                           const uint16_t *b, const int64_t *brows, int j, uint16_t *c,
                                                           int ldc) {
    __m512 acc[8][2];
    #pragma unroll
    for (int r = 0; r < 8; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    __mmask16 m0 = lanes(cols), m1 = lanes(cols - 16);
    for (int p = 0; p < k; p++) {
        const uint16_t *row = b + brows[p] + j;
        __m512 u = load_half(row, m0), v = load_half(row + 16, m1);
        #pragma unroll
        for (int r = 0; r < 8; r++) {
            __m512 a = _mm512_set1_ps(af[p * 8 + r]);
            acc[r][0] = round_half(_mm512_fmadd_ps(a, u, acc[r][0]));
            acc[r][1] = round_half(_mm512_fmadd_ps(a, v, acc[r][1]));
        }
    }
    for (int r = 0; r < rows; r++) {
        store_half(c + (size_t)r * ldc, acc[r][0], m0);
        store_half(c + (size_t)r * ldc + 16, acc[r][1], m1);
    }
}

static AVX512 void gemm_f16_avx512(int m, int n, int k, const uint16_t *ap, const uint16_t *b, const int64_t *brows,
                                 uint16_t *c, int ldc, int panel_begin, int panel_end) {
    float *af = malloc(sizeof(float) * (size_t)k * 8 + 64);
    for (int block = 0; block * 8 < m; block++) {
        const uint16_t *a = ap + (size_t)block * k * 8;
        int p = 0;
        for (; p + 16 <= k * 8; p += 16) _mm512_storeu_ps(af + p, load_half(a + p, 0xFFFF));
        for (; p < k * 8; p++) af[p] = _cvtsh_ss(a[p]);
        int rows = m - block * 8 < 8 ? m - block * 8 : 8;
        for (int panel = panel_begin; panel < panel_end; panel++) {
            int j = panel * 32, cols = n - j < 32 ? n - j : 32;
            tile(rows, cols, k, af, b, brows, j, c + (size_t)block * 8 * ldc + j, ldc);
        }
    }
    free(af);
}

// Adds neighbouring lanes: lane i < 8 holds u[2i] + u[2i+1], lane 8 + i holds v[2i] + v[2i+1],
// each sum rounded to half.
INLINE AVX512 __m512 fold(__m512 u, __m512 v) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return round_half(_mm512_add_ps(_mm512_permutex2var_ps(u, even, v), _mm512_permutex2var_ps(u, odd, v)));
}

static AVX512 void gemm_abt_f16_avx512(int m, int n, int len, const uint16_t *a, int lda, const uint16_t *b,
                                    const int64_t *brows, uint16_t *c, int ldc, int tile_begin, int tile_end) {
    int row_tiles = (m + 3) / 4;
    for (int t = tile_begin; t < tile_end; t++) {
        int i = t % row_tiles * 4, j = t / row_tiles * 4;
        int rows = m - i < 4 ? m - i : 4, cols = n - j < 4 ? n - j : 4;
        const uint16_t *x[4], *y[4];
        #pragma unroll
        for (int r = 0; r < 4; r++) x[r] = a + (size_t)(i + (r < rows ? r : rows - 1)) * lda;
        #pragma unroll
        for (int q = 0; q < 4; q++) y[q] = b + brows[j + (q < cols ? q : cols - 1)];
        __m512 s[4][4];
        #pragma unroll
        for (int r = 0; r < 4; r++)
            #pragma unroll
            for (int q = 0; q < 4; q++) s[r][q] = _mm512_setzero_ps();
        for (int o = 0; o < len; o += 16) {
            __m512 xv[4], yv[4];
            #pragma unroll
            for (int r = 0; r < 4; r++) xv[r] = load_half(x[r] + o, 0xFFFF);
            #pragma unroll
            for (int q = 0; q < 4; q++) yv[q] = load_half(y[q] + o, 0xFFFF);
            #pragma unroll
            for (int r = 0; r < 4; r++)
                #pragma unroll
                for (int q = 0; q < 4; q++) s[r][q] = round_half(_mm512_fmadd_ps(xv[r], yv[q], s[r][q]));
        }
        __m512 h[4];
        #pragma unroll
        for (int r = 0; r < 4; r++) h[r] = fold(fold(s[r][0], s[r][1]), fold(s[r][2], s[r][3]));
        __m512 sums = fold(fold(h[0], h[1]), fold(h[2], h[3]));
        uint16_t out[16];
        _mm256_storeu_si256((__m256i *)out, _mm512_cvtps_ph(sums, ROUND));
        for (int r = 0; r < rows; r++)
            for (int q = 0; q < cols; q++) c[(size_t)(i + r) * ldc + j + q] = out[r * 4 + q];
    }
}

// The same kernels in 8 lanes (AVX2 with F16C), for CPUs without AVX-512: the same operations on
// every element in the same order, so the same bits.
INLINE AVX2 __m256 round_half8(__m256 x) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, ROUND));
}

// 8 halves from p, the first `count` of them (the rest 0).
INLINE AVX2 __m256 load_half8(const uint16_t *p, int count) {
    if (count >= 8) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    uint16_t t[8] = {0};
    for (int i = 0; i < count; i++) t[i] = p[i];
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)t));
}

INLINE AVX2 void store_half8(uint16_t *p, __m256 x, int count) {
    __m128i h = _mm256_cvtps_ph(x, ROUND);
    if (count >= 8) return _mm_storeu_si128((__m128i *)p, h);
    uint16_t t[8];
    _mm_storeu_si128((__m128i *)t, h);
    for (int i = 0; i < count; i++) p[i] = t[i];
}

// Rows r0..r0+3 of a block of 8 (A as floats, (k, 8)) times 16 columns starting at column j.
INLINE AVX2 void tile8(int r0, int rows, int cols, int k, const float *af,
                                                             const uint16_t *b, const int64_t *brows, int j,
                                                             uint16_t *c, int ldc) {
    __m256 acc[4][2];
    #pragma unroll
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int p = 0; p < k; p++) {
        const uint16_t *row = b + brows[p] + j;
        __m256 u = load_half8(row, cols), v = load_half8(row + 8, cols - 8);
        #pragma unroll
        for (int r = 0; r < 4; r++) {
            __m256 a = _mm256_set1_ps(af[p * 8 + r0 + r]);
            acc[r][0] = round_half8(_mm256_fmadd_ps(a, u, acc[r][0]));
            acc[r][1] = round_half8(_mm256_fmadd_ps(a, v, acc[r][1]));
        }
    }
    for (int r = 0; r < 4 && r0 + r < rows; r++) {
        store_half8(c + (size_t)(r0 + r) * ldc, acc[r][0], cols);
        if (cols > 8) store_half8(c + (size_t)(r0 + r) * ldc + 8, acc[r][1], cols - 8);
    }
}

static AVX2 void gemm_f16_avx2(int m, int n, int k, const uint16_t *ap, const uint16_t *b, const int64_t *brows,
                                uint16_t *c, int ldc, int panel_begin, int panel_end) {
    float *af = malloc(sizeof(float) * (size_t)k * 8 + 64);
    for (int block = 0; block * 8 < m; block++) {
        const uint16_t *a = ap + (size_t)block * k * 8;
        for (int p = 0; p < k * 8; p += 8) _mm256_storeu_ps(af + p, load_half8(a + p, 8));
        int rows = m - block * 8 < 8 ? m - block * 8 : 8;
        uint16_t *cb = c + (size_t)block * 8 * ldc;
        for (int panel = panel_begin; panel < panel_end; panel++)
            for (int j = panel * 32; j < n && j < panel * 32 + 32; j += 16)
                for (int r0 = 0; r0 < rows; r0 += 4) tile8(r0, rows, n - j, k, af, b, brows, j, cb + j, ldc);
    }
    free(af);
}

// The 16 lanes lo (0..7) and hi (8..15) added in neighbouring pairs, then pairs of those, and so
// on, each sum rounded to half: the order of `fold` above.
INLINE AVX2 uint16_t pairwise8(__m256 lo, __m256 hi) {
    float x[16];
    _mm256_storeu_ps(x, lo);
    _mm256_storeu_ps(x + 8, hi);
    for (int width = 8; width >= 1; width /= 2)
        for (int i = 0; i < width; i++) x[i] = _cvtsh_ss(_cvtss_sh(x[2 * i] + x[2 * i + 1], ROUND));
    return _cvtss_sh(x[0], ROUND);
}

static AVX2 void gemm_abt_f16_avx2(int m, int n, int len, const uint16_t *a, int lda, const uint16_t *b,
                                    const int64_t *brows, uint16_t *c, int ldc, int tile_begin, int tile_end) {
    int row_tiles = (m + 3) / 4;
    for (int t = tile_begin; t < tile_end; t++) {
        int i0 = t % row_tiles * 4, j0 = t / row_tiles * 4;
        // Each 4 x 4 tile as 2 x 2 blocks of 2 x 2 elements, each element's 16 lanes in 2 registers.
        for (int i = i0; i < i0 + 4 && i < m; i += 2)
            for (int j = j0; j < j0 + 4 && j < n; j += 2) {
                const uint16_t *x[2], *y[2];
                #pragma unroll
                for (int r = 0; r < 2; r++) x[r] = a + (size_t)(i + r < m ? i + r : i) * lda;
                #pragma unroll
                for (int q = 0; q < 2; q++) y[q] = b + brows[j + q < n ? j + q : j];
                __m256 s[2][2][2];
                #pragma unroll
                for (int r = 0; r < 2; r++)
                    #pragma unroll
                    for (int q = 0; q < 2; q++) s[r][q][0] = s[r][q][1] = _mm256_setzero_ps();
                for (int o = 0; o < len; o += 16)
                    #pragma unroll
                    for (int h = 0; h < 2; h++) {
                        __m256 x0 = load_half8(x[0] + o + 8 * h, 8), x1 = load_half8(x[1] + o + 8 * h, 8);
                        __m256 y0 = load_half8(y[0] + o + 8 * h, 8), y1 = load_half8(y[1] + o + 8 * h, 8);
                        s[0][0][h] = round_half8(_mm256_fmadd_ps(x0, y0, s[0][0][h]));
                        s[0][1][h] = round_half8(_mm256_fmadd_ps(x0, y1, s[0][1][h]));
                        s[1][0][h] = round_half8(_mm256_fmadd_ps(x1, y0, s[1][0][h]));
                        s[1][1][h] = round_half8(_mm256_fmadd_ps(x1, y1, s[1][1][h]));
                    }
                for (int r = 0; r < 2 && i + r < m; r++)
                    for (int q = 0; q < 2 && j + q < n; q++)
                        c[(size_t)(i + r) * ldc + j + q] = pairwise8(s[r][q][0], s[r][q][1]);
            }
    }
}

void precis_gemm_f16_panels(int m, int n, int k, const uint16_t *ap, const uint16_t *b, const int64_t *brows,
                            uint16_t *c, int ldc, int panel_begin, int panel_end) {
    if (precis_kernel_level() == 2) return gemm_f16_avx512(m, n, k, ap, b, brows, c, ldc, panel_begin, panel_end);
    gemm_f16_avx2(m, n, k, ap, b, brows, c, ldc, panel_begin, panel_end);
}

void precis_gemm_abt_f16_tiles(int m, int n, int len, const uint16_t *a, int lda, const uint16_t *b,
                               const int64_t *brows, uint16_t *c, int ldc, int tile_begin, int tile_end) {
    if (precis_kernel_level() == 2)
        return gemm_abt_f16_avx512(m, n, len, a, lda, b, brows, c, ldc, tile_begin, tile_end);
    gemm_abt_f16_avx2(m, n, len, a, lda, b, brows, c, ldc, tile_begin, tile_end);
}

#else

int precis_half_kernels(void) { return 0; }

void precis_gemm_f16_panels(int m, int n, int k, const uint16_t *ap, const uint16_t *b, const int64_t *brows,
                            uint16_t *c, int ldc, int panel_begin, int panel_end) {
    abort();
}

void precis_gemm_abt_f16_tiles(int m, int n, int len, const uint16_t *a, int lda, const uint16_t *b,
                               const int64_t *brows, uint16_t *c, int ldc, int tile_begin, int tile_end) {
    abort();
}

#endif
