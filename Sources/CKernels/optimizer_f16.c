// Optimizer steps of a strict half network: every operation rounded to IEEE half, as Swift's
// `Float16` arithmetic does it (an operation in float32 on half operands, rounded once to half, is
// the correctly rounded half result), 8 values at a time with F16C.
#include "kernels.h"

#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>

#include "target.h"

#define ROUND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

// x rounded to half and widened back.
INLINE AVX2 __m256 h(__m256 x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, ROUND)); }

INLINE AVX2 __m256 load8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

INLINE AVX2 void store8(uint16_t *p, __m256 x) { _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(x, ROUND)); }

INLINE AVX2 __m256 broadcast(uint16_t x) { return _mm256_cvtph_ps(_mm_set1_epi16((short)x)); }

// The `count` values at src (fewer than 8) as a block of 8, zero past them.
INLINE void gather(uint16_t *block, const uint16_t *src, int64_t count) {
    for (int64_t i = 0; i < 8; i++) block[i] = i < count ? src[i] : 0;
}

AVX2 void precis_optimizer_f16(int kind, uint16_t *p, const uint16_t *g, uint16_t *s1, uint16_t *s2, int64_t count,
                               const uint16_t *constants) {
    __m256 c0 = broadcast(constants[0]), c1 = broadcast(constants[1]), c2 = broadcast(constants[2]),
           c3 = broadcast(constants[3]);
    for (int64_t i = 0; i < count; i += 8) {
        int64_t n = count - i < 8 ? count - i : 8;
        uint16_t pb[8], gb[8], ab[8], bb[8];
        uint16_t *pp = p + i, *ap = s1 + i, *bp = s2 + i;
        const uint16_t *gp = g + i;
        if (n < 8) {
            gather(pb, pp, n);
            gather(gb, gp, n);
            gather(ab, ap, n);
            gather(bb, bp, n);
            pp = pb, gp = gb, ap = ab, bp = bb;
        }
        __m256 w = load8(pp), d = load8(gp);
        switch (kind) {
        case 0:  // sgd: p -= lr·g
            w = h(_mm256_sub_ps(w, h(_mm256_mul_ps(c0, d))));
            break;
        case 1: {  // momentum: v = mu·v - lr·g; p += v
            __m256 v = h(_mm256_sub_ps(h(_mm256_mul_ps(c1, load8(ap))), h(_mm256_mul_ps(c0, d))));
            store8(ap, v);
            w = h(_mm256_add_ps(w, v));
            break;
        }
        default: {  // adam: m += b1·(g - m); v += b2·(g·g - v); p -= lrt·m / (sqrt(v) + eps)
            __m256 m = load8(ap), v = load8(bp);
            m = h(_mm256_add_ps(m, h(_mm256_mul_ps(c1, h(_mm256_sub_ps(d, m))))));
            v = h(_mm256_add_ps(v, h(_mm256_mul_ps(c2, h(_mm256_sub_ps(h(_mm256_mul_ps(d, d)), v))))));
            store8(ap, m);
            store8(bp, v);
            __m256 step = h(_mm256_div_ps(h(_mm256_mul_ps(c0, m)), h(_mm256_add_ps(h(_mm256_sqrt_ps(v)), c3))));
            w = h(_mm256_sub_ps(w, step));
            break;
        }
        }
        store8(pp, w);
        if (n < 8) {
            for (int64_t k = 0; k < n; k++) {
                p[i + k] = pb[k];
                s1[i + k] = ab[k];
                s2[i + k] = bb[k];
            }
        }
    }
}

#else

void precis_optimizer_f16(int kind, uint16_t *p, const uint16_t *g, uint16_t *s1, uint16_t *s2, int64_t count,
                          const uint16_t *constants) {
    abort();
}

#endif
