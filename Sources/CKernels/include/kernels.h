// Integer kernels that need CPU instructions Swift cannot name: int8 x int8 -> int32 GEMM with
// AVX-512 VNNI (vpdpbusd) where the CPU has it, and a portable twin with identical results.
#ifndef PRECIS_KERNELS_H
#define PRECIS_KERNELS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Which int8 GEMM `precis_gemm_s8` runs on this CPU: "avx512-vnni" or "portable".
const char *precis_gemm_s8_path(void);

/// C (m x n, int32, row stride ldc) = A (m x k, int8, row stride lda) * B (k x n, int8, row stride ldb),
/// exact 32-bit integer arithmetic (sums wrap only beyond 2^31, i.e. k > 133,000 at full scale).
/// `force_portable` selects the portable path even when VNNI is available (for tests).
void precis_gemm_s8(int m, int n, int k, const int8_t *a, int lda, const int8_t *b, int ldb, int32_t *c, int ldc,
                    int force_portable);

#ifdef __cplusplus
}
#endif
#endif
