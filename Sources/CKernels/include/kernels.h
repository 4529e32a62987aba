// The numeric kernels in C: the GEMMs, convolutions, pooling, integer inference and error sums
// whose speed needs vector instructions. The package is built for any x86-64 CPU; each kernel
// chooses at run time the widest level the CPU has (AVX-512, AVX2 with FMA and F16C, or portable C)
// and gives the same values at every level. `precis_parallel` runs a job's parts on a thread pool.
#ifndef PRECIS_KERNELS_H
#define PRECIS_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The vector kernels this CPU runs: 2 with AVX-512 (F, BW, VL), FMA and F16C; 1 with AVX2, FMA
/// and F16C; 0 with neither (portable C). Every kernel gives the same values at every level. The
/// environment variable PRECIS_KERNELS=avx2 or portable lowers the level, to measure or test the
/// narrower kernels on a wider CPU; it is read once.
int precis_kernel_level(void);

/// `precis_kernel_level()` as a name: "avx512", "avx2" or "portable".
const char *precis_kernel_name(void);

/// Whether `name` is a value PRECIS_KERNELS takes ("avx512", "avx2" or "portable").
int precis_kernel_name_valid(const char *name);

/// Which kernel `precis_gemm_u8s8` runs on this CPU: "avx512-vnni" or "portable".
const char *precis_gemm_u8s8_path(void);

/// Rows of A that `precis_gemm_u8s8` computes at a time for n columns on this CPU (a last, shorter
/// block costs as much as a full one).
int precis_gemm_u8s8_tile_rows(int n);

/// Bytes `precis_pack_s8` writes for a (k x n) matrix: k rounded up to 4, n up to 16.
size_t precis_pack_s8_size(int k, int n);

/// Packs B (k x n, int8, row stride ldb) for `precis_gemm_u8s8`: (k/4, n/16, 16, 4), zero-padded.
void precis_pack_s8(int k, int n, const int8_t *b, int ldb, int8_t *packed);

/// C (m x n, int32, row stride ldc) = A (m x k, uint8, row stride lda) * B (packed by
/// `precis_pack_s8`), exact. Each row of A is read up to k rounded up to 4 (B's padding is 0, so
/// those bytes only need to be readable). AVX-512 VNNI where the CPU has it, else portable C, with
/// identical results; `force_portable` selects the portable path.
void precis_gemm_u8s8(int m, int n, int k, const uint8_t *a, int lda, const int8_t *packed, int32_t *c, int ldc,
                      int force_portable);

/// `precis_gemm_u8s8` with each row of A read as `segments` runs of `kseg` bytes, `seg_stride`
/// apart (row i, run g at a + i·lda + g·seg_stride), against B's rows in the same order
/// (k = segments·kseg; `kseg` a multiple of 4 when segments > 1). A stride-1 convolution over
/// zero-padded channels-last codes is then one call per image: run g is window row g, and the
/// rows (the pixels of a grid as wide as the padded image) are `lda` = channels bytes apart, so no
/// window is copied.
void precis_gemm_u8s8_segments(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride,
                               const int8_t *packed, int32_t *c, int ldc, int force_portable);

/// out = clamp(roundHalfEven(scale[f] * (acc + correction[f])) + zero, low, high) for every row of
/// `channels` int32 sums (in float32; NaN-free because the inputs are integers).
void precis_requantize_u8(const int32_t *acc, int rows, int channels, const int32_t *correction, const float *scale,
                          float zero, float low, float high, uint8_t *out);

/// A residual sum requantized: out = clamp(roundHalfEven(scale[f] * (acc + correction[f]) + skip_scale *
/// (skip - skip_zero)) + zero, low, high), `skip` the other addend's uint8 codes laid out as the sums; in
/// float32, one rounding per operation in that order, the same on every CPU.
void precis_requantize_add_u8(const int32_t *acc, int rows, int channels, const int32_t *correction, const float *scale,
                              const uint8_t *skip, float skip_scale, float skip_zero, float zero, float low, float high,
                              uint8_t *out);

/// How sums become uint8 codes, as `precis_requantize_u8` takes it: per channel `correction` and
/// `scale`, then `zero`, the lowest code `low` and the highest `high`.
typedef struct {
    const int32_t *correction;
    const float *scale;
    float zero, low, high;
} precis_requantization;

/// `precis_gemm_u8s8_segments` whose sums become codes by `precis_requantize_u8`'s rule instead of
/// int32: row i of the product is output pixel (i / row_width, i % row_width), written to
/// out + ((i / row_width)·width + i % row_width)·n when i % row_width < width (the other rows are
/// dropped). With VNNI the sums go to codes straight from the registers; elsewhere they are computed
/// and then requantized. The codes are the same either way.
void precis_gemm_u8s8_codes(int m, int n, int segments, int kseg, const uint8_t *a, int lda, int seg_stride,
                            const int8_t *packed, int row_width, int width, const precis_requantization *rq,
                            uint8_t *out);

/// out[i] = clamp(roundHalfEven((double)x[i] / scale) + zero_point, qmin, qmax) + offset, NaN giving the
/// zero point, in double as `QuantRange.quantize` computes it (AVX-512 eight at a time where the
/// kernel level allows, else one at a time in the current rounding mode, which is to nearest even).
void precis_quantize_u8(const float *x, long count, double scale, int zero_point, int qmin, int qmax, int offset,
                        uint8_t *out);

/// 2 x 2 max pooling with stride 2 of one channels-last image (h x w x channels) of codes into
/// (h/2 x w/2 x channels).
void precis_max_pool2_u8(const uint8_t *x, int h, int w, int channels, uint8_t *out);

/// Whether this CPU runs the strict-half kernels below (AVX2 or AVX-512, with F16C and FMA).
int precis_half_kernels(void);

/// Strict half-precision GEMM, panels [panel_begin, panel_end) of 32 columns: C (m x n) = A · B with
/// A packed in blocks of 8 rows ((k, 8) per block, rows past m zero) and row p of B at b + brows[p].
/// Each element of C is one chain from zero in ascending k of c = half(fma_float32(a, b, c)), as
/// Swift's `Float16` computes it; every value is IEEE half (as uint16 bits).
void precis_gemm_f16_panels(int m, int n, int k, const uint16_t *ap, const uint16_t *b, const int64_t *brows,
                            uint16_t *c, int ldc, int panel_begin, int panel_end);

/// Strict half-precision C (m x n) = A (m x len) · Bᵀ, tiles [tile_begin, tile_end) of 4 x 4 (tile
/// t at rows (t % ceil(m/4))·4, columns (t / ceil(m/4))·4): each element summed in 16 lanes, then
/// neighbouring lanes pairwise, every operation rounded to half, as `gemmABt` does for `Float16`.
void precis_gemm_abt_f16_tiles(int m, int n, int len, const uint16_t *a, int lda, const uint16_t *b,
                               const int64_t *brows, uint16_t *c, int ldc, int tile_begin, int tile_end);

/// Columns in one panel of `precis_gemm_f32_panels` (element_size 4) or `precis_gemm_f64_panels`
/// (element_size 8) at this kernel level: 32 or 16 with AVX-512, else 24 or 12.
int precis_gemm_panel_width(int element_size);

/// float32 GEMM, panels [panel_begin, panel_end) of `precis_gemm_panel_width(4)` columns:
/// C (m x n) = A · B with A packed in blocks of 8 rows ((k, 8) per block, rows past m zero) and row p
/// of B at b + brows[p]. Each element of C is one fused multiply-add chain from +0 in ascending k, at
/// every kernel level (AVX-512, AVX2 with FMA, or any x86-64 through the C library's fmaf).
void precis_gemm_f32_panels(int m, int n, int k, const float *ap, const float *b, const int64_t *brows, float *c,
                            int ldc, int panel_begin, int panel_end);

/// `precis_gemm_f32_panels` in float64, panels of `precis_gemm_panel_width(8)` columns.
void precis_gemm_f64_panels(int m, int n, int k, const double *ap, const double *b, const int64_t *brows, double *c,
                            int ldc, int panel_begin, int panel_end);

/// C (m x n) = A (m x len) · Bᵀ in float32, row j of B at b + brows[j], len a multiple of 16, tiles
/// [tile_begin, tile_end) of 4 x 4 (tile t at rows (t % ceil(m/4))·4, columns (t / ceil(m/4))·4):
/// each element's products summed by fused multiply-adds in 16 lanes (lane l takes positions
/// l, l + 16, ...), then neighbouring lanes pairwise, the same at every kernel level.
void precis_gemm_abt_f32_tiles(int m, int n, int len, const float *a, int lda, const float *b, const int64_t *brows,
                               float *c, int ldc, int tile_begin, int tile_end);

/// `precis_gemm_abt_f32_tiles` in float64.
void precis_gemm_abt_f64_tiles(int m, int n, int len, const double *a, int lda, const double *b,
                               const int64_t *brows, double *c, int ldc, int tile_begin, int tile_end);

/// The grid of a small number format as `GridRounder` keeps it: `shift` low float32 mantissa bits
/// dropped in the normal range, below `min_normal_bits` a fixed spacing (adding and subtracting
/// `magic` rounds to it), beyond `max_value` the value `overflow`, and NaN as `nan_value`.
typedef struct {
    uint32_t shift, min_normal_bits;
    float magic, max_value, overflow, nan_value;
} precis_grid;

/// x[i] = f[i·stride] · grid(x[i] / d[i·stride]) for i < count (stride 0: one scale pair for all,
/// stride 1: a pair per value), each grid value the nearest (ties to even), the same at every level.
void precis_grid_round(precis_grid g, float *x, const float *d, const float *f, int64_t count, int64_t stride);

/// x[i] = (clamp(roundHalfEven(x[i] / scale) + zero_point, qmin, qmax) - zero_point) · scale in
/// float32, NaN giving qmin: values quantized to integer codes and back, the same at every level.
void precis_fake_quant_f32(float *x, int64_t count, float scale, float zero_point, float qmin, float qmax);

/// Every value rounded to bfloat16 (to nearest, ties to even; NaN stays a quiet NaN) and widened back,
/// in place, the same at every level.
void precis_round_bfloat16_f32(float *x, int64_t count);

/// One optimizer step on `count` IEEE half values (as uint16 bits) of a strict half network, every
/// operation rounded to half as Swift's `Float16` computes it: kind 0 SGD (p -= c0·g), 1 momentum
/// (s1 = c1·s1 - c0·g; p += s1), 2 Adam (s1 += c1·(g - s1); s2 += c2·(g·g - s2);
/// p -= c0·s1 / (sqrt(s2) + c3)). `constants` holds c0...c3. Needs `precis_half_kernels()`.
void precis_optimizer_f16(int kind, uint16_t *p, const uint16_t *g, uint16_t *s1, uint16_t *s2, int64_t count,
                          const uint16_t *constants);

/// Every value rounded to IEEE half (to nearest, ties to even) and widened back, in place. Needs
/// `precis_half_kernels()` (F16C).
void precis_round_half_f32(float *x, int64_t count);

/// Whether this CPU runs `precis_conv_finish_f32` (AVX-512).
int precis_avx512(void);

/// A convolution's inference outputs for one chunk of `images` from its product `out` (channels x
/// columns, image j's output row oy at column (j·band_rows + oy)·row_width): acc + bias[f], set to 0
/// where <= 0 with `relu`, into y (images, channels, oh, ow); with `pooled` (which needs `relu`),
/// the maximum of each 2 x 2 block with stride 2, so y is (images, channels, oh, ow) of pooled
/// outputs, each block's values taken in the order `precis_max_pool2_f32` takes them.
void precis_conv_finish_f32(const float *out, int columns, int channels, int images, int band_rows, int row_width,
                            int oh, int ow, const float *bias, int relu, int pooled, float *y);

/// `precis_conv_finish_f32` for a strict half network (values as IEEE half bits): acc + bias[f]
/// rounded to half, with `relu` 0 where <= 0, pooled as `MaxPooling` pools. Needs
/// `precis_half_kernels()` (AVX2 with F16C).
void precis_conv_finish_f16(const uint16_t *out, int columns, int channels, int images, int band_rows, int row_width,
                            int oh, int ow, const uint16_t *bias, int relu, int pooled, uint16_t *y);

/// `images` images of x (images, channels, h, w) as the zero-padded planes `precis_conv_direct_f32`
/// reads: channel ch at out + ch·plane_size, rows w + pad wide, image j's row y at plane row
/// pad + j·(h + pad) + y from column pad; every element of the planes is written. With `mask` (else
/// NULL, shaped as x), 0 where mask <= 0, as a ReLU passes its gradient. Needs AVX-512.
void precis_pad_planes_f32(const float *x, const float *mask, int images, int channels, int h, int w, int pad,
                           int plane_size, float *out);

/// Where a direct convolution reads its input: channel ch of image j starts at
/// data + j·image_stride + ch·channel_stride, its rows row_width apart, and the window of output
/// pixel (oy, ox) at origin + oy·row_width + ox from there; its tap (ky, kx) reads input row
/// oy - pad + ky and column ox - pad + kx of the h x w image. Zero-padded planes
/// (`precis_pad_planes_f32`, origin 0) hold the padding; x (N, C, h, w) itself (origin
/// -(pad·w + pad)) does not, and serves only when padding is skipped and pad <= 2.
typedef struct {
    const float *data;
    ptrdiff_t channel_stride, image_stride, origin;
    int row_width, channels, h, w, pad;
} precis_conv_input;

/// A stride-1 convolution, direct: `images` images of `in` against `filters` filters packed as
/// (ceil(filters/16), C, FH, FW, 16), zero past `filters`. Each output is one fused multiply-add
/// chain from +0 over ascending (channel, ky, kx), as the GEMM path computes it; with `skip_padding`
/// (only when every weight is finite) the taps that read padding are left out (rows always; columns
/// when pad <= 2), which changes no value. Then + bias and with `relu` 0 where <= 0; with `pooled`,
/// 2 x 2 max pooling with stride 2 as `precis_max_pool2_f32` does it. Writes (images, filters, OH,
/// OW), OH and OW halved when pooled. Needs AVX-512.
void precis_conv_direct_f32(precis_conv_input in, int images, int oh, int ow, int fh, int fw, const float *packed,
                            int filters, const float *bias, int relu, int pooled, int skip_padding, float *output);

/// A stride-1 convolution whose output is as large as its input (h x w: 2·pad = FH - 1 = FW - 1),
/// direct from `images` images x (images, C, h, w) into y (images, filters, h, w): 16 output pixels
/// in raster order to a vector, the 16 filters of a block (packed as for `precis_conv_direct_f32`)
/// one accumulator each, every tap's inputs loaded as one shifted vector whose lanes outside the
/// input read 0. Each output is one fused multiply-add chain from +0 over ascending (channel, ky,
/// kx), padding taps included, as the GEMM path computes it; then + bias and with `relu` 0 where
/// <= 0. Needs AVX-512.
void precis_conv_same_f32(const float *x, int images, int channels, int h, int w, int pad, int fh, int fw,
                          const float *packed, int filters, const float *bias, int relu, float *y);

/// The geometry of a depthwise convolution (one input channel and one filter per group): the
/// input's channels and size, the kernel, strides, top and left padding, dilations, the output's size.
typedef struct {
    int channels, h, w, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow;
} precis_depthwise_shape;

/// A depthwise convolution of one image x (C, h, w) by wt (C, kh·kw), channels c0 ..< c1, into out
/// (C, oh, ow) (bias not added): each output one fused multiply-add chain from +0 over ascending
/// taps, padding taps reading 0, as the unfolded GEMM computes it. Channels run 16 (AVX-512) or 8
/// to a vector from a zero-padded, channels-last copy of the input; every level gives the same values.
void precis_depthwise_forward_f32(const precis_depthwise_shape *s, const float *x, const float *wt, float *out, int c0,
                                  int c1);

/// The gradients of `precis_depthwise_forward_f32` for one image, channels c0 ..< c1, from the
/// output gradients d (C, oh, ow): dwt (C, kh·kw) += each weight's chain over the output pixels in
/// order, db (C) += the gradients one by one in order, and dx (C, h, w) += for each tap in order and
/// each pixel in order its weight times the gradient; every level gives the same values.
void precis_depthwise_backward_f32(const precis_depthwise_shape *s, const float *x, const float *d, const float *wt,
                                   float *dwt, float *db, float *dx, int c0, int c1);

/// The int32 sums of a depthwise convolution of one image of uint8 codes x (h, w, C), channels last,
/// by int8 weights wt (kh·kw, C), into out (oh, ow, C): per output pixel and channel, Σ over the taps
/// of code × weight, a tap in the padding reading `fill`. Exact, so every level gives the same sums.
void precis_depthwise_u8s8(const precis_depthwise_shape *s, const uint8_t *x, uint8_t fill, const int8_t *wt,
                           int32_t *out);

/// out (rows x fout) = x (rows x fin) · w (fin x fout) + b, w and out row-major, x's element (r, k)
/// at x + r·row_stride + k·k_stride (x itself, or a transpose read in place), b NULL for none: each
/// output one fused multiply-add chain from +0 over ascending k, as the GEMM computes it, then
/// + b[j]. Outputs run 16 to a vector and up to 64 at a time, rows several at a time, each input
/// broadcast from memory. Needs AVX-512.
void precis_affine_f32(const float *x, int rows, int fin, size_t row_stride, size_t k_stride, const float *w,
                       int fout, const float *b, float *out);

/// d (images, channels, pixels) as out (images·pixels, ld): each pixel's gradients of all channels in
/// a row, ld a multiple of 16 with zeros past `channels`; with `mask` (else NULL, same shape as d),
/// 0 where mask <= 0, as a ReLU passes its gradient. Needs AVX-512.
void precis_pixel_major_f32(const float *d, const float *mask, int images, int channels, int pixels, int ld,
                            float *out);

/// One chunk's weight and bias gradients of a stride-1 convolution with size x size windows (3 or
/// 5): `input` the chunk's zero-padded planes (`precis_pad_planes_f32`; image j's output row oy
/// reads plane rows j·band_rows + oy + ky), d (images·oh·ow, ld) the output gradients pixel by
/// pixel (`precis_pixel_major_f32`). dw (filters, C·size·size) gets, for every weight, one fused
/// multiply-add chain from +0 over the chunk's output pixels in order of gradient times input; db
/// (filters) the gradients summed in the same order. Needs AVX-512.
void precis_conv_weight_gradient_f32(const float *input, int plane_size, int channels, int row_width, int band_rows,
                                     int images, int oh, int ow, int size, const float *d, int ld, int filters,
                                     float *dw, float *db);

/// 2 x 2 max pooling with stride 2 of `planes` planes (h x w) into (planes, h/2, w/2): each window
/// taken in row-major order, a value replacing the best so far when it is larger, or NaN over a
/// number, exactly as `MaxPooling` does (ties keep the first; the first NaN wins). With `arg`
/// (else NULL), where each maximum came from, its index in its input plane, for the backward pass.
/// Needs AVX-512.
void precis_max_pool2_f32(const float *x, int planes, int h, int w, float *out, int32_t *arg);

/// A part of a job for `precis_parallel`: `part` of the parts the job was cut into.
typedef void (*precis_part_fn)(void *context, int part);

/// Runs fn(context, part) for every part in [0, parts): part 0 on the calling thread, the others on
/// the pool's worker threads (one per further core, started at the first call). Returns 1 when the
/// job ran, or 0 at once when it cannot run on the pool (more parts than threads, or the pool busy
/// with another job, as when called from inside one): the caller then runs the parts itself. The
/// workers spin briefly between jobs, so a job that follows another starts without waking them.
int precis_parallel(int parts, precis_part_fn fn, void *context);

/// Whether `precis_fma_chains` and `precis_vnni_chains` run here (AVX-512 with VNNI).
int precis_peak_kernels(void);

/// `iterations` rounds of 12 independent 16-lane float32 fused multiply-adds (384 flops a round):
/// one core's multiply-add peak, with no memory traffic. Returns a sum of the results.
float precis_fma_chains(long iterations, float x);

/// `iterations` rounds of 12 independent vpdpbusd (uint8 x int8, 64 products added into 16 int32
/// lanes; 1,536 operations a round): one core's VNNI peak. Returns a sum of the results.
int precis_vnni_chains(long iterations, int x);

/// Error sums of values against a float64 reference, as `ErrorStats` keeps them.
typedef struct {
    double signal, noise, absolute_sum, max_absolute;
    int64_t nans, infinities, subnormals, flushed;
} precis_error_sums;

/// Whether this CPU runs the vector `precis_error_stats_*` (AVX-512 or AVX2, with F16C); without
/// them the float and double versions are plain loops and the half version must not be called.
int precis_error_kernels(void);

/// Adds `count` values against `reference` to `s`, exactly as `ErrorStats.add` does: the three sums
/// in element order with every product and sum rounded to double (results are bit for bit the
/// same), the counts and the maximum in vectors.
void precis_error_stats_f32(const float *values, const double *reference, int64_t count, double min_normal,
                            precis_error_sums *s);
void precis_error_stats_f64(const double *values, const double *reference, int64_t count, double min_normal,
                            precis_error_sums *s);
/// `values` as IEEE half bit patterns; needs `precis_error_kernels()`.
void precis_error_stats_f16(const uint16_t *values, const double *reference, int64_t count, double min_normal,
                            precis_error_sums *s);

#ifdef __cplusplus
}
#endif
#endif
