import CKernels

/// Convolution as GEMMs. `W: (FN, C, FH, FW)`, `b: (FN)`; input `(N, C, H, W)`, output
/// `(N, FN, OH, OW)` with `OH = (H + 2·pad - FH) / stride + 1`.
///
/// The batch is walked in chunks of whole images (`ConvPlan`) small enough to stay in a core's
/// cache; chunks run in parallel and nothing batch-sized is unfolded. Per chunk, with
/// `K = C·FH·FW` window elements and `L` columns (the chunk's output pixels, see `ConvPlan`):
/// `out (FN, L) = W (FN, K) · B (K, L)` and `dW += dout (FN, L) · Bᵀ`, where `B` has one row
/// per window element. With stride 1, `B` is never built: its rows are views of the zero-padded
/// input planes, shifted by the element's offset; and the input gradient is the same kind of
/// product, `dX (C, planes) = W' (C, FN·FH·FW) · D`, whose rows are views of `dout` shifted the
/// other way. Otherwise `B` is the unfolded input (`im2colT`) and `dB = Wᵀ · dout` is folded back
/// (`col2imT`). Float with AVX-512 runs in C instead where it can: the forward pass directly from
/// the input, or its padded planes when a tap must read padding (`precis_conv_direct_f32`, the same
/// chains), and the gradients in an order of their own, fixed as well: weights pixel by pixel
/// (`precis_conv_weight_gradient_f32`), the input gradient by the direct kernel with the filters
/// turned over.
public final class Convolution<T: NetworkScalar>: Layer, RoundedInput {
    public let W: Parameter<T>
    public let b: Parameter<T>
    public let stride: Int
    public let pad: Int
    private var x: Tensor<T>?  // the input of the last training forward, for backward

    /// Rounding applied to the GEMM result before the bias is added (the `-acc32` modes).
    public let storage: StorageFormat
    /// Rounding of the unfolded input `B (K, L)` to a number format, along `K` (Float only).
    public internal(set) var inputRounding: OperandRounding?

    public init(
        W: Tensor<T>, b: Tensor<T>, stride: Int = 1, pad: Int = 0, storage: StorageFormat = .native,
        inputRounding: OperandRounding? = nil
    ) {
        precondition(W.shape.count == 4 && b.shape == [W.shape[0]], "conv W (FN,C,FH,FW), b (FN)")
        precondition(inputRounding == nil || T.roundsInputs, "input rounding runs on Float")
        self.W = Parameter("W", W)
        self.b = Parameter("b", b)
        self.stride = stride
        self.pad = pad
        self.storage = storage
        self.inputRounding = inputRounding
    }

    public var parameters: [Parameter<T>] { [W, b] }

    /// `blocksOf16` of the weights and whether every weight is finite, kept for as long as `W`
    /// holds the same values (a network run for inference packs its filters once).
    private var packed: (source: [T], weights: [T], finite: Bool)?

    private func packedBlocks(_ g: Window) -> (weights: [T], finite: Bool) {
        if let packed, packed.source == W.value.data { return (packed.weights, packed.finite) }
        let w = W.value.data, p = (source: w, weights: blocksOf16(w, g), finite: w.allSatisfy(\.isFinite))
        packed = p
        return (p.weights, p.finite)
    }

    /// The plan of a forward pass over `x` (followed by `pool`, when fused), and the path it takes:
    /// chosen here, once, from the scalar type's kernels.
    private func plan(_ x: Tensor<T>, pool: MaxPooling<T>? = nil) -> ConvPlan {
        let g = Window(input: x.shape, fh: W.value.shape[2], fw: W.value.shape[3], stride: stride, pad: pad)
        precondition(g.c == W.value.shape[1], "conv expects \(W.value.shape[1]) channels, got \(g.c)")
        // Input rounding needs every window unfolded, since a block's scale depends on the whole window.
        var plan = ConvPlan(
            g, outputs: W.value.shape[0], shifted: stride == 1 && T.shiftedPlanes && inputRounding == nil)
        guard T.directConvolution && storage == .native && plan.shifted else { return plan }
        let fn = plan.outputs, pool2 = pool.map { $0.size == 2 && $0.stride == 2 && $0.pad == 0 } ?? true
        // Stride 1 convolves directly: the same multiply-add chains as the GEMM, without the columns
        // the padded planes add or a pass over a product, and 16 filters to a vector (where whole
        // blocks of 16 add at most a quarter more filters). Windows of a few taps (one input channel)
        // would spend more on laying out the outputs than on multiply-adds: those whose output is as
        // large as the input take 16 pixels to a vector instead, read straight from `x`.
        if pool2 && 4 * ((fn + 15) / 16 * 16) <= 5 * fn && g.cols >= 16 {
            plan.path = .direct
        } else if pool == nil && g.oh == g.h && g.ow == g.w {
            plan.path = .same
        }
        return plan
    }

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        forward(x, isTraining: isTraining, relu: false)
    }

    /// `forward`, with the ReLU that follows it (in training, too) and for inference the max
    /// pooling after that, done on each chunk of images while its outputs are in cache: every
    /// output is `round(round(acc) + b)` in the storage format, set to 0 where `<= 0` with `relu`,
    /// then pooled by `pool`. The values are those of the three layers run one after the other; a
    /// 2×2, stride-2 pool is taken straight from the chunk's product, so the unpooled output is
    /// never written.
    func forward(_ x: Tensor<T>, isTraining: Bool, relu: Bool, pool: MaxPooling<T>? = nil) -> Tensor<T> {
        let plan = plan(x, pool: pool), g = plan.g, fn = plan.outputs, k = g.cols, width = plan.columns
        let pooled = pool.map {
            Window(input: [g.n, fn, g.oh, g.ow], fh: $0.size, fw: $0.size, stride: $0.stride, pad: $0.pad)
        }
        precondition(pool == nil || relu, "a fused pool follows ReLU")
        let pool2 = pool.map { $0.size == 2 && $0.stride == 2 && $0.pad == 0 } ?? false
        if plan.path == .same {
            self.x = isTraining ? x : nil
            return convolveSame(x, g, relu: relu)
        }
        let direct = plan.path == .direct
        let blocks = direct ? packedBlocks(g) : nil
        let wp = blocks?.weights ?? packRows(fn, k, W.value.data, k)
        let skipPadding = blocks?.finite ?? false, unpadded = skipPadding && g.pad <= 2
        var y = [T](unsafeUninitializedCapacity: pool2 ? 0 : g.n * fn * g.pixels) { $1 = $0.count }
        var p = [T](unsafeUninitializedCapacity: pooled.map { $0.n * $0.c * $0.pixels } ?? 0) { $1 = $0.count }
        withMutableBuffers(&y, &p) { ys, ps in
            withBuffers(x.data, wp, plan.rowOffsets) { xs, wp, rows in
                // Each core takes an even share of the images, in chunks that fit its cache.
                parallelChunks(g.n, work: g.rows * k * fn) { share in
                    let y = pool2 ? ps.baseAddress! : ys.baseAddress!
                    // Padding left out and at most 2 wide: no tap reads it, so x serves as it is.
                    if unpadded {
                        return convolveDirectly(
                            plan, share, plan.unpadded(xs.baseAddress!, from: share.lowerBound), wp.baseAddress!,
                            relu: relu, pooled: pool2, skipPadding: true, y)
                    }
                    var input = [T](repeating: 0, count: plan.inputSize),
                        out = [T](repeating: 0, count: direct ? 0 : fn * width)
                    for images in plan.runs(share) {
                        withMutableBuffers(&input, &out) { input, out in
                            load(plan, xs.baseAddress!, images, input.baseAddress!)
                            if direct {
                                return convolveDirectly(
                                    plan, images, plan.planes(input.baseAddress!), wp.baseAddress!, relu: relu,
                                    pooled: pool2, skipPadding: skipPadding, y)
                            }
                            gemmPacked(
                                fn, width, k, wp.baseAddress!, input.baseAddress!, rows.baseAddress!,
                                out.baseAddress!, width, parallel: false)
                            finish(plan, images, out.baseAddress!, relu: relu, pooled: pool2, y)
                        }
                        if let pool, let pooled, !pool2 {
                            pool.pool(
                                UnsafeBufferPointer(ys), pooled, (images.lowerBound * fn)..<(images.upperBound * fn),
                                ps, nil)
                        }
                    }
                }
            }
        }
        self.x = isTraining ? x : nil
        if let pooled { return Tensor(shape: [g.n, fn, pooled.oh, pooled.ow], data: p) }
        return Tensor(shape: [g.n, fn, g.oh, g.ow], data: y)
    }

    /// The outputs of `images` (with `relu`, set to 0 where `<= 0`; with `pooled`, pooled 2×2) into
    /// `y`, convolved directly from `input` (see `ConvPlan.planes` and `ConvPlan.unpadded`) with the
    /// filters packed by `blocksOf16` (Float only); with `skipPadding` (every weight finite), taps
    /// that read padding are left out, which changes no value.
    private func convolveDirectly(
        _ plan: ConvPlan, _ images: Range<Int>, _ input: ConvInput<T>, _ packed: UnsafePointer<T>, relu: Bool,
        pooled: Bool, skipPadding: Bool, _ y: UnsafeMutablePointer<T>
    ) {
        let g = plan.g, fn = plan.outputs, per = fn * (pooled ? (g.oh / 2) * (g.ow / 2) : g.pixels)
        b.value.data.withUnsafeBufferPointer { bias in
            T.convolveDirectly(
                input, images: images.count, oh: g.oh, ow: g.ow, fh: g.fh, fw: g.fw, packed: packed, filters: fn,
                bias: bias.baseAddress!, relu: relu, pooled: pooled, skipPadding: skipPadding,
                y + images.lowerBound * per)
        }
    }

    /// `x` convolved by `precis_conv_same_f32` (Float, output as large as the input), each core
    /// taking an even share of the images.
    private func convolveSame(_ x: Tensor<T>, _ g: Window, relu: Bool) -> Tensor<T> {
        let fn = W.value.shape[0], wp = packedBlocks(g).weights
        var y = [T](unsafeUninitializedCapacity: g.n * fn * g.pixels) { $1 = $0.count }
        y.withUnsafeMutableBufferPointer { ys in
            withBuffers(x.data, wp, b.value.data) { xs, wp, bias in
                parallelChunks(g.n, work: g.rows * g.cols * fn) { share in
                    T.convolveSame(
                        xs.baseAddress! + share.lowerBound * g.c * g.h * g.w, images: share.count, channels: g.c,
                        h: g.h, w: g.w, pad: g.pad, fh: g.fh, fw: g.fw, packed: wp.baseAddress!, filters: fn,
                        bias: bias.baseAddress!, relu: relu, ys.baseAddress! + share.lowerBound * fn * g.pixels)
                }
            }
        }
        return Tensor(shape: [g.n, fn, g.oh, g.ow], data: y)
    }

    /// Writes the outputs of `images` from the chunk's product `out (FN, columns)` into `y`: all of
    /// them into `(N, FN, OH, OW)`, or with `pooled` the maximum of each 2×2 block (stride 2) into
    /// `(N, FN, OH/2, OW/2)`. Float32 runs in C with AVX-512 where the CPU has it, Float16 with F16C.
    private func finish(
        _ plan: ConvPlan, _ images: Range<Int>, _ out: UnsafePointer<T>, relu: Bool, pooled: Bool,
        _ y: UnsafeMutablePointer<T>
    ) {
        let g = plan.g, fn = plan.outputs, (oh, ow) = pooled ? (g.oh / 2, g.ow / 2) : (g.oh, g.ow)
        let storage = storage
        b.value.data.withUnsafeBufferPointer { bias in
            if storage == .native
                && T.finishConvolution(
                    out, columns: plan.columns, filters: fn, images: images.count, bandRows: plan.bandRows,
                    rowWidth: plan.rowWidth, oh: oh, ow: ow, bias: bias.baseAddress!, relu: relu, pooled: pooled,
                    y + images.lowerBound * fn * oh * ow)
            {
                return
            }
            // Writes plane `(n, f)` from `src`, rows `rowStride` apart, each value plus `b`: ReLU, and pooling.
            @inline(__always) func plane(_ n: Int, _ f: Int, _ src: UnsafePointer<T>, _ rowStride: Int, _ b: T?) {
                let dst = y + (n * fn + f) * oh * ow
                @inline(__always) func act(_ a: T) -> T {
                    let s = b.map { a + $0 } ?? a
                    return relu && s <= 0 ? 0 : s
                }
                for oy in 0..<oh {
                    if pooled {
                        let r0 = src + 2 * oy * rowStride, r1 = r0 + rowStride
                        for ox in 0..<ow {
                            let q = 2 * ox
                            dst[oy * ow + ox] = larger(
                                larger(larger(act(r0[q]), act(r0[q + 1])), act(r1[q])), act(r1[q + 1]))
                        }
                    } else {
                        for ox in 0..<ow { dst[oy * ow + ox] = act(src[oy * rowStride + ox]) }
                    }
                }
            }
            // The rows a plane reads: `(height, width)` of the chunk's product. A storage format rounds
            // the product and the sum, in bulk; native values are never rounded.
            let (height, width) = pooled ? (2 * oh, 2 * ow) : (oh, ow)
            var sums = [T](repeating: 0, count: storage == .native ? 0 : height * width)
            for (j, n) in images.enumerated() {
                for f in 0..<fn {
                    let src = out + f * plan.columns + j * plan.bandRows * plan.rowWidth
                    guard storage != .native else {
                        plane(n, f, src, plan.rowWidth, bias[f])
                        continue
                    }
                    sums.withUnsafeMutableBufferPointer { s in
                        for r in 0..<height {
                            (s.baseAddress! + r * width).update(from: src + r * plan.rowWidth, count: width)
                        }
                    }
                    storage.round(&sums)
                    sums.withUnsafeMutableBufferPointer { s in for i in s.indices { s[i] += bias[f] } }
                    storage.round(&sums)
                    sums.withUnsafeBufferPointer { plane(n, f, $0.baseAddress!, width, nil) }
                }
            }
        }
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> { backward(dout, inputGradient: true) }

    /// `backward`; without `inputGradient` (the first layer of a network being trained) only the
    /// parameter gradients are computed and the result is empty. With `reluOutput`, the output of a
    /// ReLU after this layer in the same training forward, `dout` is that ReLU's output gradient:
    /// it passes where `reluOutput` is not `<= 0` (as `ReLU.backward` lets it), applied as the
    /// chunk's gradient is laid out.
    public func backward(_ dout: Tensor<T>, inputGradient: Bool, reluOutput: [T]? = nil) -> Tensor<T> {
        guard let x else { preconditionFailure("Convolution.backward needs a training forward") }
        let plan = gradientPlan(x, inputGradient: inputGradient), fn = plan.outputs, k = plan.g.cols
        precondition(reluOutput.map { $0.count == dout.count } ?? true, "the ReLU output has the gradient's shape")
        switch plan.gradient {
        case .direct(let transposed):
            return backwardDirectly(x, dout, plan, transposed, reluOutput, inputGradient: inputGradient)
        case .chains(let transposed):
            return backwardInChains(x, dout, plan, transposed, reluOutput, inputGradient: inputGradient)
        case .gemm:
            break
        }
        // The input gradient's A: W' (C, FN·FH·FW) with stride 1, else Wᵀ (K, FN); packed.
        let wd =
            plan.shifted
            ? packRows(plan.g.c, fn * plan.g.fh * plan.g.fw, plan.flipped(W.value.data), fn * plan.g.fh * plan.g.fw)
            : packRows(k, fn, W.value.data, k, transA: true)
        // Per chunk: dW (FN, K) and db (FN), added in chunk order afterwards.
        var partial = [T](unsafeUninitializedCapacity: plan.count * fn * (k + 1)) { $1 = $0.count }
        var dx = [T](unsafeUninitializedCapacity: inputGradient ? x.count : 0) { $1 = $0.count }
        let sources = GradientSources(
            plan: plan, wd: wd, inputGradient: inputGradient, x: x.data, dout: dout.data, mask: reluOutput ?? [])
        partial.withUnsafeMutableBufferPointer { partial in
            dx.withUnsafeMutableBufferPointer { dx in
                sources.withPointers { p in
                    parallelChunks(plan.count, work: 2 * plan.g.rows * k * fn) { chunks in
                        var scratch = GradientScratch<T>(plan, inputGradient: inputGradient)
                        for chunk in chunks {
                            chunkGradient(chunk, p, &scratch, dw: partial.baseAddress! + chunk * fn * (k + 1), dx: dx)
                        }
                    }
                }
            }
        }
        let sums = addedInOrder(partial, parts: plan.count)
        W.grad = Tensor(shape: W.value.shape, data: Array(sums[0..<(fn * k)]))
        b.grad = Tensor(shape: [fn], data: Array(sums[(fn * k)...]))
        return inputGradient ? Tensor(shape: x.shape, data: dx) : Tensor(zeros: [0])
    }

    /// The plan of a backward pass over the forward input `x`, and the path it takes: the direct
    /// kernels' order when the scalar type has it (stride 1, square windows of 3 or 5 and 16 taps
    /// or more, as in the forward pass), in C with the direct kernels or else in the same order with
    /// the GEMMs, so every kernel level trains the same bits; otherwise the book's GEMMs.
    private func gradientPlan(_ x: Tensor<T>, inputGradient: Bool) -> ConvPlan {
        var plan = plan(x)
        let g = plan.g
        guard T.directGradientOrder, storage == .native, plan.shifted, g.fh == g.fw,
            g.fh == 3 || g.fh == 5, g.pad < g.fh, g.cols >= 16
        else { return plan }
        let t = Window(input: [g.n, plan.outputs, g.oh, g.ow], fh: g.fh, fw: g.fw, stride: 1, pad: g.fh - 1 - g.pad)
        // Without `inputGradient` any transposed plan will do: only its chunks are used.
        guard !inputGradient || (4 * ((g.c + 15) / 16 * 16) <= 5 * g.c && t.cols >= 16) else { return plan }
        let transposed = ConvPlan(t, outputs: g.c, shifted: true)
        plan.gradient = T.directConvolution ? .direct(transposed: transposed) : .chains(transposed: transposed)
        return plan
    }

    /// `backward` in C (see `gradientPlan`): per chunk of `plan` (so the partial sums are added as
    /// on any machine), the chunk's output gradients pixel by pixel, then its weight and bias
    /// gradients; then the input gradient, each core taking an even share of the images.
    private func backwardDirectly(
        _ x: Tensor<T>, _ dout: Tensor<T>, _ plan: ConvPlan, _ transposed: ConvPlan, _ reluOutput: [T]?,
        inputGradient: Bool
    ) -> Tensor<T> {
        let g = plan.g, fn = plan.outputs, k = g.cols, ld = (fn + 15) / 16 * 16
        var partial = [T](unsafeUninitializedCapacity: plan.count * fn * (k + 1)) { $1 = $0.count }
        let mask = reluOutput ?? []
        partial.withUnsafeMutableBufferPointer { partial in
            withBuffers(x.data, dout.data, mask) { xs, ds, ms in
                parallelChunks(plan.count, work: g.rows * k * fn) { chunks in
                    var input = [T](repeating: 0, count: plan.inputSize),
                        d = [T](repeating: 0, count: plan.images * g.pixels * ld)
                    for chunk in chunks {
                        let images = plan.images(chunk), at = images.lowerBound * fn * g.pixels
                        let dw = partial.baseAddress! + chunk * fn * (k + 1)
                        withMutableBuffers(&input, &d) { input, d in
                            plan.load(xs.baseAddress!, images, input.baseAddress!)
                            T.convolutionGradient(
                                input: input.baseAddress!, planeSize: plan.planeSize, channels: g.c,
                                rowWidth: plan.rowWidth, bandRows: plan.bandRows, images: images.count, oh: g.oh,
                                ow: g.ow, size: g.fh, dout: ds.baseAddress! + at,
                                mask: ms.isEmpty ? nil : ms.baseAddress! + at, filters: fn, pixels: g.pixels,
                                d: d.baseAddress!, ld: ld, dw: dw, db: dw + fn * k)
                        }
                    }
                }
            }
        }
        let sums = addedInOrder(partial, parts: plan.count)
        W.grad = Tensor(shape: W.value.shape, data: Array(sums[0..<(fn * k)]))
        b.grad = Tensor(shape: [fn], data: Array(sums[(fn * k)...]))
        return inputGradient ? gradientOfInput(dout, mask, transposed) : Tensor(zeros: [0])
    }

    /// The input gradient `dx (N, C, H, W)` of `dout` (where `mask`, a fused ReLU's output, is not
    /// empty, 0 where it is `<= 0`): the direct kernel convolving the padded output gradients, plan
    /// `t`, with every filter turned over, `W' (C, FN, FH, FW)`; padding rows are left out when every
    /// weight is finite. Each core takes an even share of the images.
    private func gradientOfInput(_ dout: Tensor<T>, _ mask: [T], _ t: ConvPlan) -> Tensor<T> {
        let g = t.g, c = t.outputs, (h, w) = (g.oh, g.ow)
        let wp = blocksOf16(turnedFilters(), g), skip = W.value.data.allSatisfy(\.isFinite),
            zero = [T](repeating: 0, count: c)
        var dx = [T](unsafeUninitializedCapacity: g.n * c * h * w) { $1 = $0.count }
        dx.withUnsafeMutableBufferPointer { dxs in
            withBuffers(dout.data, mask) { ds, ms in
                withBuffers(wp, zero) { wp, zero in
                    parallelChunks(g.n, work: g.rows * g.cols * c) { share in
                        var planes = [T](repeating: 0, count: t.inputSize)
                        for images in t.runs(share) {
                            planes.withUnsafeMutableBufferPointer { planes in
                                t.load(
                                    ds.baseAddress!, images, planes.baseAddress!,
                                    mask: ms.isEmpty ? nil : ms.baseAddress!)
                                T.convolveDirectly(
                                    t.planes(planes.baseAddress!), images: images.count, oh: h, ow: w, fh: g.fh,
                                    fw: g.fw, packed: wp.baseAddress!, filters: c, bias: zero.baseAddress!, relu: false,
                                    pooled: false, skipPadding: skip, dxs.baseAddress! + images.lowerBound * c * h * w)
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [g.n, c, h, w], data: dx)
    }

    /// Every filter turned over, `W' (C, FN, FH, FW)`: the weights of the input gradient as a
    /// convolution of the output gradient.
    private func turnedFilters() -> [T] {
        let w = W.value, (fn, c, taps) = (w.shape[0], w.shape[1], w.shape[2] * w.shape[3])
        var turned = [T](repeating: 0, count: w.count)
        for f in 0..<fn {
            for ch in 0..<c {
                for i in 0..<taps { turned[(ch * fn + f) * taps + i] = w.data[(f * c + ch) * taps + taps - 1 - i] }
            }
        }
        return turned
    }

    /// `backwardDirectly`'s values without its C kernels: per chunk of `plan`, `dW (FN, K) = D (FN, L) ·
    /// Bᵀ`, with `Bᵀ (L, K)` the chunk's windows pixel by pixel, so each weight is one chain over the
    /// chunk's columns in order (a column that is no output pixel has a zero gradient and adds ±0,
    /// which leaves a chain from +0 as it is), and `db` one chain of additions; the input gradient
    /// is the forward convolution `t` of the output gradient with the filters turned over, whose
    /// chains are those of the direct kernel.
    private func backwardInChains(
        _ x: Tensor<T>, _ dout: Tensor<T>, _ plan: ConvPlan, _ t: ConvPlan, _ reluOutput: [T]?, inputGradient: Bool
    ) -> Tensor<T> {
        let g = plan.g, fn = plan.outputs, k = g.cols, width = plan.columns, ld = plan.gradientStride
        // Bᵀ's rows as wide as whole panels of the GEMM, so that it is read in place.
        let kp = (k + T.panelWidth - 1) / T.panelWidth * T.panelWidth
        let mask = reluOutput ?? [], pixelRows = (0..<width).map { $0 * kp }
        var partial = [T](unsafeUninitializedCapacity: plan.count * fn * (k + 1)) { $1 = $0.count }
        partial.withUnsafeMutableBufferPointer { partial in
            withBuffers(x.data, dout.data, mask) { xs, ds, ms in
                parallelChunks(plan.count, work: g.rows * k * fn) { chunks in
                    var input = [T](repeating: 0, count: plan.inputSize), bt = [T](repeating: 0, count: width * kp)
                    var d = [T](repeating: 0, count: fn * ld), dw = [T](repeating: 0, count: fn * kp)
                    for chunk in chunks {
                        let images = plan.images(chunk), sums = partial.baseAddress! + chunk * fn * (k + 1)
                        withMutableBuffers(&input, &bt) { input, bt in
                            plan.load(xs.baseAddress!, images, input.baseAddress!)
                            // 16 columns at a time, so that the rows of Bᵀ being written stay in cache.
                            for c0 in Swift.stride(from: 0, to: width, by: 16) {
                                for (r, offset) in plan.rowOffsets.enumerated() {
                                    for column in c0..<min(c0 + 16, width) {
                                        bt[column * kp + r] = input[offset + column]
                                    }
                                }
                            }
                        }
                        withMutableBuffers(&d, &dw) { d, dw in
                            let d0 = d.baseAddress! + plan.gradientFront
                            plan.layOutGradient(ds.baseAddress!, mask: ms.isEmpty ? nil : ms.baseAddress!, images, d)
                            gemmPacked(
                                fn, kp, width, packRows(fn, width, d0, ld), bt, pixelRows, dw.baseAddress!, kp,
                                parallel: false)
                            for f in 0..<fn {
                                (sums + f * k).update(from: dw.baseAddress! + f * kp, count: k)
                                var sum: T = 0
                                for column in 0..<width { sum += d0[f * ld + column] }
                                sums[fn * k + f] = sum
                            }
                        }
                    }
                }
            }
        }
        let sums = addedInOrder(partial, parts: plan.count)
        W.grad = Tensor(shape: W.value.shape, data: Array(sums[0..<(fn * k)]))
        b.grad = Tensor(shape: [fn], data: Array(sums[(fn * k)...]))
        guard inputGradient else { return Tensor(zeros: [0]) }
        let passed = reluOutput.map { m in Tensor(shape: dout.shape, data: zip(dout.data, m).map { $1 <= 0 ? 0 : $0 }) }
        let turned = Convolution(
            W: Tensor(shape: [g.c, fn, g.fh, g.fw], data: turnedFilters()), b: Tensor(zeros: [g.c]), pad: t.g.pad)
        return turned.forward(passed ?? dout, isTraining: false)
    }

    /// One chunk of images: its dout rows copied into the padded gradient planes, dW and db of the
    /// chunk into `dw` (`(FN, K)` then `(FN)`), and, when asked, its input gradient folded into `dx`.
    private func chunkGradient(
        _ chunk: Int, _ p: GradientPointers<T>, _ s: inout GradientScratch<T>, dw: UnsafeMutablePointer<T>,
        dx: UnsafeMutableBufferPointer<T>
    ) {
        let plan = p.plan, g = plan.g, fn = plan.outputs, k = g.cols, width = plan.columns, ld = plan.gradientStride
        let images = plan.images(chunk)
        s.input.withUnsafeMutableBufferPointer { input in
            s.d.withUnsafeMutableBufferPointer { d in
                // B of the chunk, and its dout (FN, L) in the layout B's columns have.
                load(plan, p.x, images, input.baseAddress!)
                plan.layOutGradient(p.dout, mask: p.mask, images, d)
                let d0 = d.baseAddress! + plan.gradientFront
                // dW = dout · Bᵀ, db = Σ dout.
                gemmABt(fn, k, width, d0, ld, input.baseAddress!, p.rows, dw, k, parallel: false)
                for f in 0..<fn { dw[fn * k + f] = laneSum(d0 + f * ld, width) }
                guard p.inputGradient else { return }
                // dX = W' · D (stride 1) or Wᵀ · dout, folded back into the images.
                s.scratch.withUnsafeMutableBufferPointer { scratch in
                    let (m, n) = plan.shifted ? (g.c, plan.planeSize) : (k, width)
                    gemmPacked(
                        m, n, plan.gradientRowOffsets.count, p.wd, d.baseAddress!, p.dRows, scratch.baseAddress!, n,
                        parallel: false)
                    plan.fold(scratch.baseAddress!, images, dx.baseAddress!)
                }
            }
        }
    }

    /// The chunk's `B` for `images` of `x`, rounded by `inputRounding` when there is one (in the
    /// forward pass and again in the backward pass, so `dW` is taken against the values used).
    private func load(_ plan: ConvPlan, _ x: UnsafePointer<T>, _ images: Range<Int>, _ input: UnsafeMutablePointer<T>) {
        plan.load(x, images, input)
        if let inputRounding { T.roundInput(input, .columns(plan.g.cols, plan.columns), by: inputRounding) }
    }

    /// The sum of `parts` equal parts of `partial`, added in part order (so the result does not
    /// depend on how the parts were spread over the cores).
    private func addedInOrder(_ partial: [T], parts: Int) -> [T] {
        let size = partial.count / parts
        var sums = Array(partial[0..<size])
        for part in 1..<parts {
            for i in 0..<size { sums[i] += partial[part * size + i] }
        }
        return sums
    }
}

/// `W (FN, C, FH, FW)` as `(ceil(FN/16), C, FH, FW, 16)`, zero past `FN`: for each window element,
/// 16 filters' weights in a row, as `precis_conv_direct_f32` reads them.
private func blocksOf16<T: NetworkScalar>(_ w: [T], _ g: Window) -> [T] {
    let taps = g.c * g.fh * g.fw, fn = w.count / taps
    var out = [T](repeating: 0, count: (fn + 15) / 16 * 16 * taps)
    for f in 0..<fn {
        for t in 0..<taps { out[f / 16 * taps * 16 + t * 16 + f % 16] = w[f * taps + t] }
    }
    return out
}

/// `count` values of `d`, each 0 where `mask` is `<= 0` (as `ReLU.backward` passes a gradient),
/// into `out`.
@inline(__always)
private func masked<T: NetworkScalar>(
    _ d: UnsafePointer<T>, by mask: UnsafePointer<T>, _ count: Int, into out: UnsafeMutablePointer<T>
) {
    for i in 0..<count { out[i] = mask[i] <= 0 ? 0 : d[i] }
}

/// Whether the float32 convolution and pooling kernels in C run here (AVX-512).
let avx512Kernels = precis_avx512() != 0

/// The sum of `count` values (a multiple of 16), in 16 lanes and then across the lanes.
@inline(__always)
private func laneSum<T: NetworkScalar>(_ x: UnsafePointer<T>, _ count: Int) -> T {
    var s = SIMD16<T>()
    for o in stride(from: 0, to: count, by: 16) { s += UnsafeRawPointer(x + o).loadUnaligned(as: SIMD16<T>.self) }
    return s.sum()
}

/// How a convolution walks its batch: `count` chunks of whole images (at most `images`), and per
/// chunk a matrix `B` of `columns` columns (a multiple of 32) with one row per window element.
/// Chunks are sized so that a chunk's buffers (about 512 KB of values) stay in a core's cache.
/// Depends only on the geometry, so results do not depend on the number of cores.
///
/// With `shifted` (stride 1), the chunk's input is one zero-padded plane per channel,
/// `rowWidth = W + pad` wide, image `j`'s row `y` at plane row `pad + j·(H + pad) + y`, columns
/// `pad..<pad + W`: the right padding of a row is the left padding of the next, and the padding
/// below an image the padding above the next. Output pixel `(j, oy, ox)` is column
/// `(j·(H + pad) + oy)·rowWidth + ox`; its window element `(ch, ky, kx)` is that plane position
/// plus `ky·rowWidth + kx`, so row `r` of `B` is the plane shifted by that offset. Columns that
/// are not output pixels are computed and dropped, and their gradient is 0. Otherwise `B` is
/// `im2colT` of the chunk, output pixel `(j, oy, ox)` at column `(j·OH + oy)·OW + ox`.
/// The input a direct convolution reads: padded planes, or the input itself with the padding left
/// out (a negative `origin`); channel `c` of image `n` starts at `data + origin + n·imageStride +
/// c·channelStride`, its rows `rowWidth` apart.
public struct ConvInput<T> {
    public let data: UnsafePointer<T>
    public let channelStride: Int, imageStride: Int, origin: Int
    public let rowWidth: Int, channels: Int, h: Int, w: Int, pad: Int
}

/// How a convolution's forward pass runs.
enum ConvPath {
    /// The book's path: the input unfolded (or its shifted planes), one GEMM per chunk, then the bias,
    /// ReLU and pooling.
    case gemm
    /// Straight from the padded planes, 16 filters to a vector (`ScalarKernels.convolveDirectly`).
    case direct
    /// A few taps and an output as large as the input: 16 pixels to a vector, read from the input
    /// itself (`ScalarKernels.convolveSame`).
    case same
}

/// How a convolution's backward pass runs.
indirect enum GradientPath {
    /// The book's path: the weight gradient and the input gradient as GEMMs over the unfolded
    /// input (or its shifted planes), the input gradient folded back (col2im).
    case gemm
    /// The direct kernels' order: the weight gradient one chain per weight over each chunk's
    /// pixels, the input gradient as the forward convolution (`transposed`: `dout (N, FN, OH, OW)`
    /// to `dx (N, C, H, W)`, padded by `FH - 1 - pad`) of the output gradient with the filters
    /// turned over; in C (`ScalarKernels.convolutionGradient`).
    case direct(transposed: ConvPlan)
    /// The same order as `direct` through the GEMMs, for a scalar type without the direct kernels.
    case chains(transposed: ConvPlan)
}

struct ConvPlan {
    let g: Window
    /// How the forward pass runs, chosen once by the layer from its scalar type's kernels.
    var path = ConvPath.gemm
    /// How the backward pass runs, chosen once by the layer for a training step.
    var gradient = GradientPath.gemm
    /// Output channels (FN).
    let outputs: Int
    /// Images in the largest chunk (the others have as many or one fewer), and chunks.
    let images: Int, count: Int
    let shifted: Bool
    /// Columns per output row and output rows per image (`rowWidth·bandRows` columns per image).
    let rowWidth: Int, bandRows: Int
    let columns: Int
    /// Elements of one padded plane (`shifted`; a multiple of 32), and of the chunk's input buffer.
    let planeSize: Int, inputSize: Int
    /// Where row `r` of `B` starts in the input buffer.
    let rowOffsets: [Int]
    /// The output gradient's `(FN, columns)` matrix: row stride and zero columns in front of each
    /// row (room for the shifted views the input gradient reads).
    let gradientStride: Int, gradientFront: Int
    /// The rows of the input gradient's `B`, as offsets into that matrix: `(FN·FH·FW)` views of it
    /// shifted back by each window offset (`shifted`), else its `FN` rows.
    let gradientRowOffsets: [Int]

    /// `shifted` needs stride 1.
    init(_ g: Window, outputs: Int, shifted: Bool) {
        precondition(!shifted || g.stride == 1, "the shifted layout needs stride 1")
        self.g = g
        self.outputs = outputs
        self.shifted = shifted
        (rowWidth, bandRows) = shifted ? (g.w + g.pad, g.h + g.pad) : (g.ow, g.oh)
        let perImage = rowWidth * bandRows
        // The values a chunk holds per column: stride 1, the padded input and its gradient plus
        // the output; otherwise the unfolded input and its gradient.
        let perColumn = shifted ? 2 * g.c + outputs : 2 * g.cols
        // As few chunks as fit, and the images spread evenly over them (no short last chunk).
        let most = max(1, min(g.n, (1 << 17) / max(1, perColumn * perImage)))
        count = (g.n + most - 1) / most
        images = (g.n + count - 1) / count
        let columns = (images * perImage + 31) / 32 * 32, width = rowWidth
        self.columns = columns
        if shifted {
            let maxShift = (g.fh - 1) * width + g.fw - 1
            // Room for the last image's bottom padding and for the widest shift of the last column.
            let plane = (max((images * bandRows + g.pad) * width, columns + maxShift) + 31) / 32 * 32
            (planeSize, inputSize) = (plane, g.c * plane)
            rowOffsets = (0..<g.cols).map { r in
                let t = g.tap(r)
                return t.ch * plane + t.ky * width + t.kx
            }
            (gradientFront, gradientStride) = (maxShift, maxShift + plane)
            gradientRowOffsets = (0..<(outputs * g.fh * g.fw)).map { i in
                let (f, ky, kx) = (i / (g.fh * g.fw), i / g.fw % g.fh, i % g.fw)
                return f * (maxShift + plane) + maxShift - (ky * width + kx)
            }
        } else {
            (planeSize, inputSize) = (0, g.cols * columns)
            rowOffsets = (0..<g.cols).map { $0 * columns }
            (gradientFront, gradientStride) = (0, columns)
            gradientRowOffsets = (0..<outputs).map { $0 * columns }
        }
    }

    /// The chunk's padded planes at `input` (`load`, shifted), as the direct kernel reads them.
    func planes<T>(_ input: UnsafePointer<T>) -> ConvInput<T> {
        ConvInput(
            data: input, channelStride: planeSize, imageStride: bandRows * rowWidth, origin: 0, rowWidth: rowWidth,
            channels: g.c, h: g.h, w: g.w, pad: g.pad)
    }

    /// `x (N, C, H, W)` from image `image` on, unpadded, as the direct kernel reads it when it
    /// leaves the padding out (which it can only do entirely for `pad <= 2`).
    func unpadded<T>(_ x: UnsafePointer<T>, from image: Int) -> ConvInput<T> {
        ConvInput(
            data: x + image * g.c * g.h * g.w, channelStride: g.h * g.w, imageStride: g.c * g.h * g.w,
            origin: -(g.pad * g.w + g.pad), rowWidth: g.w, channels: g.c, h: g.h, w: g.w, pad: g.pad)
    }

    /// The images of chunk `i`: `images` or one fewer.
    func images(_ i: Int) -> Range<Int> { i * g.n / count..<(i + 1) * g.n / count }

    /// `share` in as few runs of at most `images` images as fit, as even as they come (for passes
    /// whose values do not depend on how the batch is cut).
    func runs(_ share: Range<Int>) -> [Range<Int>] {
        let parts = (share.count + images - 1) / images
        return (0..<parts).map {
            share.lowerBound + $0 * share.count / parts..<share.lowerBound + ($0 + 1) * share.count / parts
        }
    }

    /// Elements of the input gradient's product for one chunk: `(C, planeSize)` or `(K, columns)`.
    var scratchSize: Int { shifted ? inputSize : g.cols * columns }

    /// `W (FN, C, FH, FW)` as `W' (C, FN·FH·FW)`: the input gradient's weights with stride 1.
    func flipped<T: NetworkScalar>(_ w: [T]) -> [T] {
        let taps = g.fh * g.fw
        return filledArray(w.count) { out in
            for f in 0..<outputs {
                for ch in 0..<g.c {
                    for t in 0..<taps { out[(ch * outputs + f) * taps + t] = w[(f * g.c + ch) * taps + t] }
                }
            }
        }
    }

    /// Calls `body(column, pixel, channel)` for every output row of `images`: `column` is where
    /// the row starts in an `(FN, stride)` matrix of the chunk's columns, `pixel` where it starts
    /// in the `(N, FN, OH, OW)` tensor.
    @inline(__always)
    func forEachOutputRow(_ images: Range<Int>, stride: Int, _ body: (Int, Int, Int) -> Void) {
        for (j, n) in images.enumerated() {
            for f in 0..<outputs {
                for oy in 0..<g.oh {
                    body(f * stride + (j * bandRows + oy) * rowWidth, ((n * outputs + f) * g.oh + oy) * g.ow, f)
                }
            }
        }
    }

    /// Writes the output gradient `dout (N, FN, OH, OW)` of `images` into `d`, the chunk's
    /// `(FN, gradientStride)` matrix from `gradientFront` on, in the columns of `B` (0 elsewhere);
    /// with `mask`, 0 where the mask is `<= 0`, as a ReLU passes a gradient.
    func layOutGradient<T: NetworkScalar>(
        _ dout: UnsafePointer<T>, mask: UnsafePointer<T>?, _ images: Range<Int>, _ d: UnsafeMutableBufferPointer<T>
    ) {
        d.update(repeating: 0)
        let d0 = d.baseAddress! + gradientFront
        forEachOutputRow(images, stride: gradientStride) { column, pixel, _ in
            if let mask {
                masked(dout + pixel, by: mask + pixel, g.ow, into: d0 + column)
            } else {
                (d0 + column).update(from: dout + pixel, count: g.ow)
            }
        }
    }

    /// Calls `body(plane, input)` for every input row of `images`: where it starts in the padded
    /// planes and in `x (N, C, H, W)`.
    @inline(__always)
    private func forEachInputRow(_ images: Range<Int>, _ body: (Int, Int) -> Void) {
        for (j, n) in images.enumerated() {
            for ch in 0..<g.c {
                for y in 0..<g.h {
                    body(
                        ch * planeSize + (g.pad + j * bandRows + y) * rowWidth + g.pad, ((n * g.c + ch) * g.h + y) * g.w
                    )
                }
            }
        }
    }

    /// Writes the chunk's input buffer for `images` of `x`; with `mask` (shifted only), each value
    /// is 0 where the mask's is `<= 0`, as a ReLU passes a gradient.
    func load<T: NetworkScalar>(
        _ x: UnsafePointer<T>, _ images: Range<Int>, _ input: UnsafeMutablePointer<T>, mask: UnsafePointer<T>? = nil
    ) {
        guard shifted else {
            precondition(mask == nil, "a masked load needs the shifted layout")
            im2colT(x, g, images: images, input, columns)
            let used = images.count * g.pixels
            for r in 0..<g.cols { (input + r * columns + used).update(repeating: 0, count: columns - used) }
            return
        }
        let first = images.lowerBound * g.c * g.h * g.w
        if T.padPlanes(
            x + first, mask: mask.map { $0 + first }, images: images.count, channels: g.c, h: g.h, w: g.w, pad: g.pad,
            planeSize: planeSize, input)
        {
            return
        }
        input.update(repeating: 0, count: inputSize)
        if let mask {
            forEachInputRow(images) { plane, row in masked(x + row, by: mask + row, g.w, into: input + plane) }
        } else {
            forEachInputRow(images) { plane, row in (input + plane).update(from: x + row, count: g.w) }
        }
    }

    /// Writes the input gradient of `images` into `dx (N, C, H, W)` from the chunk's product:
    /// with stride 1 the padded planes are cropped; otherwise `dB (K, columns)` is folded back.
    func fold<T: NetworkScalar>(_ product: UnsafePointer<T>, _ images: Range<Int>, _ dx: UnsafeMutablePointer<T>) {
        guard shifted else {
            let image = g.c * g.h * g.w
            (dx + images.lowerBound * image).update(repeating: 0, count: images.count * image)
            col2imT(product, columns, g, images: images, dx)
            return
        }
        forEachInputRow(images) { plane, row in (dx + row).update(from: product + plane, count: g.w) }
    }
}

/// What every chunk of a convolution's backward pass reads.
private struct GradientSources<T: NetworkScalar> {
    let plan: ConvPlan
    /// The input gradient's packed A.
    let wd: [T]
    let inputGradient: Bool
    /// `mask`: a fused ReLU's output (the gradient passes where it is not `<= 0`), or empty.
    let x: [T], dout: [T], mask: [T]

    /// Runs `body` with pointers to every array, valid for its duration.
    func withPointers<R>(_ body: (GradientPointers<T>) -> R) -> R {
        x.withUnsafeBufferPointer { x in
            dout.withUnsafeBufferPointer { dout in
                mask.withUnsafeBufferPointer { mask in
                    wd.withUnsafeBufferPointer { wd in
                        plan.rowOffsets.withUnsafeBufferPointer { rows in
                            plan.gradientRowOffsets.withUnsafeBufferPointer { dRows in
                                body(
                                    GradientPointers(
                                        plan: plan, inputGradient: inputGradient, x: x.baseAddress!,
                                        dout: dout.baseAddress!, mask: mask.isEmpty ? nil : mask.baseAddress!,
                                        wd: wd.baseAddress!, rows: rows.baseAddress!, dRows: dRows.baseAddress!))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GradientSources` as pointers, for the chunks running in parallel.
private struct GradientPointers<T: NetworkScalar> {
    let plan: ConvPlan
    let inputGradient: Bool
    let x: UnsafePointer<T>, dout: UnsafePointer<T>, mask: UnsafePointer<T>?, wd: UnsafePointer<T>
    let rows: UnsafePointer<Int>, dRows: UnsafePointer<Int>
}

/// One core's buffers for a convolution's backward pass: the chunk's B, its dout in B's column
/// layout, and the input gradient before it is folded back.
private struct GradientScratch<T: NetworkScalar> {
    var input: [T], d: [T], scratch: [T]

    init(_ plan: ConvPlan, inputGradient: Bool) {
        input = [T](repeating: 0, count: plan.inputSize)
        d = [T](repeating: 0, count: plan.outputs * plan.gradientStride)
        scratch = [T](repeating: 0, count: inputGradient ? plan.scratchSize : 0)
    }
}
