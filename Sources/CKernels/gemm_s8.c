#include "kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void gemm_s8_portable(int m, int n, int k, const int8_t *a, int lda, const int8_t *b, int ldb, int32_t *c, int ldc) {
    for (int i = 0; i < m; i++) {
        int32_t *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) ci[j] = 0;
        for (int p = 0; p < k; p++) {
            int32_t av = a[(size_t)i * lda + p];
            const int8_t *bp = b + (size_t)p * ldb;
            for (int j = 0; j < n; j++) ci[j] += av * (int32_t)bp[j];
        }
    }
}

#if defined(__x86_64__)
// vpdpbusd multiplies unsigned bytes by signed bytes. A is shifted to unsigned (a + 128) and the
// shift is removed afterwards: sum((a+128) b) - 128 sum(b). B is packed per 16 columns as
// (k/4, 16, 4) so that one 64-byte vector holds 4 consecutive k for 16 columns.
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void gemm_s8_vnni(int m, int n, int k, const int8_t *a, int lda, const int8_t *b, int ldb, int32_t *c, int ldc) {
    int k4 = (k + 3) / 4, panels = (n + 15) / 16;
    int8_t *pb = calloc((size_t)panels * k4 * 64, 1);
    int32_t *colsum = calloc((size_t)panels * 16, sizeof(int32_t));
    uint8_t *au = malloc((size_t)k4 * 4);
    for (int p = 0; p < k; p++)
        for (int j = 0; j < n; j++) {
            int8_t v = b[(size_t)p * ldb + j];
            pb[(((size_t)(j / 16) * k4 + p / 4) * 16 + j % 16) * 4 + p % 4] = v;
            colsum[j] += v;
        }
    for (int i = 0; i < m; i++) {
        const int8_t *ai = a + (size_t)i * lda;
        for (int p = 0; p < k4 * 4; p++) au[p] = p < k ? (uint8_t)(ai[p] + 128) : 128;
        for (int panel = 0; panel < panels; panel++) {
            __m512i acc = _mm512_setzero_si512();
            const int8_t *bp = pb + (size_t)panel * k4 * 64;
            for (int q = 0; q < k4; q++) {
                int32_t quad;
                memcpy(&quad, au + 4 * q, 4);
                acc = _mm512_dpbusd_epi32(acc, _mm512_set1_epi32(quad), _mm512_loadu_si512(bp + (size_t)q * 64));
            }
            acc = _mm512_sub_epi32(acc, _mm512_slli_epi32(_mm512_loadu_si512(colsum + panel * 16), 7));
            int cols = n - panel * 16 < 16 ? n - panel * 16 : 16;
            _mm512_mask_storeu_epi32(c + (size_t)i * ldc + panel * 16, (__mmask16)((1u << cols) - 1), acc);
        }
    }
    free(pb);
    free(colsum);
    free(au);
}

static int has_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
}
#endif

const char *precis_gemm_s8_path(void) {
#if defined(__x86_64__)
    if (has_vnni()) return "avx512-vnni";
#endif
    return "portable";
}

void precis_gemm_s8(int m, int n, int k, const int8_t *a, int lda, const int8_t *b, int ldb, int32_t *c, int ldc,
                    int force_portable) {
#if defined(__x86_64__)
    if (!force_portable && has_vnni()) {
        gemm_s8_vnni(m, n, k, a, lda, b, ldb, c, ldc);
        return;
    }
#endif
    gemm_s8_portable(m, n, k, a, lda, b, ldb, c, ldc);
}
