// AVX-512 pieces the convolution, pooling and half kernels share (x86-64 only; each kernel that
// uses them carries the target attribute and is called only where the CPU has it).
#ifndef PRECIS_AVX512_H
#define PRECIS_AVX512_H
#include <immintrin.h>

#include "target.h"


// The first `count` of 16 lanes.
static inline __mmask16 lanes(int count) {
    return count >= 16 ? 0xFFFF : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

// acc + bias, and with relu 0 where that is <= 0 (NaN stays NaN).
INLINE AVX512 __m512 activate(__m512 acc, __m512 bias, int relu) {
    __m512 s = _mm512_add_ps(acc, bias);
    return relu ? _mm512_mask_mov_ps(s, _mm512_cmp_ps_mask(s, _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps())
                : s;
}

// The lanes where v beats best in max pooling: larger, or a NaN over a number.
INLINE AVX512 __mmask16 wins(__m512 best, __m512 v) {
    return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
           (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
}

// v where it beats best, else best.
INLINE AVX512 __m512 larger(__m512 best, __m512 v) { return _mm512_mask_mov_ps(best, wins(best, v), v); }

static const int even_lanes[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
static const int odd_lanes[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};

// The maxima of 16 2 x 2 windows of rows `w` apart, from their top rows (t0, t1: 32 values) and
// bottom rows (b0, b1), taken in window order (top left, top right, bottom left, bottom right) as
// `MaxPooling` takes them. With `from`, it is set to where each maximum is: `at` (the windows'
// top-left indices) plus its offset in the window.
INLINE AVX512 __m512 pool16(__m512 t0, __m512 t1, __m512 b0, __m512 b1, __m512i at, int w, __m512i *from) {
    const __m512i even = _mm512_loadu_si512(even_lanes), odd = _mm512_loadu_si512(odd_lanes);
    __m512 best = _mm512_permutex2var_ps(t0, even, t1);
    __m512 next[3] = {_mm512_permutex2var_ps(t0, odd, t1), _mm512_permutex2var_ps(b0, even, b1),
                      _mm512_permutex2var_ps(b0, odd, b1)};
    int offsets[3] = {1, w, w + 1};
    if (from) *from = at;
    #pragma unroll
    for (int k = 0; k < 3; k++) {
        __mmask16 m = wins(best, next[k]);
        best = _mm512_mask_mov_ps(best, m, next[k]);
        if (from) *from = _mm512_mask_mov_epi32(*from, m, _mm512_add_epi32(at, _mm512_set1_epi32(offsets[k])));
    }
    return best;
}

// v[0..<16] transposed as a 16 x 16 matrix: afterwards v[f] lane p is what v[p] lane f was.
INLINE AVX512 void transpose16(__m512 *v) {
    __m512 t[16], u[16];
    #pragma unroll
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    #pragma unroll
    for (int i = 0; i < 4; i++) {
        #pragma unroll
        for (int h = 0; h < 2; h++) {
            __m512d x = _mm512_castps_pd(t[4 * i + h]), y = _mm512_castps_pd(t[4 * i + h + 2]);
            u[4 * i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
            u[4 * i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
        }
    }
    // u[4i + j], 128-bit lane L: pixels 4i..4i+3 of filter 4L + j.
    #pragma unroll
    for (int j = 0; j < 4; j++) {
        __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
        __m512 c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44), d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
        v[j] = _mm512_shuffle_f32x4(a, c, 0x88);
        v[4 + j] = _mm512_shuffle_f32x4(a, c, 0xDD);
        v[8 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
        v[12 + j] = _mm512_shuffle_f32x4(b, d, 0xDD);
    }
}

#endif
