// The instruction sets the kernels use beyond x86-64, as function attributes. The package itself is
// built for any x86-64 CPU; a function that carries one of these runs only where
// `precis_kernel_level()` (or, for VNNI, `precis_gemm_u8s8_path()`) says the CPU has it.
#ifndef PRECIS_TARGET_H
#define PRECIS_TARGET_H

#define INLINE static inline __attribute__((always_inline))
#define F16C __attribute__((target("f16c")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c,avx512vnni")))

#endif
