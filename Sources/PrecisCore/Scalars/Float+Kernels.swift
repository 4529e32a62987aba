import CKernels

/// Float's kernels: the GEMMs at every level, and with AVX-512 the direct convolutions, the
/// convolution epilogue and gradients, the affine layer, max pooling and padded planes, all in C.
extension Float: ScalarKernels {
    public static var panelWidth: Int { Int(precis_gemm_panel_width(4)) }

    public static func gemmPanels(
        _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ rows: UnsafePointer<Int>,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ panels: Range<Int>
    ) {
        precis_gemm_f32_panels(
            Int32(m), Int32(n), Int32(k), a, b, int64s(rows), c, Int32(ldc), Int32(panels.lowerBound),
            Int32(panels.upperBound))
    }

    public static var abtTile: (rows: Int, cols: Int) { (4, 4) }

    public static func gemmABtTiles(
        _ m: Int, _ n: Int, _ len: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>,
        _ rows: UnsafePointer<Int>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ tiles: Range<Int>
    ) {
        precis_gemm_abt_f32_tiles(
            Int32(m), Int32(n), Int32(len), a, Int32(lda), b, int64s(rows), c, Int32(ldc), Int32(tiles.lowerBound),
            Int32(tiles.upperBound))
    }

    public static var shiftedPlanes: Bool { true }

    public static var directConvolution: Bool { avx512Kernels }

    public static var directGradientOrder: Bool { true }

    public static func convolveDirectly(
        _ input: ConvInput<Float>, images: Int, oh: Int, ow: Int, fh: Int, fw: Int, packed: UnsafePointer<Float>,
        filters: Int, bias: UnsafePointer<Float>, relu: Bool, pooled: Bool, skipPadding: Bool,
        _ y: UnsafeMutablePointer<Float>
    ) {
        let planes = precis_conv_input(
            data: input.data, channel_stride: input.channelStride, image_stride: input.imageStride,
            origin: input.origin, row_width: Int32(input.rowWidth), channels: Int32(input.channels),
            h: Int32(input.h), w: Int32(input.w), pad: Int32(input.pad))
        precis_conv_direct_f32(
            planes, Int32(images), Int32(oh), Int32(ow), Int32(fh), Int32(fw), packed, Int32(filters), bias,
            relu ? 1 : 0,
            pooled ? 1 : 0, skipPadding ? 1 : 0, y)
    }

    public static func convolveSame(
        _ x: UnsafePointer<Float>, images: Int, channels: Int, h: Int, w: Int, pad: Int, fh: Int, fw: Int,
        packed: UnsafePointer<Float>, filters: Int, bias: UnsafePointer<Float>, relu: Bool,
        _ y: UnsafeMutablePointer<Float>
    ) {
        precis_conv_same_f32(
            x, Int32(images), Int32(channels), Int32(h), Int32(w), Int32(pad), Int32(fh), Int32(fw), packed,
            Int32(filters), bias, relu ? 1 : 0, y)
    }

    public static func finishConvolution(
        _ out: UnsafePointer<Float>, columns: Int, filters: Int, images: Int, bandRows: Int, rowWidth: Int, oh: Int,
        ow: Int, bias: UnsafePointer<Float>, relu: Bool, pooled: Bool, _ y: UnsafeMutablePointer<Float>
    ) -> Bool {
        guard avx512Kernels else { return false }
        precis_conv_finish_f32(
            out, Int32(columns), Int32(filters), Int32(images), Int32(bandRows), Int32(rowWidth), Int32(oh), Int32(ow),
            bias, relu ? 1 : 0, pooled ? 1 : 0, y)
        return true
    }

    public static var depthwiseKernels: Bool { true }

    public static func depthwiseForward(
        _ s: precis_depthwise_shape, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
        _ out: UnsafeMutablePointer<Float>, channels: Range<Int>
    ) {
        withUnsafePointer(to: s) {
            precis_depthwise_forward_f32($0, x, w, out, Int32(channels.lowerBound), Int32(channels.upperBound))
        }
    }

    public static func depthwiseBackward(
        _ s: precis_depthwise_shape, _ x: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
        dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>,
        channels: Range<Int>
    ) {
        withUnsafePointer(to: s) {
            precis_depthwise_backward_f32(
                $0, x, d, w, dw, db, dx, Int32(channels.lowerBound), Int32(channels.upperBound))
        }
    }

    public static func convolutionGradient(
        input: UnsafePointer<Float>, planeSize: Int, channels: Int, rowWidth: Int, bandRows: Int, images: Int, oh: Int,
        ow: Int, size: Int, dout: UnsafePointer<Float>, mask: UnsafePointer<Float>?, filters: Int, pixels: Int,
        d: UnsafeMutablePointer<Float>, ld: Int, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>
    ) {
        precis_pixel_major_f32(dout, mask, Int32(images), Int32(filters), Int32(pixels), Int32(ld), d)
        precis_conv_weight_gradient_f32(
            input, Int32(planeSize), Int32(channels), Int32(rowWidth), Int32(bandRows), Int32(images), Int32(oh),
            Int32(ow), Int32(size), d, Int32(ld), Int32(filters), dw, db)
    }

    public static func padPlanes(
        _ x: UnsafePointer<Float>, mask: UnsafePointer<Float>?, images: Int, channels: Int, h: Int, w: Int, pad: Int,
        planeSize: Int, _ out: UnsafeMutablePointer<Float>
    ) -> Bool {
        guard avx512Kernels else { return false }
        precis_pad_planes_f32(
            x, mask, Int32(images), Int32(channels), Int32(h), Int32(w), Int32(pad), Int32(planeSize), out)
        return true
    }

    public static var affineKernel: Bool { avx512Kernels }

    public static func affine(
        _ x: UnsafePointer<Float>, rows: Int, fin: Int, rowStride: Int, kStride: Int, _ w: UnsafePointer<Float>,
        fout: Int, bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>
    ) {
        precis_affine_f32(x, Int32(rows), Int32(fin), rowStride, kStride, w, Int32(fout), bias, y)
    }

    public static func maxPool2(
        _ x: UnsafePointer<Float>, planes: Int, h: Int, w: Int, _ out: UnsafeMutablePointer<Float>,
        _ arg: UnsafeMutablePointer<Int32>?
    ) -> Bool {
        guard avx512Kernels else { return false }
        precis_max_pool2_f32(x, Int32(planes), Int32(h), Int32(w), out, arg)
        return true
    }

    /// bfloat16 at every kernel level, half with F16C.
    public static func round(_ x: UnsafeMutablePointer<Float>, count: Int, to format: StorageFormat) -> Bool {
        switch format {
        case .native: return true
        case .bfloat16: precis_round_bfloat16_f32(x, Int64(count))
        case .float16:
            guard halfKernels else { return false }
            precis_round_half_f32(x, Int64(count))
        }
        return true
    }

    public static var roundsInputs: Bool { true }

    public static func roundInput(
        _ x: UnsafeMutablePointer<Float>, _ layout: OperandLayout, by rounding: OperandRounding
    ) {
        rounding(x, layout)
    }

    public static func errorSums(
        _ x: UnsafePointer<Float>, _ reference: UnsafePointer<Double>, count: Int, minNormal: Double,
        _ sums: inout precis_error_sums
    ) -> Bool {
        precis_error_stats_f32(x, reference, Int64(count), minNormal, &sums)
        return true
    }
}
