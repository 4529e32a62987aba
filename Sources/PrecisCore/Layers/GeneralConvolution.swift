import CKernels

/// A convolution of any geometry (`ConvolutionSpec`): groups (depthwise when there are as many as
/// input channels), rectangular kernels, a stride and a dilation per axis, padding on each side.
/// `W: (FN, C/groups, KH, KW)`, `b: (FN)`; input `(N, C, H, W)`, output `(N, FN, OH, OW)`.
///
/// Per image and group, with `K = (C/groups)·KH·KW` window elements and `P = OH·OW` pixels, as the
/// book computes a convolution: `out (FN/groups, P) = W (FN/groups, K) · B (K, P)` on the unfolded
/// window `B` (padding reads 0), with the library's GEMM (one chain of multiply-adds per output, in
/// ascending window order, at every kernel level); the result is rounded to the storage format and
/// the bias added. Backward: `dW += dout · Bᵀ` image by image, and `dB = Wᵀ · dout` folded back onto
/// the input. A depthwise convolution (one input channel per group) runs the same sums directly,
/// without unfolding, in the same order: the same values (for Float with one filter per channel, in
/// the C kernels `precis_depthwise_forward_f32` and `precis_depthwise_backward_f32`).
public final class GeneralConvolution<T: NetworkScalar>: Layer, RoundedInput {
    public let W: Parameter<T>
    public let b: Parameter<T>
    public let spec: ConvolutionSpec
    /// Rounding applied to the GEMM result before the bias is added (the `-acc32` modes).
    public let storage: StorageFormat
    /// Rounding of the unfolded input `B (K, P)` to a number format, along `K` (Float only).
    public internal(set) var inputRounding: OperandRounding?
    private var x: Tensor<T>?  // the input of the last training forward, for backward

    public init(
        W: Tensor<T>, b: Tensor<T>, spec: ConvolutionSpec, storage: StorageFormat = .native,
        inputRounding: OperandRounding? = nil
    ) {
        precondition(W.shape.count == 4 && b.shape == [W.shape[0]], "conv W (FN,C,FH,FW), b (FN)")
        precondition(inputRounding == nil || T.roundsInputs, "input rounding runs on Float")
        (self.W, self.b) = (Parameter("W", W), Parameter("b", b))
        (self.spec, self.storage, self.inputRounding) = (spec, storage, inputRounding)
    }

    public var parameters: [Parameter<T>] { [W, b] }

    /// The sizes of a pass over `shape`: filters and channels per group, `K`, and the output's.
    private func sizes(_ shape: [Int]) -> Sizes {
        let (oh, ow) = spec.outputSize(shape[2], shape[3])!
        let cg = shape[1] / spec.groups
        precondition(cg == W.value.shape[1], "conv expects \(W.value.shape[1] * spec.groups) channels, got \(shape[1])")
        return (spec.filters / spec.groups, cg, cg * spec.kernel[0] * spec.kernel[1], oh, ow)
    }

    /// Input element `(channel, y, x)` that window element `r` of output pixel `p` reads, as an
    /// offset into the image, or nil where it reads padding.
    @inline(__always)
    private func tap(_ r: Int, _ p: Int, ow: Int, h: Int, w: Int, group: Int, cg: Int) -> Int? {
        let (kh, kw) = (spec.kernel[0], spec.kernel[1])
        let (ch, ky, kx) = (r / (kh * kw), r / kw % kh, r % kw)
        let y = p / ow * spec.strides[0] - spec.pads[0] + ky * spec.dilations[0]
        let x = p % ow * spec.strides[1] - spec.pads[1] + kx * spec.dilations[1]
        guard y >= 0, y < h, x >= 0, x < w else { return nil }
        return ((group * cg + ch) * h + y) * w + x
    }

    /// `B (K, P)` of one image and group: row `r` holds window element `r` of every output pixel.
    private func unfold(_ image: UnsafePointer<T>, _ group: Int, _ s: [Int], _ z: (cg: Int, k: Int, oh: Int, ow: Int))
        -> [T]
    {
        let pixels = z.oh * z.ow
        var col = [T](repeating: 0, count: z.k * pixels)
        for r in 0..<z.k {
            for p in 0..<pixels {
                if let at = tap(r, p, ow: z.ow, h: s[2], w: s[3], group: group, cg: z.cg) {
                    col[r * pixels + p] = image[at]
                }
            }
        }
        return col
    }

    /// The sizes `sizes` gives.
    private typealias Sizes = (fg: Int, cg: Int, k: Int, oh: Int, ow: Int)

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        let s = x.shape, z = sizes(s), pixels = z.oh * z.ow
        var y = [T](repeating: 0, count: s[0] * spec.filters * pixels)
        y.withUnsafeMutableBufferPointer { ys in
            withBuffers(x.data, W.value.data, b.value.data) { xs, ws, bs in
                // One input channel per group, no input rounding: the sums run directly.
                if z.cg == 1 && inputRounding == nil {
                    directForward(xs, ws, bs, ys, s, z)
                } else {
                    unfoldedForward(xs, ws, bs, ys, s, z)
                }
            }
        }
        self.x = isTraining ? x : nil
        return Tensor(shape: [s[0], spec.filters, z.oh, z.ow], data: y)
    }

    /// Whether a pass takes the depthwise kernels: one channel and one filter per group, a type with them.
    private func kernelsRun(_ z: Sizes) -> Bool { z.cg == 1 && z.fg == 1 && T.depthwiseKernels }

    /// Channels a depthwise kernel call takes (a multiple of every level's vector).
    private static var channelBlock: Int { 16 }

    /// Each output's chain over its window, straight from the input (a depthwise convolution).
    private func directForward(
        _ xs: UnsafeBufferPointer<T>, _ ws: UnsafeBufferPointer<T>, _ bs: UnsafeBufferPointer<T>,
        _ ys: UnsafeMutableBufferPointer<T>, _ s: [Int], _ z: Sizes
    ) {
        let fn = spec.filters, pixels = z.oh * z.ow, per = s[1] * s[2] * s[3]
        if kernelsRun(z) {
            let shape = spec.depthwiseShape(s), blocks = (fn + Self.channelBlock - 1) / Self.channelBlock
            parallelChunks(s[0] * blocks, work: s[0] * fn * pixels * z.k) { items in
                for item in items {
                    let (image, block) = (item / blocks, item % blocks)
                    let channels = (block * Self.channelBlock)..<min(fn, (block + 1) * Self.channelBlock)
                    let out = ys.baseAddress! + image * fn * pixels
                    T.depthwiseForward(shape, xs.baseAddress! + image * per, ws.baseAddress!, out, channels: channels)
                    for f in channels {
                        for p in 0..<pixels { out[f * pixels + p] = storage.round(out[f * pixels + p]) + bs[f] }
                    }
                }
            }
            return
        }
        parallelChunks(s[0] * fn, work: s[0] * fn * pixels * z.k) { planes in
            for plane in planes {
                let (image, f) = (plane / fn, plane % fn), group = f / z.fg
                let input = xs.baseAddress! + image * per, out = ys.baseAddress! + plane * pixels
                for p in 0..<pixels {
                    var acc: T = 0
                    for r in 0..<z.k {
                        let v = tap(r, p, ow: z.ow, h: s[2], w: s[3], group: group, cg: 1).map { input[$0] }
                        acc = acc.addingProduct(ws[f * z.k + r], v ?? 0)
                    }
                    out[p] = storage.round(acc) + bs[f]
                }
            }
        }
    }

    /// Per image and group, the GEMM on the unfolded (and rounded) window.
    private func unfoldedForward(
        _ xs: UnsafeBufferPointer<T>, _ ws: UnsafeBufferPointer<T>, _ bs: UnsafeBufferPointer<T>,
        _ ys: UnsafeMutableBufferPointer<T>, _ s: [Int], _ z: Sizes
    ) {
        let fn = spec.filters, pixels = z.oh * z.ow, per = s[1] * s[2] * s[3]
        parallelChunks(s[0] * spec.groups, work: s[0] * fn * pixels * z.k) { items in
            for item in items {
                let (image, group) = (item / spec.groups, item % spec.groups)
                var col = unfold(xs.baseAddress! + image * per, group, s, (z.cg, z.k, z.oh, z.ow))
                if let inputRounding {
                    col.withUnsafeMutableBufferPointer {
                        T.roundInput($0.baseAddress!, .columns(z.k, pixels), by: inputRounding)
                    }
                }
                let out = ys.baseAddress! + (image * fn + group * z.fg) * pixels
                gemm(
                    z.fg, pixels, z.k, ws.baseAddress! + group * z.fg * z.k, z.k, col, pixels, out, pixels,
                    parallel: false)
                for f in 0..<z.fg {
                    let bias = bs[group * z.fg + f], row = out + f * pixels
                    for p in 0..<pixels { row[p] = storage.round(row[p]) + bias }
                }
            }
        }
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        guard let x else { preconditionFailure("GeneralConvolution.backward before a training forward") }
        let z = sizes(x.shape)
        var dW = [T](repeating: 0, count: W.value.count), db = [T](repeating: 0, count: spec.filters)
        var dx = [T](repeating: 0, count: x.count)
        if z.cg == 1 && inputRounding == nil {
            directGradients(x, dout, z, &dW, &db, &dx)
        } else {
            unfoldedGradients(x, dout, z, &dW, &db, &dx)
        }
        W.grad = Tensor(shape: W.value.shape, data: dW)
        b.grad = Tensor(shape: [spec.filters], data: db)
        return Tensor(shape: x.shape, data: dx)
    }

    /// The gradients through the GEMMs, image by image: `dW += dout · Bᵀ`, and `dB = Wᵀ · dout`
    /// folded back onto the input.
    private func unfoldedGradients(
        _ x: Tensor<T>, _ dout: Tensor<T>, _ z: Sizes, _ dW: inout [T], _ db: inout [T], _ dx: inout [T]
    ) {
        let s = x.shape, fn = spec.filters, pixels = z.oh * z.ow, per = s[1] * s[2] * s[3]
        var part = [T](repeating: 0, count: z.fg * z.k), dcol = [T](repeating: 0, count: z.k * pixels)
        x.data.withUnsafeBufferPointer { xs in
            for image in 0..<s[0] {
                for group in 0..<spec.groups {
                    let d = Array(dout.data[((image * fn + group * z.fg) * pixels)...].prefix(z.fg * pixels))
                    // dW (FN/groups, K) += dout (FN/groups, P) · Bᵀ, with Bᵀ the book's (P, K) unfolding.
                    let col = unfold(xs.baseAddress! + image * per, group, s, (z.cg, z.k, z.oh, z.ow))
                    var colT = [T](repeating: 0, count: col.count)
                    for r in 0..<z.k { for p in 0..<pixels { colT[p * z.k + r] = col[r * pixels + p] } }
                    gemm(z.fg, z.k, pixels, d, pixels, colT, z.k, &part, z.k)
                    for i in part.indices { dW[group * z.fg * z.k + i] += part[i] }
                    for f in 0..<z.fg { for p in 0..<pixels { db[group * z.fg + f] += d[f * pixels + p] } }
                    // dB (K, P) = Wᵀ (K, FN/groups) · dout, folded back onto the input.
                    let wg = Array(W.value.data[(group * z.fg * z.k)...].prefix(z.fg * z.k))
                    gemm(z.k, pixels, z.fg, wg, z.k, transA: true, d, pixels, &dcol, pixels)
                    for r in 0..<z.k {
                        for p in 0..<pixels {
                            if let at = tap(r, p, ow: z.ow, h: s[2], w: s[3], group: group, cg: z.cg) {
                                dx[image * per + at] += dcol[r * pixels + p]
                            }
                        }
                    }
                }
            }
        }
    }

    /// The gradients of a depthwise convolution, the sums of the unfolded path in its order: per
    /// image, `dW` adds each filter's chain over the pixels, and each input element adds, per window
    /// element and pixel, the chain over the group's filters.
    private func directGradients(
        _ x: Tensor<T>, _ dout: Tensor<T>, _ z: Sizes, _ dW: inout [T], _ db: inout [T], _ dx: inout [T]
    ) {
        let s = x.shape, fn = spec.filters, pixels = z.oh * z.ow, per = s[1] * s[2] * s[3]
        withMutableBuffers(&dW, &dx) { dws, dxs in
            db.withUnsafeMutableBufferPointer { dbs in
                withBuffers(x.data, dout.data, W.value.data) { xs, ds, ws in
                    if kernelsRun(z) {
                        // Each core takes whole blocks of channels, every image in order.
                        let shape = spec.depthwiseShape(s), blocks = (fn + Self.channelBlock - 1) / Self.channelBlock
                        parallelChunks(blocks, work: 3 * s[0] * fn * pixels * z.k) { items in
                            for block in items {
                                let channels = (block * Self.channelBlock)..<min(fn, (block + 1) * Self.channelBlock)
                                for image in 0..<s[0] {
                                    T.depthwiseBackward(
                                        shape, xs.baseAddress! + image * per, ds.baseAddress! + image * fn * pixels,
                                        ws.baseAddress!, dw: dws.baseAddress!, db: dbs.baseAddress!,
                                        dx: dxs.baseAddress! + image * per, channels: channels)
                                }
                            }
                        }
                        return
                    }
                    // Groups are independent: each core takes whole groups, every image in order.
                    parallelChunks(spec.groups, work: 3 * s[0] * fn * pixels * z.k) { groups in
                        for group in groups {
                            for image in 0..<s[0] {
                                let input = xs.baseAddress! + image * per
                                for f in (group * z.fg)..<((group + 1) * z.fg) {
                                    let d = ds.baseAddress! + (image * fn + f) * pixels
                                    for r in 0..<z.k {
                                        var acc: T = 0
                                        for p in 0..<pixels {
                                            let v = tap(r, p, ow: z.ow, h: s[2], w: s[3], group: group, cg: 1)
                                            acc = acc.addingProduct(d[p], v.map { input[$0] } ?? 0)
                                        }
                                        dws[f * z.k + r] += acc
                                    }
                                    for p in 0..<pixels { dbs[f] += d[p] }
                                }
                                for r in 0..<z.k {
                                    for p in 0..<pixels {
                                        guard let at = tap(r, p, ow: z.ow, h: s[2], w: s[3], group: group, cg: 1) else {
                                            continue
                                        }
                                        var acc: T = 0
                                        for f in (group * z.fg)..<((group + 1) * z.fg) {
                                            acc = acc.addingProduct(ws[f * z.k + r], ds[(image * fn + f) * pixels + p])
                                        }
                                        dxs[image * per + at] += acc
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension ConvolutionSpec {
    /// Whether it is depthwise for `channels` input channels: one channel and one filter per group.
    func isDepthwise(channels: Int) -> Bool { groups == channels && filters == channels }

    /// The C kernels' description of a depthwise pass over an image `(C, h, w)` (`shape`, or with the batch).
    func depthwiseShape(_ shape: [Int]) -> precis_depthwise_shape {
        let s = shape.suffix(3).map { $0 }, (oh, ow) = outputSize(s[1], s[2])!
        return precis_depthwise_shape(
            channels: Int32(s[0]), h: Int32(s[1]), w: Int32(s[2]), kh: Int32(kernel[0]), kw: Int32(kernel[1]),
            sh: Int32(strides[0]), sw: Int32(strides[1]), pt: Int32(pads[0]), pl: Int32(pads[1]),
            dh: Int32(dilations[0]), dw: Int32(dilations[1]), oh: Int32(oh), ow: Int32(ow))
    }
}
