import Dispatch

/// A GEMM shape of the convolution and affine paths, for benchmarks: `C (m×n) = A (m×k) · B (k×n)`,
/// with `A` stored transposed (`aTb`), or `C = A (m×k) · Bᵀ` for `B (n×k)` (`abT`, the weight
/// gradient of a convolution: dot products over the output pixels).
public struct GEMMShape: Sendable, CustomStringConvertible {
    public enum Form: String, Sendable { case ab, aTb, abT }
    public var m, n, k: Int
    public var form: Form
    public var label: String

    public init(_ label: String, m: Int, n: Int, k: Int, form: Form = .ab) {
        (self.label, self.m, self.n, self.k, self.form) = (label, m, n, k, form)
    }

    public var description: String { "\(label) \(m)x\(n)x\(k)\(form == .ab ? "" : " " + form.rawValue)" }

    /// The forward and backward GEMMs of every convolution and affine layer of `spec` at `batch`,
    /// as the layers call them (a convolution's forward and input gradient run chunk by chunk, each
    /// chunk a slice of `n`; here each is one call over the whole batch).
    public static func of(_ spec: ModelSpec, batch: Int) throws -> [GEMMShape] {
        let shapes = try spec.shapes()
        var out: [GEMMShape] = []
        for (i, (name, layer)) in zip(spec.layerNames, spec.layers).enumerated() {
            let inShape = i == 0 ? spec.inputShape : shapes[i - 1]
            switch layer {
            case let .convolution(f, k, _, _):
                let pixels = batch * shapes[i][1] * shapes[i][2], taps = inShape[0] * k * k
                out += [GEMMShape("\(name) fwd", m: f, n: pixels, k: taps), GEMMShape("\(name) dW", m: f, n: taps, k: pixels, form: .abT)]
                if i > 0 { out.append(GEMMShape("\(name) dx", m: taps, n: pixels, k: f, form: .aTb)) }
            case let .affine(u):
                let fin = inShape.reduce(1, *)
                out += [GEMMShape("\(name) fwd", m: batch, n: u, k: fin), GEMMShape("\(name) dW", m: fin, n: u, k: batch, form: .aTb),
                        GEMMShape("\(name) dx", m: batch, n: fin, k: u)]
            default: break
            }
        }
        return out
    }
}

/// Median GFLOP/s (2·m·n·k per call) of `runs` timed GEMM calls on this shape in `T`.
@_specialize(where T == Float)
public func gemmGFLOPS<T: NetworkScalar>(_ s: GEMMShape, runs: Int, as: T.Type = T.self) -> Double {
    let a = [T](repeating: 1, count: s.m * s.k), b = [T](repeating: 0.5, count: s.k * s.n)
    var c = [T](repeating: 0, count: s.m * s.n)
    var times: [Double] = []
    for r in 0...runs {
        let start = DispatchTime.now().uptimeNanoseconds
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    switch s.form {
                    case .ab, .aTb:
                        gemm(s.m, s.n, s.k, ap.baseAddress!, s.form == .aTb ? s.m : s.k, transA: s.form == .aTb, bp.baseAddress!, s.n, cp.baseAddress!, s.n)
                    case .abT:
                        gemmABt(s.m, s.n, s.k, ap.baseAddress!, s.k, bp.baseAddress!, (0..<s.n).map { $0 * s.k }, cp.baseAddress!, s.n)
                    }
                }
            }
        }
        if r > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    return 2 * Double(s.m * s.n * s.k) / times.sorted()[times.count / 2] / 1e9
}

/// Median GOP/s (2·m·n·k integer operations per call) of `runs` int8 GEMM calls on this shape
/// (the form is ignored: the int8 kernel takes row-major operands).
public func int8GEMMGOPS(_ s: GEMMShape, runs: Int, portable: Bool = false) -> Double {
    let a = (0..<(s.m * s.k)).map { Int8(truncatingIfNeeded: $0 &* 31) }, b = (0..<(s.k * s.n)).map { Int8(truncatingIfNeeded: $0 &* 17) }
    var times: [Double] = []
    for r in 0...runs {
        let start = DispatchTime.now().uptimeNanoseconds
        _ = gemmInt8(s.m, s.n, s.k, a, b, portable: portable)
        if r > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    return 2 * Double(s.m * s.n * s.k) / times.sorted()[times.count / 2] / 1e9
}
