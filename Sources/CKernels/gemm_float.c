// The float32 and float64 GEMMs behind `gemm` and `gemmABt`. Each kernel is written once over
// generic vectors and compiled three times: for AVX-512, for AVX2 with FMA, and for any x86-64
// (there a float32 fused multiply-add is computed exactly in double, `fma_odd`, and a float64 one
// by the C library's fma). Every element of a result is the same chain of fused multiply-adds at
// every level, so every level gives the same values.
#include "fused.h"
#include "kernels.h"
#include "target.h"

#include <stdlib.h>
#include <string.h>

// Panels are two vectors wide: 512-bit vectors with AVX-512, else 256-bit ones (in AVX2 registers,
// or as the portable code's pairs of 128-bit ones). 4 rows × 2 vectors keep 8 accumulators and the
// operands within AVX2's 16 registers; AVX-512 takes 8 rows.
int precis_gemm_panel_width(int element_size) {
    return (precis_kernel_level() == 2 ? 64 : 32) * 2 / element_size;
}

// One block of 8 rows of A (packed as (k, 8)) times one panel of B (rows at b + brows[p], NV
// vectors wide), rows r0 ..< r0 + R of the block: every element one fused multiply-add chain from
// +0 over ascending p. Stores the first `rows` rows of the block and `cols` columns.
#define PANEL_TILE(name, T, V, R, NV, attr, fma)                                                                       \
    INLINE attr void name(int r0, int rows, int cols, int k, const T *a, const T *b, const int64_t *brows, T *c,       \
                          int ldc) {                                                                                   \
        enum { L = sizeof(V) / sizeof(T) };                                                                            \
        V acc[R][NV];                                                                                                  \
        memset(acc, 0, sizeof acc);                                                                                    \
        for (int p = 0; p < k; p++) {                                                                                  \
            V x[NV];                                                                                                   \
            memcpy(x, b + brows[p], sizeof x);                                                                         \
            _Pragma("unroll")                                                                                          \
            for (int r = 0; r < R; r++) {                                                                              \
                V s;                                                                                                   \
                _Pragma("unroll")                                                                                      \
                for (int l = 0; l < L; l++) s[l] = a[p * 8 + r0 + r];                                                  \
                _Pragma("unroll")                                                                                      \
                for (int v = 0; v < NV; v++) acc[r][v] = fma(s, x[v], acc[r][v]);                                      \
            }                                                                                                          \
        }                                                                                                              \
        for (int r = 0; r < R && r0 + r < rows; r++) {                                                                 \
            if (cols == NV * L) {                                                                                      \
                memcpy(c + (size_t)(r0 + r) * ldc, acc[r], sizeof acc[r]);                                             \
            } else {                                                                                                   \
                T t[NV * L];                                                                                           \
                memcpy(t, acc[r], sizeof t);                                                                           \
                memcpy(c + (size_t)(r0 + r) * ldc, t, sizeof(T) * cols);                                               \
            }                                                                                                          \
        }                                                                                                              \
    }

// Panels [panel_begin, panel_end) of NV·L columns, each against every block of 8 rows, R rows at a
// time. The last panel, when partial, is first copied with zeros to full width.
#define PANELS(name, tile, T, V, R, NV, attr, fma)                                                                     \
    PANEL_TILE(tile, T, V, R, NV, attr, fma)                                                                           \
    static attr void name(int m, int n, int k, const T *ap, const T *b, const int64_t *brows, T *c, int ldc,           \
                          int panel_begin, int panel_end) {                                                            \
        enum { W = sizeof(V) / sizeof(T) * NV };                                                                       \
        T *edge = NULL;                                                                                                \
        int64_t *edge_rows = NULL;                                                                                     \
        for (int panel = panel_begin; panel < panel_end; panel++) {                                                    \
            int j = panel * W, cols = n - j < W ? n - j : W;                                                           \
            const T *bp = b + j;                                                                                       \
            const int64_t *rows = brows;                                                                               \
            if (cols < W) {                                                                                            \
                edge = calloc((size_t)k * W, sizeof(T));                                                               \
                edge_rows = malloc(sizeof(int64_t) * (size_t)(k > 0 ? k : 1));                                         \
                for (int p = 0; p < k; p++) {                                                                          \
                    memcpy(edge + (size_t)p * W, b + brows[p] + j, sizeof(T) * cols);                                  \
                    edge_rows[p] = (int64_t)p * W;                                                                     \
                }                                                                                                      \
                bp = edge;                                                                                             \
                rows = edge_rows;                                                                                      \
            }                                                                                                          \
            for (int block = 0; block * 8 < m; block++) {                                                              \
                int block_rows = m - block * 8 < 8 ? m - block * 8 : 8;                                                \
                const T *a = ap + (size_t)block * k * 8;                                                               \
                T *cb = c + (size_t)block * 8 * ldc + j;                                                               \
                for (int r0 = 0; r0 < block_rows; r0 += R) tile(r0, block_rows, cols, k, a, bp, rows, cb, ldc);        \
            }                                                                                                          \
        }                                                                                                              \
        free(edge);                                                                                                    \
        free(edge_rows);                                                                                               \
    }

// Lanes added in neighbouring pairs, then pairs of those, and so on.
#define PAIRWISE(name, T, V)                                                                                           \
    INLINE T name(const V *x) {                                                                                        \
        T s[sizeof(V) / sizeof(T)];                                                                                    \
        memcpy(s, x, sizeof s);                                                                                        \
        for (int width = sizeof(V) / sizeof(T) / 2; width >= 1; width /= 2)                                            \
            for (int i = 0; i < width; i++) s[i] = s[2 * i] + s[2 * i + 1];                                            \
        return s[0];                                                                                                   \
    }

PAIRWISE(pairwise_f32, float, f32x16)
PAIRWISE(pairwise_f64, double, f64x16)

// Tiles [tile_begin, tile_end) of 4 x 4 elements of A · Bᵀ (tile t at rows (t % ceil(m/4))·4,
// columns (t / ceil(m/4))·4), each as blocks of BR x BC: every element's products summed in 16
// lanes (lane l takes the positions l, l + 16, ...) and the lanes added pairwise.
#define ABT_TILES(name, T, V, BR, BC, pairwise, attr, fma)                                                             \
    static attr void name(int m, int n, int len, const T *a, int lda, const T *b, const int64_t *brows, T *c,          \
                          int ldc, int tile_begin, int tile_end) {                                                     \
        enum { L = sizeof(V) / sizeof(T) };                                                                            \
        int row_tiles = (m + 3) / 4;                                                                                   \
        for (int t = tile_begin; t < tile_end; t++)                                                                    \
            for (int i = t % row_tiles * 4; i < t % row_tiles * 4 + 4 && i < m; i += BR)                               \
                for (int j = t / row_tiles * 4; j < t / row_tiles * 4 + 4 && j < n; j += BC) {                         \
                    const T *x[BR], *y[BC];                                                                            \
                    _Pragma("unroll")                                                                                  \
                    for (int r = 0; r < BR; r++) x[r] = a + (size_t)(i + r < m ? i + r : i) * lda;                     \
                    _Pragma("unroll")                                                                                  \
                    for (int q = 0; q < BC; q++) y[q] = b + brows[j + q < n ? j + q : j];                              \
                    V s[BR][BC];                                                                                       \
                    memset(s, 0, sizeof s);                                                                            \
                    for (int o = 0; o < len; o += L) {                                                                 \
                        V xv[BR], yv[BC];                                                                              \
                        _Pragma("unroll")                                                                              \
                        for (int r = 0; r < BR; r++) memcpy(&xv[r], x[r] + o, sizeof(V));                              \
                        _Pragma("unroll")                                                                              \
                        for (int q = 0; q < BC; q++) memcpy(&yv[q], y[q] + o, sizeof(V));                              \
                        _Pragma("unroll")                                                                              \
                        for (int r = 0; r < BR; r++)                                                                   \
                            _Pragma("unroll")                                                                          \
                            for (int q = 0; q < BC; q++) s[r][q] = fma(xv[r], yv[q], s[r][q]);                         \
                    }                                                                                                  \
                    for (int r = 0; r < BR && i + r < m; r++)                                                          \
                        for (int q = 0; q < BC && j + q < n; q++)                                                      \
                            c[(size_t)(i + r) * ldc + j + q] = pairwise(&s[r][q]);                                     \
                }                                                                                                      \
    }

#define PORTABLE

// The portable kernels hand wide vectors to the always-inlined fma_odd without AVX, whose calling
// convention for them is not fixed; being inlined, they are never passed in a call.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
PANELS(panels_f32_portable, tile_f32_portable, float, f32x8, 4, 2, PORTABLE, fma_odd8)
PANELS(panels_f64_portable, tile_f64_portable, double, f64x4, 4, 2, PORTABLE, FUSED)
ABT_TILES(abt_f32_portable, float, f32x16, 2, 2, pairwise_f32, PORTABLE, fma_odd16)
ABT_TILES(abt_f64_portable, double, f64x16, 2, 2, pairwise_f64, PORTABLE, FUSED)
#pragma clang diagnostic pop

#if defined(__x86_64__)
PANELS(panels_f32_avx2, tile_f32_avx2, float, f32x8, 4, 2, AVX2, FUSED)
PANELS(panels_f64_avx2, tile_f64_avx2, double, f64x4, 4, 2, AVX2, FUSED)
ABT_TILES(abt_f32_avx2, float, f32x16, 2, 2, pairwise_f32, AVX2, FUSED)
ABT_TILES(abt_f64_avx2, double, f64x16, 2, 2, pairwise_f64, AVX2, FUSED)
PANELS(panels_f32_avx512, tile_f32_avx512, float, f32x16, 8, 2, AVX512, FUSED)
PANELS(panels_f64_avx512, tile_f64_avx512, double, f64x8, 8, 2, AVX512, FUSED)
ABT_TILES(abt_f32_avx512, float, f32x16, 4, 4, pairwise_f32, AVX512, FUSED)
ABT_TILES(abt_f64_avx512, double, f64x16, 4, 4, pairwise_f64, AVX512, FUSED)
#endif

void precis_gemm_f32_panels(int m, int n, int k, const float *ap, const float *b, const int64_t *brows, float *c,
                            int ldc, int panel_begin, int panel_end) {
    LEVELS(panels_f32, m, n, k, ap, b, brows, c, ldc, panel_begin, panel_end)
}

void precis_gemm_f64_panels(int m, int n, int k, const double *ap, const double *b, const int64_t *brows, double *c,
                            int ldc, int panel_begin, int panel_end) {
    LEVELS(panels_f64, m, n, k, ap, b, brows, c, ldc, panel_begin, panel_end)
}

void precis_gemm_abt_f32_tiles(int m, int n, int len, const float *a, int lda, const float *b, const int64_t *brows,
                               float *c, int ldc, int tile_begin, int tile_end) {
    LEVELS(abt_f32, m, n, len, a, lda, b, brows, c, ldc, tile_begin, tile_end)
}

void precis_gemm_abt_f64_tiles(int m, int n, int len, const double *a, int lda, const double *b,
                               const int64_t *brows, double *c, int ldc, int tile_begin, int tile_end) {
    LEVELS(abt_f64, m, n, len, a, lda, b, brows, c, ldc, tile_begin, tile_end)
}
