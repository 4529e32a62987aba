/// Convolution by im2col + GEMM. `W: (FN, C, FH, FW)`, `b: (FN)`; input `(N, C, H, W)`, output
/// `(N, FN, OH, OW)` with `OH = (H + 2·pad - FH) / stride + 1`.
///
/// The batch is walked in chunks of whole images (`ConvChunks`) whose unfolded input stays in a
/// core's cache; the chunks run in parallel and nothing batch-sized is unfolded. Per chunk, with
/// `K = C·FH·FW` and `L` the chunk's output pixels: `out (FN, L) = W (FN, K) · col (K, L)`,
/// `dW += dout (FN, L) · colᵀ` and `dcol (K, L) = Wᵀ · dout`, folded back by `col2imT`.
public final class Convolution<T: NetworkScalar>: Layer {
    public let W: Parameter<T>
    public let b: Parameter<T>
    public let stride: Int
    public let pad: Int
    private var g: Window?
    private var x: Tensor<T>?  // the input of the last training forward, for backward

    /// Rounding applied to the GEMM result before the bias is added (the `-acc32` modes).
    public let storage: StorageFormat

    public init(W: Tensor<T>, b: Tensor<T>, stride: Int = 1, pad: Int = 0, storage: StorageFormat = .native) {
        precondition(W.shape.count == 4 && b.shape == [W.shape[0]], "conv W (FN,C,FH,FW), b (FN)")
        self.W = Parameter("W", W)
        self.b = Parameter("b", b)
        self.stride = stride
        self.pad = pad
        self.storage = storage
    }

    public var parameters: [Parameter<T>] { [W, b] }

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        let (fn, fh, fw) = (W.value.shape[0], W.value.shape[2], W.value.shape[3])
        let g = Window(input: x.shape, fh: fh, fw: fw, stride: stride, pad: pad)
        precondition(g.c == W.value.shape[1], "conv expects \(W.value.shape[1]) channels, got \(g.c)")
        let plan = ConvChunks(g), p = g.pixels, k = g.cols, width = plan.width
        let wp = packRows(fn, k, W.value.data, k)
        let y: [T] = filledArray(g.n * fn * p) { ys in
            x.data.withUnsafeBufferPointer { xs in
                wp.withUnsafeBufferPointer { wp in
                    parallelChunks(plan.count, work: g.rows * k * fn) { chunks in
                        var col = [T](repeating: 0, count: k * width), out = [T](repeating: 0, count: fn * width)
                        for chunk in chunks {
                            let images = plan.images(chunk)
                            col.withUnsafeMutableBufferPointer { col in
                                out.withUnsafeMutableBufferPointer { out in
                                    im2colT(xs.baseAddress!, g, images: images, col.baseAddress!, width)
                                    gemmPacked(fn, width, k, wp.baseAddress!, col.baseAddress!, width, out.baseAddress!, width, parallel: false)
                                    for (j, n) in images.enumerated() {
                                        for f in 0..<fn {
                                            let src = out.baseAddress! + f * width + j * p, dst = ys.baseAddress! + (n * fn + f) * p
                                            let bias = b.value.data[f]
                                            for q in 0..<p { dst[q] = storage.round(src[q]) + bias }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        self.g = g
        self.x = isTraining ? x : nil
        return Tensor(shape: [g.n, fn, g.oh, g.ow], data: y)
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> { backward(dout, inputGradient: true) }

    /// `backward`; without `inputGradient` (the first layer of a network being trained) only the
    /// parameter gradients are computed and the result is empty.
    public func backward(_ dout: Tensor<T>, inputGradient: Bool) -> Tensor<T> {
        guard let g, let x else { preconditionFailure("Convolution.backward needs a training forward") }
        let plan = ConvChunks(g), fn = W.value.shape[0], p = g.pixels, k = g.cols, width = plan.width
        let wt = packRows(k, fn, W.value.data, k, transA: true)  // Wᵀ (K, FN)
        var partial = [T](unsafeUninitializedCapacity: plan.count * fn * (k + 1)) { $1 = $0.count }  // per chunk: dW (FN, K), then db (FN)
        var dx = [T](unsafeUninitializedCapacity: inputGradient ? x.count : 0) { $1 = $0.count }
        x.data.withUnsafeBufferPointer { xs in
            dout.data.withUnsafeBufferPointer { ds in
                wt.withUnsafeBufferPointer { wt in
                    partial.withUnsafeMutableBufferPointer { partial in
                        dx.withUnsafeMutableBufferPointer { dx in
                            parallelChunks(plan.count, work: 2 * g.rows * k * fn) { chunks in
                                var col = [T](repeating: 0, count: k * width), d = [T](repeating: 0, count: fn * width)
                                var dcol = [T](repeating: 0, count: inputGradient ? k * width : 0)
                                for chunk in chunks {
                                    let images = plan.images(chunk), used = images.count * p
                                    col.withUnsafeMutableBufferPointer { col in
                                        d.withUnsafeMutableBufferPointer { d in
                                            im2colT(xs.baseAddress!, g, images: images, col.baseAddress!, width)
                                            for (j, n) in images.enumerated() {
                                                for f in 0..<fn {
                                                    (d.baseAddress! + f * width + j * p).update(from: ds.baseAddress! + (n * fn + f) * p, count: p)
                                                }
                                            }
                                            if used < width {  // padding, or a short last chunk: clear stale columns
                                                for r in 0..<k { (col.baseAddress! + r * width + used).update(repeating: 0, count: width - used) }
                                                for f in 0..<fn { (d.baseAddress! + f * width + used).update(repeating: 0, count: width - used) }
                                            }
                                            let dw = partial.baseAddress! + chunk * fn * (k + 1)
                                            gemmABt(fn, k, width, d.baseAddress!, width, col.baseAddress!, width, dw, k, parallel: false)
                                            for f in 0..<fn { dw[fn * k + f] = laneSum(d.baseAddress! + f * width, width) }
                                            guard inputGradient else { return }
                                            let image = g.c * g.h * g.w
                                            (dx.baseAddress! + images.lowerBound * image).update(repeating: 0, count: images.count * image)
                                            dcol.withUnsafeMutableBufferPointer { dcol in
                                                gemmPacked(k, width, fn, wt.baseAddress!, d.baseAddress!, width, dcol.baseAddress!, width, parallel: false)
                                                col2imT(dcol.baseAddress!, width, g, images: images, dx.baseAddress!)
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
        let sums: [T] = filledArray(fn * (k + 1)) { sums in  // chunk partials added in chunk order
            partial.withUnsafeBufferPointer { partial in
                for i in 0..<(fn * (k + 1)) {
                    var s = partial[i]
                    for chunk in 1..<plan.count { s += partial[chunk * fn * (k + 1) + i] }
                    sums[i] = s
                }
            }
        }
        W.grad = Tensor(shape: W.value.shape, data: Array(sums[0..<(fn * k)]))
        b.grad = Tensor(shape: [fn], data: Array(sums[(fn * k)...]))
        return inputGradient ? Tensor(shape: x.shape, data: dx) : Tensor(zeros: [0])
    }
}

/// The sum of `count` values (a multiple of 16), in 16 lanes and then across the lanes.
@inline(__always)
private func laneSum<T: NetworkScalar>(_ x: UnsafePointer<T>, _ count: Int) -> T {
    var s = SIMD16<T>()
    for o in stride(from: 0, to: count, by: 16) { s += UnsafeRawPointer(x + o).loadUnaligned(as: SIMD16<T>.self) }
    return s.sum()
}

/// How a convolution walks its batch: `images` whole images per chunk, whose unfolded input
/// `(C·FH·FW, width)` fits in about 512 KB of a core's cache. `width` is the chunk's output
/// pixels rounded up to a multiple of 32, the GEMM panel width. Depends only on the geometry,
/// so results do not depend on the number of cores.
struct ConvChunks {
    let images: Int, width: Int, count: Int, n: Int

    init(_ g: Window) {
        n = g.n
        images = max(1, min(g.n, (1 << 17) / max(1, g.cols * g.pixels)))
        width = (images * g.pixels + 31) / 32 * 32
        count = (g.n + images - 1) / images
    }

    /// The images of chunk `i`.
    func images(_ i: Int) -> Range<Int> { i * images..<min((i + 1) * images, n) }
}
