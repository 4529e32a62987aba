#include "kernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include "avx512.h"

// What every tile reads: x's element (r, k) at x + r·rs + k·ks, its k < fin; w (fin, fout); b or
// NULL; out (rows, fout).
typedef struct {
    const float *x;
    size_t rs, ks;
    int fin;
    const float *w;
    int fout;
    const float *b;
    float *out;
} affine_args;

// out[i][j] for R rows from `row` and the V vectors of outputs from `col` (the last with `last`
// lanes): one fused multiply-add chain per output from +0 over ascending k, each input broadcast
// straight from memory, then + b[j].
INLINE AVX512 void affine_tile(const affine_args *a, int row, int col, __mmask16 last, const int R, const int V) {
    __m512 acc[28];
    for (int i = 0; i < R * V; i++) acc[i] = _mm512_setzero_ps();
    const float *xr = a->x + (size_t)row * a->rs, *wc = a->w + col;
    for (int k = 0; k < a->fin; k++, wc += a->fout, xr += a->ks) {
        __m512 wv[4];
        for (int v = 0; v < V; v++) wv[v] = _mm512_maskz_loadu_ps(v == V - 1 ? last : 0xFFFF, wc + 16 * v);
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_set1_ps(xr[(size_t)r * a->rs]);
            for (int v = 0; v < V; v++) acc[r * V + v] = _mm512_fmadd_ps(xv, wv[v], acc[r * V + v]);
        }
    }
    for (int v = 0; v < V; v++) {
        __mmask16 m = v == V - 1 ? last : 0xFFFF;
        for (int r = 0; r < R; r++) {
            __m512 y = acc[r * V + v];
            if (a->b) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, a->b + col + 16 * v));
            _mm512_mask_storeu_ps(a->out + (size_t)(row + r) * a->fout + col + 16 * v, m, y);
        }
    }
}

// Rows [0, rows) against output vectors [col, col + V·16), R rows a tile (R·V <= 28), then the rest
// a row at a time.
INLINE AVX512 void affine_rows(const affine_args *a, int rows, int col, __mmask16 last, const int R, const int V) {
    int row = 0;
    for (; row + R <= rows; row += R) affine_tile(a, row, col, last, R, V);
    for (; row < rows; row++) affine_tile(a, row, col, last, 1, V);
}

AVX512 void precis_affine_f32(const float *x, int rows, int fin, size_t row_stride, size_t k_stride, const float *w,
                              int fout, const float *b, float *out) {
    affine_args a = {.x = x, .rs = row_stride, .ks = k_stride, .fin = fin, .w = w, .fout = fout, .b = b, .out = out};
    for (int col = 0; col < fout; col += 64) {
        int vectors = (fout - col + 15) / 16 > 4 ? 4 : (fout - col + 15) / 16;
        __mmask16 last = lanes(fout - col - 16 * (vectors - 1));
        switch (vectors) {
        case 1: affine_rows(&a, rows, col, last, 14, 1); break;
        case 2: affine_rows(&a, rows, col, last, 12, 2); break;
        case 3: affine_rows(&a, rows, col, last, 8, 3); break;
        default: affine_rows(&a, rows, col, last, 6, 4); break;
        }
    }
}

#else

void precis_affine_f32(const float *x, int rows, int fin, size_t row_stride, size_t k_stride, const float *w,
                       int fout, const float *b, float *out) {
    (void)x, (void)rows, (void)fin, (void)row_stride, (void)k_stride, (void)w, (void)fout, (void)b, (void)out;
    abort();
}

#endif
