// libhdf5 (serial) for Swift. The library's predefined types and file flags are C macros that
// call H5open() and read a global; Swift does not import such macros, so each gets an accessor.
#include <hdf5.h>

static inline hid_t precis_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t precis_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t precis_H5T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t precis_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t precis_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t precis_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t precis_H5T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t precis_H5T_C_S1(void) { return H5T_C_S1; }
static inline unsigned precis_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned precis_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned precis_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned precis_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline size_t precis_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline hid_t precis_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t precis_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t precis_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t precis_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline H5Z_filter_t precis_H5Z_FILTER_FLETCHER32(void) { return H5Z_FILTER_FLETCHER32; }
