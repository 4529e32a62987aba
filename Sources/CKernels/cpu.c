#include "kernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static int detect(void) {
    int level = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl");
    level = avx512 ? 2 : avx2 ? 1 : 0;
#endif
    const char *cap = getenv("PRECIS_KERNELS");
    if (cap && strcmp(cap, "portable") == 0) level = 0;
    if (cap && strcmp(cap, "avx2") == 0 && level > 1) level = 1;
    return level;
}

int precis_kernel_level(void) {
    static _Atomic int level = -1;
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    if (l < 0) {
        l = detect();
        atomic_store_explicit(&level, l, memory_order_relaxed);
    }
    return l;
}

const char *precis_kernel_name(void) {
    static const char *names[] = {"portable", "avx2", "avx512"};
    return names[precis_kernel_level()];
}

int precis_kernel_name_valid(const char *name) {
    return strcmp(name, "avx512") == 0 || strcmp(name, "avx2") == 0 || strcmp(name, "portable") == 0;
}
