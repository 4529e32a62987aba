// C APIs Precis uses from the system: zlib (gzip data sets) and glibc's malloc tuning.
#include <zlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
