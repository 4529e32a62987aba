/// Convolution by im2col + GEMM. `W: (FN, C, FH, FW)`, `b: (FN)`; input `(N, C, H, W)`, output
/// `(N, FN, OH, OW)` with `OH = (H + 2·pad - FH) / stride + 1`.
public final class Convolution<T: NetworkScalar>: Layer {
    public let W: Parameter<T>
    public let b: Parameter<T>
    public let stride: Int
    public let pad: Int
    private var g: Window?
    private var colT: [T] = []  // (C·FH·FW, N·OH·OW)

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
        colT = im2colT(x.data, g)
        let wt = transposed(W.value.data, rows: fn, cols: g.cols)  // (C·FH·FW, FN)
        var rows: [T] = filledArray(g.rows * fn) { os in  // (N·OH·OW, FN) = colᵀ · Wᵀ
            colT.withUnsafeBufferPointer { cs in
                wt.withUnsafeBufferPointer { ws in
                    gemm(g.rows, fn, g.cols, cs.baseAddress!, g.rows, transA: true, ws.baseAddress!, fn, os.baseAddress!, fn)
                }
            }
        }
        storage.round(&rows)
        self.g = g
        if !isTraining { colT = [] }
        return Tensor(shape: [g.n, fn, g.oh, g.ow], data: pixelsToPlanes(rows, n: g.n, pixels: g.oh * g.ow, channels: fn, bias: b.value.data))
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        guard let g, !colT.isEmpty else { preconditionFailure("Convolution.backward needs a training forward") }
        let fn = W.value.shape[0]
        let d = planesToPixels(dout.data, n: g.n, pixels: g.oh * g.ow, channels: fn)  // (N·OH·OW, FN)
        var dwt: [T] = [], dcol: [T] = []
        d.withUnsafeBufferPointer { ds in
            b.grad = Tensor(shape: [fn], data: columnSums(ds, rows: g.rows, cols: fn))
            dwt = filledArray(g.cols * fn) { dw in  // (C·FH·FW, FN)
                colT.withUnsafeBufferPointer { cs in
                    gemm(g.cols, fn, g.rows, cs.baseAddress!, g.rows, ds.baseAddress!, fn, dw.baseAddress!, fn)
                }
            }
            dcol = filledArray(g.rows * g.cols) { dc in  // (N·OH·OW, C·FH·FW)
                W.value.data.withUnsafeBufferPointer { ws in
                    gemm(g.rows, g.cols, fn, ds.baseAddress!, fn, ws.baseAddress!, g.cols, dc.baseAddress!, g.cols)
                }
            }
        }
        W.grad = Tensor(shape: W.value.shape, data: transposed(dwt, rows: g.cols, cols: fn))
        return Tensor(shape: [g.n, g.c, g.h, g.w], data: col2im(dcol, g))
    }
}

/// `(N·P, C)` pixel rows to `(N, C, P)` planes, adding `bias[c]` to channel `c`.
func pixelsToPlanes<T: NetworkScalar>(_ x: [T], n: Int, pixels: Int, channels: Int, bias: [T]) -> [T] {
    filledArray(x.count) { ys in
        x.withUnsafeBufferPointer { xs in
            for i in 0..<n {
                for c in 0..<channels {
                    let dst = (i * channels + c) * pixels, bc = bias[c]
                    for p in 0..<pixels { ys[dst + p] = xs[(i * pixels + p) * channels + c] + bc }
                }
            }
        }
    }
}

/// `(N, C, P)` planes to `(N·P, C)` pixel rows.
func planesToPixels<T: NetworkScalar>(_ x: [T], n: Int, pixels: Int, channels: Int) -> [T] {
    filledArray(x.count) { ys in
        x.withUnsafeBufferPointer { xs in
            for i in 0..<n {
                for c in 0..<channels {
                    let src = (i * channels + c) * pixels
                    for p in 0..<pixels { ys[(i * pixels + p) * channels + c] = xs[src + p] }
                }
            }
        }
    }
}
