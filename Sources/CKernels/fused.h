// Generic vectors and the fused multiply-add every level computes the same: an FMA instruction
// where the CPU has one (FUSED), else fma_odd, exact in double.
#ifndef PRECIS_FUSED_H
#define PRECIS_FUSED_H

#include "target.h"

typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));
typedef double f64x4 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));
typedef double f64x16 __attribute__((vector_size(128)));
typedef long long i64x8 __attribute__((vector_size(64)));
typedef long long i64x16 __attribute__((vector_size(128)));

// a·b + c rounded once to float32, without an FMA instruction: the product of two floats is exact
// in double; the sum is rounded to double and then to odd (moved one ulp towards the rounding
// error when that is not 0 and the last bit is even), after which rounding to float gives the
// correctly rounded result (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums:
// proved algorithms using rounding to odd", IEEE Trans. Computers 57(4), 2008). Infinities and
// NaN pass through unchanged.
#define FMA_ODD(name, VF, VD, VI)                                                                                      \
    INLINE VF name(VF a, VF b, VF c) {                                                                                 \
        VD p = __builtin_convertvector(a, VD) * __builtin_convertvector(b, VD);                                        \
        VD z = __builtin_convertvector(c, VD), s = p + z, t = s - p, e = (p - (s - t)) + (z - t);                      \
        VI bits = (VI)s, same = (e > 0) == (s > 0);                                                                    \
        VI finite = __builtin_elementwise_abs(s) < (VD){} + __builtin_inf();                                           \
        VI odd = (e != 0) & ((bits & 1) == 0) & finite;                                                                \
        return __builtin_convertvector((VD)(bits + (odd & (1 + (~same & -2)))), VF);                                   \
    }

FMA_ODD(fma_odd8, f32x8, f64x8, i64x8)
FMA_ODD(fma_odd16, f32x16, f64x16, i64x16)
#define FUSED __builtin_elementwise_fma

// `return name_<level>(...)` for the kernel level this CPU runs (`precis_kernel_level`): avx512,
// avx2 or portable.
#if defined(__x86_64__)
#define LEVELS(name, ...)                                                                                              \
    switch (precis_kernel_level()) {                                                                                   \
    case 2: return name##_avx512(__VA_ARGS__);                                                                         \
    case 1: return name##_avx2(__VA_ARGS__);                                                                           \
    default: return name##_portable(__VA_ARGS__);                                                                      \
    }
#else
#define LEVELS(name, ...) return name##_portable(__VA_ARGS__);
#endif

#endif
