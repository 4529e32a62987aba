#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#include "target.h"
#endif

// B's layout depends on the path: VNNI reads (k/4, n/16, 16, 4) int8, four k of a column in a
// 32-bit lane; AVX2 reads (k/2, n/8, 8, 2) int16, two k of a column in a 32-bit lane; the portable
// loop reads whichever the CPU's path packs. k is padded to 4 and n to 16 in both.
enum path { PORTABLE, AVX2_PATH, VNNI_PATH };

static enum path int8_path(void);

size_t precis_pack_s8_size(int k, int n) {
    size_t k4 = (size_t)(k + 3) / 4;
    return k4 * ((n + 15) / 16) * (int8_path() == AVX2_PATH ? 128 : 64);
}

// Where B[p][j] is in the packed layout, in elements of the layout's type.
static inline size_t packed_index(enum path path, int p, int j, int n) {
    if (path == AVX2_PATH) return (((size_t)(p / 2) * ((n + 15) / 16 * 2) + j / 8) * 8 + j % 8) * 2 + p % 2;
    return (((size_t)(p / 4) * ((n + 15) / 16) + j / 16) * 16 + j % 16) * 4 + p % 4;
}

static inline int32_t packed_at(const int8_t *packed, enum path path, int p, int j, int n) {
    size_t i = packed_index(path, p, j, n);
    if (path != AVX2_PATH) return packed[i];
    int16_t v;
    memcpy(&v, packed + 2 * i, 2);
    return v;
}

void precis_pack_s8(int k, int n, const int8_t *b, int ldb, int8_t *packed) {
    enum path path = int8_path();
    memset(packed, 0, precis_pack_s8_size(k, n));
    for (int p = 0; p < k; p++)
        for (int j = 0; j < n; j++) {
            int8_t v = b[(size_t)p * ldb + j];
            size_t i = packed_index(path, p, j, n);
            if (path == AVX2_PATH) {
                int16_t w = v;
                memcpy(packed + 2 * i, &w, 2);
            } else {
                packed[i] = v;
            }
        }
}

static void gemm_u8s8_portable(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride,
                               const int8_t *packed, int32_t *c, int ldc) {
    enum path path = int8_path();
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            int32_t s = 0;
            for (int g = 0; g < segments; g++)
                for (int q = 0; q < kseg; q++)
                    s += (int32_t)a[(size_t)i * lda + (size_t)g * seg_stride + q] *
                         packed_at(packed, path, g * kseg + q, j, n);
            c[(size_t)i * ldc + j] = s;
        }
}

#if defined(__x86_64__)

// 16 sums (plus their channels' corrections) as uint8 codes by `requantize`'s rule: the same float
// steps in the same order, so the same codes.
INLINE AVX512 __m128i codes16(__m512i sums, __m512i correction, __m512 scale, float zero, float low, float high) {
    __m512 v = _mm512_mul_ps(scale, _mm512_cvtepi32_ps(_mm512_add_epi32(sums, correction)));
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-1e6f)), _mm512_set1_ps(1e6f));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 q = _mm512_add_ps(_mm512_sub_ps(_mm512_add_ps(v, magic), magic), _mm512_set1_ps(zero));
    q = _mm512_min_ps(_mm512_max_ps(q, _mm512_set1_ps(low)), _mm512_set1_ps(high));
    __m128i codes = _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(q));
    // Narrowing straight into memory, and a masked byte store, are slow on Zen 4: the codes are
    // narrowed in a register and whole vectors of 16 channels take a plain store.
    __asm__("" : "+x"(codes));
    return codes;
}

INLINE AVX512 void store_codes(uint8_t *out, __mmask16 m, __m128i codes) {
    if (m == 0xFFFF) _mm_storeu_si128((__m128i *)out, codes);
    else _mm_mask_storeu_epi8(out, m, codes);
}

// Where a tile's sums go as codes instead of int32: row i of the product is output pixel
// (i / row_width, i % row_width), kept when i % row_width < width, at out + (y·width + x)·n.
typedef struct {
    const precis_requantization *rq;
    int row_width, width, n;
    uint8_t *out;
} codes_out;

// MR rows x NP panels of 16 columns: MR*NP accumulators, one vpdpbusd per (row, panel) per 4 k.
// Rows past `rows` repeat the last row and are not stored; columns past `cols` are not stored.
// Each row of A is `segments` runs of 4·k4 bytes, `seg_stride` apart. With `q`, the tile (rows
// from `row`, columns from `col`) is stored as codes instead of into c.
INLINE AVX512_VNNI void tile(int MR, int NP, int rows, int cols, int segments, int k4,
                                                           const uint8_t *a, int lda, int seg_stride,
                                                           const int8_t *bp, int bstride, int32_t *c, int ldc,
                                                           const codes_out *q, int row, int col) {
    __m512i acc[16];
    #pragma unroll
    for (int t = 0; t < MR * NP; t++) acc[t] = _mm512_setzero_si512();
    const uint8_t *ar[16];
    #pragma unroll
    for (int r = 0; r < MR; r++) ar[r] = a + (size_t)(r < rows ? r : rows - 1) * lda;
    for (int g = 0; g < segments; g++) {
        const int8_t *bg = bp + (size_t)g * k4 * bstride;
        for (int q = 0; q < k4; q++) {
            __m512i b[4];
            #pragma unroll
            for (int p = 0; p < NP; p++) b[p] = _mm512_loadu_si512(bg + (size_t)q * bstride + p * 64);
            #pragma unroll
            for (int r = 0; r < MR; r++) {
                int32_t quad;
                memcpy(&quad, ar[r] + (size_t)g * seg_stride + 4 * q, 4);
                __m512i av = _mm512_set1_epi32(quad);
                #pragma unroll
                for (int p = 0; p < NP; p++) acc[r * NP + p] = _mm512_dpbusd_epi32(acc[r * NP + p], av, b[p]);
            }
        }
    }
    #pragma unroll
    for (int p = 0; p < NP; p++) {
        int left = cols - p * 16;
        if (left <= 0) break;
        __mmask16 m = (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1);
        if (!q) {
            for (int r = 0; r < rows; r++) _mm512_mask_storeu_epi32(c + (size_t)r * ldc + p * 16, m, acc[r * NP + p]);
            continue;
        }
        int j = col + p * 16, y = row / q->row_width, x = row % q->row_width;
        __m512i correction = _mm512_maskz_loadu_epi32(m, q->rq->correction + j);
        __m512 scale = _mm512_maskz_loadu_ps(m, q->rq->scale + j);
        for (int r = 0; r < rows; r++, x++) {
            if (x == q->row_width) x = 0, y++;
            if (x >= q->width) continue;
            store_codes(q->out + ((size_t)y * q->width + x) * q->n + j, m,
                        codes16(acc[r * NP + p], correction, scale, q->rq->zero, q->rq->low, q->rq->high));
        }
    }
}

static AVX512_VNNI void gemm_u8s8_vnni(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride,
                                const int8_t *packed, int32_t *c, int ldc, const codes_out *q) {
    int k4 = (kseg + 3) / 4, n16 = (n + 15) / 16, bstride = n16 * 64;
    for (int p0 = 0; p0 < n16; p0 += 4) {
        int np = n16 - p0 >= 4 ? 4 : n16 - p0, cols = n - p0 * 16;
        const int8_t *bp = packed + (size_t)p0 * 64;
        int mr = np == 1 ? 16 : np == 2 ? 8 : 4;
        for (int i = 0; i < m; i += mr) {
            int rows = m - i < mr ? m - i : mr;
            const uint8_t *ai = a + (size_t)i * lda;
            int32_t *ci = q ? NULL : c + (size_t)i * ldc + p0 * 16;
            int j = p0 * 16;
            if (np == 1) tile(16, 1, rows, cols, segments, k4, ai, lda, seg_stride, bp, bstride, ci, ldc, q, i, j);
            else if (np == 2) tile(8, 2, rows, cols, segments, k4, ai, lda, seg_stride, bp, bstride, ci, ldc, q, i, j);
            else if (np == 3) tile(4, 3, rows, cols, segments, k4, ai, lda, seg_stride, bp, bstride, ci, ldc, q, i, j);
            else tile(4, 4, rows, cols, segments, k4, ai, lda, seg_stride, bp, bstride, ci, ldc, q, i, j);
        }
    }
}


// MR rows x 2 vectors of 8 columns: one vpmaddwd per (row, vector) per 2 k, on codes widened to
// 16 bits (exact: |a·w| < 2^15, and a pair's sum < 2^16 fits the int32 lane). `a` holds each row's
// runs widened, run g of row r at a + r·lda + g·seg_stride; rows past `rows` repeat the last one
// and are not stored, nor are columns past `cols`.
INLINE AVX2 void tile_avx2(int MR, int rows, int cols, int segments, int k2,
                                                                const int16_t *a, int lda, int seg_stride,
                                                                const int16_t *bp, int bstride, int32_t *c, int ldc) {
    __m256i acc[12];
    for (int t = 0; t < 2 * MR; t++) acc[t] = _mm256_setzero_si256();
    const int16_t *ar[6];
    #pragma unroll
    for (int r = 0; r < MR; r++) ar[r] = a + (size_t)(r < rows ? r : rows - 1) * lda;
    for (int g = 0; g < segments; g++) {
        const int16_t *bg = bp + (size_t)g * k2 * bstride;
        for (int q = 0; q < k2; q++) {
            __m256i b0 = _mm256_loadu_si256((const __m256i *)(bg + (size_t)q * bstride));
            __m256i b1 = _mm256_loadu_si256((const __m256i *)(bg + (size_t)q * bstride + 16));
            #pragma unroll
            for (int r = 0; r < MR; r++) {
                int32_t pair;
                memcpy(&pair, ar[r] + (size_t)g * seg_stride + 2 * q, 4);
                __m256i av = _mm256_set1_epi32(pair);
                acc[2 * r] = _mm256_add_epi32(acc[2 * r], _mm256_madd_epi16(av, b0));
                acc[2 * r + 1] = _mm256_add_epi32(acc[2 * r + 1], _mm256_madd_epi16(av, b1));
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        int32_t *out = c + (size_t)r * ldc;
        if (cols >= 16) {
            _mm256_storeu_si256((__m256i *)out, acc[2 * r]);
            _mm256_storeu_si256((__m256i *)(out + 8), acc[2 * r + 1]);
            continue;
        }
        int32_t lanes[16];
        _mm256_storeu_si256((__m256i *)lanes, acc[2 * r]);
        _mm256_storeu_si256((__m256i *)(lanes + 8), acc[2 * r + 1]);
        memcpy(out, lanes, sizeof(int32_t) * (size_t)cols);
    }
}

// Blocks of 6 rows: each block's runs widened to 16 bits once (k padded to 4 with zeros), then
// every panel of 16 columns against them.
static AVX2 void gemm_u8s8_avx2(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride,
                                const int8_t *packed, int32_t *c, int ldc) {
    int k4 = (kseg + 3) / 4 * 4, bstride = (n + 15) / 16 * 32;
    int run = 5 * lda + k4;
    int16_t *wide = malloc(sizeof(int16_t) * (size_t)segments * run + 64);
    for (int i = 0; i < m; i += 6) {
        int rows = m - i < 6 ? m - i : 6, span = (rows - 1) * lda + k4;
        for (int g = 0; g < segments; g++) {
            const uint8_t *src = a + (size_t)i * lda + (size_t)g * seg_stride;
            int16_t *dst = wide + (size_t)g * run;
            int t = 0;
            for (; t + 16 <= span; t += 16)
                _mm256_storeu_si256((__m256i *)(dst + t),
                        _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(src + t))));
            for (; t < span; t++) dst[t] = src[t];
        }
        for (int j = 0; j < n; j += 16) {
            const int16_t *bp = (const int16_t *)packed + (size_t)j * 2;
            int32_t *cij = c + (size_t)i * ldc + j;
            int cols = n - j;
            if (rows > 4) tile_avx2(6, rows, cols, segments, k4 / 2, wide, lda, run, bp, bstride, cij, ldc);
            else if (rows > 2) tile_avx2(4, rows, cols, segments, k4 / 2, wide, lda, run, bp, bstride, cij, ldc);
            else tile_avx2(2, rows, cols, segments, k4 / 2, wide, lda, run, bp, bstride, cij, ldc);
        }
    }
    free(wide);
}
#endif

static enum path int8_path(void) {
#if defined(__x86_64__)
    int level = precis_kernel_level();
    if (level == 2 && __builtin_cpu_supports("avx512vnni")) return VNNI_PATH;
    if (level >= 1) return AVX2_PATH;
#endif
    return PORTABLE;
}

int precis_gemm_u8s8_tile_rows(int n) {
    switch (int8_path()) {
    case VNNI_PATH: return n <= 16 ? 16 : n <= 32 ? 8 : 4;
    case AVX2_PATH: return 6;
    default: return 1;
    }
}

const char *precis_gemm_u8s8_path(void) {
    static const char *names[] = {"portable", "avx2", "avx512-vnni"};
    return names[int8_path()];
}

void precis_gemm_u8s8_segments(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride,
                               const int8_t *packed, int32_t *c, int ldc, int force_portable) {
#if defined(__x86_64__)
    enum path path = force_portable ? PORTABLE : int8_path();
    if (path == VNNI_PATH) return gemm_u8s8_vnni(m, n, segments, kseg, a, lda, seg_stride, packed, c, ldc, NULL);
    if (path == AVX2_PATH) return gemm_u8s8_avx2(m, n, segments, kseg, a, lda, seg_stride, packed, c, ldc);
#endif
    gemm_u8s8_portable(m, n, segments, kseg, a, lda, seg_stride, packed, c, ldc);
}

void precis_gemm_u8s8_codes(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride,
                            const int8_t *packed, int row_width, int width, const precis_requantization *rq,
                            uint8_t *out) {
#if defined(__x86_64__)
    if (int8_path() == VNNI_PATH) {
        codes_out q = {.rq = rq, .row_width = row_width, .width = width, .n = n, .out = out};
        return gemm_u8s8_vnni(m, n, segments, kseg, a, lda, seg_stride, packed, NULL, 0, &q);
    }
#endif
    int32_t *sums = malloc(sizeof(int32_t) * (size_t)m * n);
    precis_gemm_u8s8_segments(m, n, segments, kseg, a, lda, seg_stride, packed, sums, n, 0);
    for (int i = 0; i < m; i++) {
        int y = i / row_width, x = i % row_width;
        if (x < width)
            precis_requantize_u8(sums + (size_t)i * n, 1, n, rq->correction, rq->scale, rq->zero, rq->low, rq->high,
                                 out + ((size_t)y * width + x) * n);
    }
    free(sums);
}

void precis_gemm_u8s8(int m, int n, int k, const uint8_t *a, int lda, const int8_t *packed, int32_t *c, int ldc,
                      int force_portable) {
    precis_gemm_u8s8_segments(m, n, 1, k, a, lda, 0, packed, c, ldc, force_portable);
}

INLINE void requantize(const int32_t *acc, int rows, int channels,
                                                          const int32_t *correction, const float *scale, float zero,
                       float low, float high, uint8_t *out) {
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
            q = q > high ? high : q;
            o[f] = (uint8_t)(int)q;
        }
    }
}

#if defined(__x86_64__)
// `requantize` 16 channels at a time (`codes16`).
static AVX512 void requantize_avx512(const int32_t *acc, int rows, int channels, const int32_t *correction,
                                       const float *scale, float zero, float low, float high, uint8_t *out) {
    for (int f = 0; f < channels; f += 16) {
        __mmask16 m = channels - f >= 16 ? 0xFFFF : (__mmask16)((1u << (channels - f)) - 1);
        __m512i c = _mm512_maskz_loadu_epi32(m, correction + f);
        __m512 s = _mm512_maskz_loadu_ps(m, scale + f);
        for (int r = 0; r < rows; r++)
            store_codes(out + (size_t)r * channels + f, m,
                        codes16(_mm512_maskz_loadu_epi32(m, acc + (size_t)r * channels + f), c, s, zero, low, high));
    }
}

static AVX2 void requantize_avx2(const int32_t *acc, int rows, int channels, const int32_t *correction,
                                 const float *scale, float zero, float low, float high, uint8_t *out) {
    requantize(acc, rows, channels, correction, scale, zero, low, high, out);
}
#endif

void precis_requantize_u8(const int32_t *acc, int rows, int channels, const int32_t *correction, const float *scale,
                          float zero, float low, float high, uint8_t *out) {
#if defined(__x86_64__)
    int level = precis_kernel_level();
    if (level == 2) return requantize_avx512(acc, rows, channels, correction, scale, zero, low, high, out);
    if (level == 1) return requantize_avx2(acc, rows, channels, correction, scale, zero, low, high, out);
#endif
    requantize(acc, rows, channels, correction, scale, zero, low, high, out);
}

void precis_requantize_add_u8(const int32_t *acc, int rows, int channels, const int32_t *correction, const float *scale,
                              const uint8_t *skip, float skip_scale, float skip_zero, float zero, float low, float high,
                              uint8_t *out) {
#pragma clang fp contract(off)
    for (int r = 0; r < rows; r++) {
        const int32_t *a = acc + (size_t)r * channels;
        const uint8_t *b = skip + (size_t)r * channels;
        uint8_t *o = out + (size_t)r * channels;
        for (int f = 0; f < channels; f++) {
            float v = scale[f] * (float)(a[f] + correction[f]) + skip_scale * ((float)b[f] - skip_zero);
            v = v < -1e6f ? -1e6f : v > 1e6f ? 1e6f : v;
            float q = (v + 12582912.0f) - 12582912.0f + zero;
            q = q < low ? low : q;
            q = q > high ? high : q;
            o[f] = (uint8_t)(int)q;
        }
    }
}

#if defined(__x86_64__)
static AVX512 void quantize_avx512(const float *x, long count, double scale, double zero, double qmin, double qmax,
                                     double offset, uint8_t *out) {
    const __m512d s = _mm512_set1_pd(scale), z = _mm512_set1_pd(zero), lo = _mm512_set1_pd(qmin),
                  hi = _mm512_set1_pd(qmax), off = _mm512_set1_pd(offset);
    for (long i = 0; i < count; i += 8) {
        __mmask8 m = count - i >= 8 ? 0xFF : (__mmask8)((1u << (count - i)) - 1);
        __m512d q = _mm512_div_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + i)), s);
        q = _mm512_add_pd(_mm512_roundscale_pd(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), z);
        q = _mm512_mask_mov_pd(q, _mm512_cmp_pd_mask(q, q, _CMP_UNORD_Q), z);
        q = _mm512_add_pd(_mm512_min_pd(_mm512_max_pd(q, lo), hi), off);
        _mm_mask_storeu_epi8(out + i, m, _mm256_cvtepi32_epi8(_mm512_cvttpd_epi32(q)));
    }
}
#endif

void precis_quantize_u8(const float *x, long count, double scale, int zero_point, int qmin, int qmax, int offset,
                        uint8_t *out) {
#if defined(__x86_64__)
    if (precis_kernel_level() == 2)
        return quantize_avx512(x, count, scale, zero_point, qmin, qmax, offset, out);
#endif
    for (long i = 0; i < count; i++) {
        double q = nearbyint((double)x[i] / scale) + zero_point;
        q = q != q ? zero_point : q < qmin ? qmin : q > qmax ? qmax : q;
        out[i] = (uint8_t)(int)(q + offset);
    }
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
