#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "target.h"

#define CHAINS 12

int precis_peak_kernels(void) {
    return precis_kernel_level() == 2 && __builtin_cpu_supports("avx512vnni");
}

AVX512 float precis_fma_chains(long iterations, float x) {
    __m512 acc[CHAINS], m = _mm512_set1_ps(x), a = _mm512_set1_ps(1.0f - x);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iterations; i++) {
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], m, a);
    }
    __m512 sum = acc[0];
    for (int c = 1; c < CHAINS; c++) sum = _mm512_add_ps(sum, acc[c]);
    return _mm512_reduce_add_ps(sum);
}

AVX512_VNNI int precis_vnni_chains(long iterations, int x) {
    __m512i acc[CHAINS], u = _mm512_set1_epi8((char)x), s = _mm512_set1_epi8((char)(x + 1));
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_epi32(c);
    for (long i = 0; i < iterations; i++) {
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], u, s);
    }
    __m512i sum = acc[0];
    for (int c = 1; c < CHAINS; c++) sum = _mm512_add_epi32(sum, acc[c]);
    return _mm512_reduce_add_epi32(sum);
}

#else

int precis_peak_kernels(void) { return 0; }

float precis_fma_chains(long iterations, float x) {
    (void)iterations;
    return x;
}

int precis_vnni_chains(long iterations, int x) {
    (void)iterations;
    return x;
}

#endif
