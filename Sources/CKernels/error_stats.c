#include "kernels.h"
#include "target.h"

#include <math.h>
#include <stdlib.h>

// The sums below must round exactly as Swift's separate multiplies and adds do.
#pragma clang fp contract(off)

// One element, as `ErrorStats.add` does it.
INLINE void add_one(double v, double r, double min_normal, precis_error_sums *s) {
    double m = fabs(v), e = m < INFINITY ? fabs(v - r) : INFINITY;
    s->nans += v != v;
    s->infinities += m == INFINITY;
    s->signal += r * r;
    s->noise += e * e;
    s->absolute_sum += e;
    s->max_absolute = e >= s->max_absolute ? e : s->max_absolute;
    s->subnormals += v != 0 && m < min_normal;
    s->flushed += v == 0 && r != 0 && fabs(r) < min_normal;
}

enum element { F32, F64, F16 };

// The plain loop, for float and double (half needs a vector level: Swift keeps its own loop).
static void portable(const void *values, enum element e, const double *reference, int64_t count, double min_normal,
                     precis_error_sums *s) {
    if (e == F16) abort();
    for (int64_t i = 0; i < count; i++) {
        double v = e == F32 ? ((const float *)values)[i] : ((const double *)values)[i];
        add_one(v, reference[i], min_normal, s);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>


// Eight elements: everything but the three sums in vectors, the sums lane by lane in element order.
INLINE AVX512 void add_eight(__m512d v, __m512d r, __m512d min_normal,
                                                                  __m512d *max, precis_error_sums *s) {
    const __m512d inf = _mm512_set1_pd(INFINITY), zero = _mm512_setzero_pd();
    __m512d m = _mm512_abs_pd(v);
    __mmask8 finite = _mm512_cmp_pd_mask(m, inf, _CMP_LT_OQ);
    __m512d e = _mm512_mask_mov_pd(inf, finite, _mm512_abs_pd(_mm512_sub_pd(v, r)));
    s->nans += __builtin_popcount(_mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q));
    s->infinities += __builtin_popcount(_mm512_cmp_pd_mask(m, inf, _CMP_EQ_OQ));
    s->subnormals += __builtin_popcount(_mm512_cmp_pd_mask(v, zero, _CMP_NEQ_UQ) &
                                        _mm512_cmp_pd_mask(m, min_normal, _CMP_LT_OQ));
    s->flushed += __builtin_popcount(_mm512_cmp_pd_mask(v, zero, _CMP_EQ_OQ) &
                                     _mm512_cmp_pd_mask(r, zero, _CMP_NEQ_UQ) &
                                     _mm512_cmp_pd_mask(_mm512_abs_pd(r), min_normal, _CMP_LT_OQ));
    *max = _mm512_mask_mov_pd(*max, _mm512_cmp_pd_mask(e, *max, _CMP_GE_OQ), e);
    double rr[8], ee[8], ea[8];
    _mm512_storeu_pd(rr, _mm512_mul_pd(r, r));
    _mm512_storeu_pd(ee, _mm512_mul_pd(e, e));
    _mm512_storeu_pd(ea, e);
    double signal = s->signal, noise = s->noise, absolute = s->absolute_sum;
    for (int l = 0; l < 8; l++) {
        signal += rr[l];
        noise += ee[l];
        absolute += ea[l];
    }
    s->signal = signal, s->noise = noise, s->absolute_sum = absolute;
}

INLINE AVX512 void finish_max(__m512d max, precis_error_sums *s) {
    double lanes[8];
    _mm512_storeu_pd(lanes, max);
    for (int l = 0; l < 8; l++) s->max_absolute = lanes[l] >= s->max_absolute ? lanes[l] : s->max_absolute;
}

// One value, widened to double.
INLINE F16C double load_one(const void *v, int64_t i, enum element e) {
    switch (e) {
    case F32: return ((const float *)v)[i];
    case F64: return ((const double *)v)[i];
    default: return _cvtsh_ss(((const uint16_t *)v)[i]);
    }
}

// Eight values from element i on, widened to double.
INLINE AVX512 __m512d load_eight(const void *v, int64_t i, enum element e) {
    switch (e) {
    case F32: return _mm512_cvtps_pd(_mm256_loadu_ps((const float *)v + i));
    case F64: return _mm512_loadu_pd((const double *)v + i);
    default: return _mm512_cvtps_pd(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)v + i))));
    }
}

INLINE AVX512 void add_all(const void *values, enum element e,
                                                                const double *reference, int64_t count,
                                                                double min_normal, precis_error_sums *s) {
    __m512d max = _mm512_setzero_pd(), low = _mm512_set1_pd(min_normal);
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) add_eight(load_eight(values, i, e), _mm512_loadu_pd(reference + i), low, &max, s);
    finish_max(max, s);
    for (; i < count; i++) add_one(load_one(values, i, e), reference[i], min_normal, s);
}


// Four elements, as `add_eight` does them.
INLINE AVX2 void add_four(__m256d v, __m256d r, __m256d min_normal,
                                                               __m256d *max, precis_error_sums *s) {
    const __m256d inf = _mm256_set1_pd(INFINITY), zero = _mm256_setzero_pd();
    const __m256d sign = _mm256_set1_pd(-0.0);
    __m256d m = _mm256_andnot_pd(sign, v);
    __m256d e = _mm256_blendv_pd(inf, _mm256_andnot_pd(sign, _mm256_sub_pd(v, r)), _mm256_cmp_pd(m, inf, _CMP_LT_OQ));
    s->nans += __builtin_popcount(_mm256_movemask_pd(_mm256_cmp_pd(v, v, _CMP_UNORD_Q)));
    s->infinities += __builtin_popcount(_mm256_movemask_pd(_mm256_cmp_pd(m, inf, _CMP_EQ_OQ)));
    s->subnormals += __builtin_popcount(_mm256_movemask_pd(
        _mm256_and_pd(_mm256_cmp_pd(v, zero, _CMP_NEQ_UQ), _mm256_cmp_pd(m, min_normal, _CMP_LT_OQ))));
    __m256d tiny = _mm256_cmp_pd(_mm256_andnot_pd(sign, r), min_normal, _CMP_LT_OQ);
    s->flushed += __builtin_popcount(_mm256_movemask_pd(_mm256_and_pd(
        _mm256_and_pd(_mm256_cmp_pd(v, zero, _CMP_EQ_OQ), _mm256_cmp_pd(r, zero, _CMP_NEQ_UQ)), tiny)));
    *max = _mm256_blendv_pd(*max, e, _mm256_cmp_pd(e, *max, _CMP_GE_OQ));
    double rr[4], ee[4], ea[4];
    _mm256_storeu_pd(rr, _mm256_mul_pd(r, r));
    _mm256_storeu_pd(ee, _mm256_mul_pd(e, e));
    _mm256_storeu_pd(ea, e);
    double signal = s->signal, noise = s->noise, absolute = s->absolute_sum;
    for (int l = 0; l < 4; l++) {
        signal += rr[l];
        noise += ee[l];
        absolute += ea[l];
    }
    s->signal = signal, s->noise = noise, s->absolute_sum = absolute;
}

INLINE AVX2 __m256d load_four(const void *v, int64_t i, enum element e) {
    switch (e) {
    case F32: return _mm256_cvtps_pd(_mm_loadu_ps((const float *)v + i));
    case F64: return _mm256_loadu_pd((const double *)v + i);
    default: return _mm256_cvtps_pd(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)((const uint16_t *)v + i))));
    }
}

INLINE AVX2 void add_all_avx2(const void *values, enum element e,
                                                                   const double *reference, int64_t count,
                                                                   double min_normal, precis_error_sums *s) {
    __m256d max = _mm256_setzero_pd(), low = _mm256_set1_pd(min_normal);
    int64_t i = 0;
    for (; i + 4 <= count; i += 4) add_four(load_four(values, i, e), _mm256_loadu_pd(reference + i), low, &max, s);
    double lanes[4];
    _mm256_storeu_pd(lanes, max);
    for (int l = 0; l < 4; l++) s->max_absolute = lanes[l] >= s->max_absolute ? lanes[l] : s->max_absolute;
    for (; i < count; i++) add_one(load_one(values, i, e), reference[i], min_normal, s);
}

static AVX512 void stats_avx512(const void *values, enum element e, const double *reference, int64_t count,
                                double min_normal, precis_error_sums *s) {
    switch (e) {
    case F32: add_all(values, F32, reference, count, min_normal, s); break;
    case F64: add_all(values, F64, reference, count, min_normal, s); break;
    default: add_all(values, F16, reference, count, min_normal, s);
    }
}

static AVX2 void stats_avx2(const void *values, enum element e, const double *reference, int64_t count,
                            double min_normal, precis_error_sums *s) {
    switch (e) {
    case F32: add_all_avx2(values, F32, reference, count, min_normal, s); break;
    case F64: add_all_avx2(values, F64, reference, count, min_normal, s); break;
    default: add_all_avx2(values, F16, reference, count, min_normal, s);
    }
}

static void stats(const void *values, enum element e, const double *reference, int64_t count, double min_normal,
                  precis_error_sums *s) {
    int level = precis_kernel_level();
    if (level == 2) return stats_avx512(values, e, reference, count, min_normal, s);
    if (level == 1) return stats_avx2(values, e, reference, count, min_normal, s);
    portable(values, e, reference, count, min_normal, s);
}

#else

static void stats(const void *values, enum element e, const double *reference, int64_t count, double min_normal,
                  precis_error_sums *s) {
    portable(values, e, reference, count, min_normal, s);
}

#endif

int precis_error_kernels(void) { return precis_kernel_level() > 0; }

void precis_error_stats_f32(const float *values, const double *reference, int64_t count, double min_normal,
                            precis_error_sums *s) {
    stats(values, F32, reference, count, min_normal, s);
}

void precis_error_stats_f64(const double *values, const double *reference, int64_t count, double min_normal,
                            precis_error_sums *s) {
    stats(values, F64, reference, count, min_normal, s);
}

void precis_error_stats_f16(const uint16_t *values, const double *reference, int64_t count, double min_normal,
                            precis_error_sums *s) {
    stats(values, F16, reference, count, min_normal, s);
}
