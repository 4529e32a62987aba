/// Fully connected layer `out = x·W + b`; input of any rank is flattened to `(N, in)`.
/// `W: (in, out)`, `b: (out)`, output `(N, out)`.
public final class Affine<T: NetworkScalar>: Layer, RoundedInput {
    public let W: Parameter<T>
    public let b: Parameter<T>
    private var x: Tensor<T>?  // (N, in)
    private var inputShape: [Int] = []

    /// Rounding applied to the GEMM result before the bias is added (the `-acc32` modes).
    public let storage: StorageFormat
    /// Rounding of the input `(N, in)` to a number format, along `in` (Float only).
    public internal(set) var inputRounding: OperandRounding?

    public init(W: Tensor<T>, b: Tensor<T>, storage: StorageFormat = .native, inputRounding: OperandRounding? = nil) {
        precondition(W.shape.count == 2 && b.shape == [W.shape[1]], "affine W (in,out), b (out)")
        precondition(inputRounding == nil || T.roundsInputs, "input rounding runs on Float")
        self.W = Parameter("W", W)
        self.b = Parameter("b", b)
        self.storage = storage
        self.inputRounding = inputRounding
    }

    public var parameters: [Parameter<T>] { [W, b] }

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        let (n, fin, fout) = (x.shape[0], W.value.shape[0], W.value.shape[1])
        precondition(x.count == n * fin, "affine expects \(fin) inputs per image, got \(x.count / max(n, 1))")
        var out = [T](repeating: 0, count: n * fout), input = x.data
        if let inputRounding {
            input.withUnsafeMutableBufferPointer { p in
                T.roundInput(p.baseAddress!, .rows(n, fin), by: inputRounding)
            }
        }
        if storage == .native && T.affineKernel {
            // The same chains as the GEMM's, with the bias added as each row is written (C, AVX-512).
            input.withUnsafeBufferPointer { xs in
                W.value.data.withUnsafeBufferPointer { ws in
                    b.value.data.withUnsafeBufferPointer { bs in
                        out.withUnsafeMutableBufferPointer { os in
                            parallelChunks(n, work: n * fin * fout) { rows in
                                T.affine(
                                    xs.baseAddress! + rows.lowerBound * fin, rows: rows.count, fin: fin,
                                    rowStride: fin, kStride: 1, ws.baseAddress!, fout: fout, bias: bs.baseAddress!,
                                    os.baseAddress! + rows.lowerBound * fout)
                            }
                        }
                    }
                }
            }
        } else {
            input.withUnsafeBufferPointer { xs in
                W.value.data.withUnsafeBufferPointer { ws in
                    out.withUnsafeMutableBufferPointer { os in
                        gemm(n, fout, fin, xs.baseAddress!, fin, ws.baseAddress!, fout, os.baseAddress!, fout)
                    }
                }
            }
            storage.round(&out)
            for i in 0..<n { for j in 0..<fout { out[i * fout + j] += b.value.data[j] } }
        }
        inputShape = x.shape
        // The input as the product used it, so that dW is taken against the rounded values.
        self.x = isTraining ? Tensor(shape: [n, fin], data: input) : nil
        return Tensor(shape: [n, fout], data: out)
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        guard let x else { preconditionFailure("Affine.backward needs a training forward") }
        let (n, fin, fout) = (x.shape[0], W.value.shape[0], W.value.shape[1])
        let wt = transposed(W.value.data, rows: fin, cols: fout)  // (out, in)
        var dx = [T](repeating: 0, count: n * fin)
        var dw = [T](repeating: 0, count: fin * fout)
        dout.data.withUnsafeBufferPointer { ds in
            b.grad = Tensor(shape: [fout], data: columnSums(ds, rows: n, cols: fout))
            guard !T.affineKernel else {
                // The same chains as the GEMMs' in C: dx = dout · Wᵀ, and dW = xᵀ · dout with xᵀ read in place.
                return x.data.withUnsafeBufferPointer { xs in
                    wt.withUnsafeBufferPointer { ws in
                        dx.withUnsafeMutableBufferPointer { dxs in
                            parallelChunks(n, work: n * fin * fout) { rows in
                                T.affine(
                                    ds.baseAddress! + rows.lowerBound * fout, rows: rows.count, fin: fout,
                                    rowStride: fout, kStride: 1, ws.baseAddress!, fout: fin, bias: nil,
                                    dxs.baseAddress! + rows.lowerBound * fin)
                            }
                        }
                    }
                    dw.withUnsafeMutableBufferPointer { dws in
                        parallelChunks(fin, work: n * fin * fout) { rows in
                            T.affine(
                                xs.baseAddress! + rows.lowerBound, rows: rows.count, fin: n, rowStride: 1,
                                kStride: fin, ds.baseAddress!, fout: fout, bias: nil,
                                dws.baseAddress! + rows.lowerBound * fout)
                        }
                    }
                }
            }
            wt.withUnsafeBufferPointer { ws in
                dx.withUnsafeMutableBufferPointer { dxs in
                    gemm(n, fin, fout, ds.baseAddress!, fout, ws.baseAddress!, fin, dxs.baseAddress!, fin)
                }
            }
            x.data.withUnsafeBufferPointer { xs in
                dw.withUnsafeMutableBufferPointer { dws in
                    gemm(
                        fin, fout, n, xs.baseAddress!, fin, transA: true, ds.baseAddress!, fout, dws.baseAddress!, fout)
                }
            }
        }
        W.grad = Tensor(shape: [fin, fout], data: dw)
        return Tensor(shape: inputShape, data: dx)
    }
}
