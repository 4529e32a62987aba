import CKernels

/// The vector kernels a scalar type brings to the layers, one file per conformance
/// (`Float+Kernels.swift`, `Double+Kernels.swift`, `Float16+Kernels.swift`), as swift-numerics
/// keeps one file per conformance. The layers keep the book's readable path (im2col + GEMM,
/// col2im) and choose a faster one once per plan by asking these; every hook computes the same
/// values as the path it replaces. A type without a kernel answers `false` (or nil), and the
/// layers take the Swift path. Not API: the layers are what call these.
public protocol ScalarKernels {
    /// Columns of `B` one tile of `gemmPanels` covers.
    static var panelWidth: Int { get }

    /// `C (m, n) = A (m, k) · B (k, n)` for the column panels `panels`: `A` packed by rows (see
    /// `packRows`), row `p` of `B` at `b + rows[p]`.
    static func gemmPanels(
        _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Self>, _ b: UnsafePointer<Self>, _ rows: UnsafePointer<Int>,
        _ c: UnsafeMutablePointer<Self>, _ ldc: Int, _ panels: Range<Int>)

    /// Rows and columns of one tile of `gemmABtTiles`.
    static var abtTile: (rows: Int, cols: Int) { get }

    /// `C (m, n) = A (m, len) · Bᵀ` for the tiles `tiles` (row tiles first), row `j` of `B` at
    /// `b + rows[j]`.
    static func gemmABtTiles(
        _ m: Int, _ n: Int, _ len: Int, _ a: UnsafePointer<Self>, _ lda: Int, _ b: UnsafePointer<Self>,
        _ rows: UnsafePointer<Int>, _ c: UnsafeMutablePointer<Self>, _ ldc: Int, _ tiles: Range<Int>)

    /// Whether a stride-1 convolution reads shifted views of its padded planes rather than an
    /// unfolded input (Float16 unfolds: strict half costs more per operation than the copies).
    static var shiftedPlanes: Bool { get }

    /// Whether the direct convolution kernels run (forward, same-size, and the gradients).
    static var directConvolution: Bool { get }

    /// Whether convolution gradients take the direct kernels' order at every level (in C where
    /// `directConvolution`, else the same chains with the GEMMs), so every level trains the same bits.
    static var directGradientOrder: Bool { get }

    /// The direct convolution of `images` images of `input` into `y` (see `precis_conv_direct_f32`).
    static func convolveDirectly(
        _ input: ConvInput<Self>, images: Int, oh: Int, ow: Int, fh: Int, fw: Int, packed: UnsafePointer<Self>,
        filters: Int, bias: UnsafePointer<Self>, relu: Bool, pooled: Bool, skipPadding: Bool,
        _ y: UnsafeMutablePointer<Self>)

    /// A same-size convolution of `images` images of `x (C, h, w)` into `y` (see `precis_conv_same_f32`).
    static func convolveSame(
        _ x: UnsafePointer<Self>, images: Int, channels: Int, h: Int, w: Int, pad: Int, fh: Int, fw: Int,
        packed: UnsafePointer<Self>, filters: Int, bias: UnsafePointer<Self>, relu: Bool,
        _ y: UnsafeMutablePointer<Self>)

    /// The convolution epilogue from a chunk's product (bias, ReLU, 2×2 pool); false when the type
    /// has no kernel for it (see `precis_conv_finish_f32`).
    static func finishConvolution(
        _ out: UnsafePointer<Self>, columns: Int, filters: Int, images: Int, bandRows: Int, rowWidth: Int, oh: Int,
        ow: Int, bias: UnsafePointer<Self>, relu: Bool, pooled: Bool, _ y: UnsafeMutablePointer<Self>
    ) -> Bool

    /// A chunk's weight and bias gradients in the direct kernels' order: `dout` (with `mask`, a
    /// fused ReLU's output) laid out pixel by pixel in `d`, then every weight one chain.
    static func convolutionGradient(
        input: UnsafePointer<Self>, planeSize: Int, channels: Int, rowWidth: Int, bandRows: Int, images: Int, oh: Int,
        ow: Int, size: Int, dout: UnsafePointer<Self>, mask: UnsafePointer<Self>?, filters: Int, pixels: Int,
        d: UnsafeMutablePointer<Self>, ld: Int, dw: UnsafeMutablePointer<Self>, db: UnsafeMutablePointer<Self>)

    /// Whether `depthwiseForward` and `depthwiseBackward` run.
    static var depthwiseKernels: Bool { get }

    /// A depthwise convolution of one image over `channels`, without the bias (see
    /// `precis_depthwise_forward_f32`).
    static func depthwiseForward(
        _ s: precis_depthwise_shape, _ x: UnsafePointer<Self>, _ w: UnsafePointer<Self>,
        _ out: UnsafeMutablePointer<Self>, channels: Range<Int>)

    /// The gradients of `depthwiseForward` for one image over `channels`, added to `dw`, `db` and
    /// `dx` (see `precis_depthwise_backward_f32`).
    static func depthwiseBackward(
        _ s: precis_depthwise_shape, _ x: UnsafePointer<Self>, _ d: UnsafePointer<Self>, _ w: UnsafePointer<Self>,
        dw: UnsafeMutablePointer<Self>, db: UnsafeMutablePointer<Self>, dx: UnsafeMutablePointer<Self>,
        channels: Range<Int>)

    /// `images` images of `x (C, h, w)` (with `mask`, 0 where it is `<= 0`) as zero-padded planes
    /// `planeSize` apart; false when the type has no kernel for it.
    static func padPlanes(
        _ x: UnsafePointer<Self>, mask: UnsafePointer<Self>?, images: Int, channels: Int, h: Int, w: Int, pad: Int,
        planeSize: Int, _ out: UnsafeMutablePointer<Self>
    ) -> Bool

    /// Whether `affine` runs.
    static var affineKernel: Bool { get }

    /// `y (rows, out) = x · w (+ bias)`, row `r` of `x` at `r·rowStride`, its element `i` at
    /// `i·kStride` (see `precis_affine_f32`).
    static func affine(
        _ x: UnsafePointer<Self>, rows: Int, fin: Int, rowStride: Int, kStride: Int, _ w: UnsafePointer<Self>,
        fout: Int, bias: UnsafePointer<Self>?, _ y: UnsafeMutablePointer<Self>)

    /// 2×2 max pooling with stride 2 of `planes` planes; false when the type has no kernel for it.
    static func maxPool2(
        _ x: UnsafePointer<Self>, planes: Int, h: Int, w: Int, _ out: UnsafeMutablePointer<Self>,
        _ arg: UnsafeMutablePointer<Int32>?
    ) -> Bool

    /// Rounds `count` values to `format` in place; false when the type has no kernel for it.
    static func round(_ x: UnsafeMutablePointer<Self>, count: Int, to format: StorageFormat) -> Bool

    /// Whether layer inputs can be rounded to a number format (`roundInput`).
    static var roundsInputs: Bool { get }

    /// A GEMM operand laid out as `layout`, rounded by `rounding`.
    static func roundInput(_ x: UnsafeMutablePointer<Self>, _ layout: OperandLayout, by rounding: OperandRounding)

    /// One step of `kind` on `count` values, every operation rounded to `Self` as the Swift loop
    /// computes it, with `constants` (SGD: lr; momentum: lr, momentum; Adam: lr_t, 1 − β₁, 1 − β₂,
    /// eps); false when the type has no kernel for `kind`.
    static func optimizerStep(
        _ kind: OptimizerKind, _ p: UnsafeMutablePointer<Self>, _ g: UnsafePointer<Self>,
        _ s1: UnsafeMutablePointer<Self>, _ s2: UnsafeMutablePointer<Self>, count: Int, constants: [Self]
    ) -> Bool

    /// Adds `count` values against `reference` to `sums` (see `precis_error_stats_f32`); false when
    /// the type has no kernel for it.
    static func errorSums(
        _ x: UnsafePointer<Self>, _ reference: UnsafePointer<Double>, count: Int, minNormal: Double,
        _ sums: inout precis_error_sums
    ) -> Bool
}

/// What a type without the kernel answers.
extension ScalarKernels {
    public static var directConvolution: Bool { false }
    public static var directGradientOrder: Bool { false }
    public static var affineKernel: Bool { false }
    public static var roundsInputs: Bool { false }

    public static func convolveDirectly(
        _ input: ConvInput<Self>, images: Int, oh: Int, ow: Int, fh: Int, fw: Int, packed: UnsafePointer<Self>,
        filters: Int, bias: UnsafePointer<Self>, relu: Bool, pooled: Bool, skipPadding: Bool,
        _ y: UnsafeMutablePointer<Self>
    ) { preconditionFailure("\(Self.self) has no direct convolution") }

    public static func convolveSame(
        _ x: UnsafePointer<Self>, images: Int, channels: Int, h: Int, w: Int, pad: Int, fh: Int, fw: Int,
        packed: UnsafePointer<Self>, filters: Int, bias: UnsafePointer<Self>, relu: Bool,
        _ y: UnsafeMutablePointer<Self>
    ) { preconditionFailure("\(Self.self) has no same-size convolution") }

    public static func finishConvolution(
        _ out: UnsafePointer<Self>, columns: Int, filters: Int, images: Int, bandRows: Int, rowWidth: Int, oh: Int,
        ow: Int, bias: UnsafePointer<Self>, relu: Bool, pooled: Bool, _ y: UnsafeMutablePointer<Self>
    ) -> Bool { false }

    public static var depthwiseKernels: Bool { false }

    public static func depthwiseForward(
        _ s: precis_depthwise_shape, _ x: UnsafePointer<Self>, _ w: UnsafePointer<Self>,
        _ out: UnsafeMutablePointer<Self>, channels: Range<Int>
    ) { preconditionFailure("\(Self.self) has no depthwise kernel") }

    public static func depthwiseBackward(
        _ s: precis_depthwise_shape, _ x: UnsafePointer<Self>, _ d: UnsafePointer<Self>, _ w: UnsafePointer<Self>,
        dw: UnsafeMutablePointer<Self>, db: UnsafeMutablePointer<Self>, dx: UnsafeMutablePointer<Self>,
        channels: Range<Int>
    ) { preconditionFailure("\(Self.self) has no depthwise kernel") }

    public static func convolutionGradient(
        input: UnsafePointer<Self>, planeSize: Int, channels: Int, rowWidth: Int, bandRows: Int, images: Int, oh: Int,
        ow: Int, size: Int, dout: UnsafePointer<Self>, mask: UnsafePointer<Self>?, filters: Int, pixels: Int,
        d: UnsafeMutablePointer<Self>, ld: Int, dw: UnsafeMutablePointer<Self>, db: UnsafeMutablePointer<Self>
    ) { preconditionFailure("\(Self.self) has no direct convolution gradient") }

    public static func padPlanes(
        _ x: UnsafePointer<Self>, mask: UnsafePointer<Self>?, images: Int, channels: Int, h: Int, w: Int, pad: Int,
        planeSize: Int, _ out: UnsafeMutablePointer<Self>
    ) -> Bool { false }

    public static func affine(
        _ x: UnsafePointer<Self>, rows: Int, fin: Int, rowStride: Int, kStride: Int, _ w: UnsafePointer<Self>,
        fout: Int, bias: UnsafePointer<Self>?, _ y: UnsafeMutablePointer<Self>
    ) { preconditionFailure("\(Self.self) has no affine kernel") }

    public static func maxPool2(
        _ x: UnsafePointer<Self>, planes: Int, h: Int, w: Int, _ out: UnsafeMutablePointer<Self>,
        _ arg: UnsafeMutablePointer<Int32>?
    ) -> Bool { false }

    public static func round(_ x: UnsafeMutablePointer<Self>, count: Int, to format: StorageFormat) -> Bool { false }

    public static func optimizerStep(
        _ kind: OptimizerKind, _ p: UnsafeMutablePointer<Self>, _ g: UnsafePointer<Self>,
        _ s1: UnsafeMutablePointer<Self>, _ s2: UnsafeMutablePointer<Self>, count: Int, constants: [Self]
    ) -> Bool { false }

    public static func roundInput(
        _ x: UnsafeMutablePointer<Self>, _ layout: OperandLayout, by rounding: OperandRounding
    ) {
        preconditionFailure("input rounding runs on Float")
    }
}

/// Row offsets as the C kernels take them.
@inline(__always)
func int64s(_ p: UnsafePointer<Int>) -> UnsafePointer<Int64> {
    UnsafeRawPointer(p).assumingMemoryBound(to: Int64.self)
}
