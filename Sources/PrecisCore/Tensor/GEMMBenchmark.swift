import CKernels
import Dispatch

/// A GEMM shape of the convolution and affine paths, for benchmarks: `C (m×n) = A (m×k) · B (k×n)`,
/// with `A` stored transposed (`aTb`), or `C = A (m×k) · Bᵀ` for `B (n×k)` (`abT`, the weight
/// gradient of a convolution: dot products over the output pixels). A convolution runs one such
/// GEMM per chunk of images (`chunks` of them, split over the cores, each on cache-resident
/// operands); an affine layer runs one GEMM over the batch, split over the cores.
public struct GEMMShape: Sendable, CustomStringConvertible {
    public enum Form: String, Sendable { case ab, aTb, abT }
    public var m, n, k: Int
    public var form: Form
    public var chunks: Int
    /// Whether a convolution runs it (`precis bench --gemm` takes its geometric mean over these shapes).
    public var isConvolution: Bool
    public var label: String

    public init(_ label: String, m: Int, n: Int, k: Int, form: Form = .ab, chunks: Int = 1, isConvolution: Bool = false)
    {
        (self.label, self.m, self.n, self.k, self.form, self.chunks, self.isConvolution) = (
            label, m, n, k, form, chunks, isConvolution
        )
    }

    public var description: String {
        "\(label) \(m)x\(n)x\(k)\(form == .ab ? "" : " " + form.rawValue)\(chunks > 1 ? " x\(chunks)" : "")"
    }

    /// The forward and backward GEMMs of every convolution and affine layer of `spec` at `batch`
    /// in float32, as the layers call them (the first layer computes no input gradient).
    public static func of(_ spec: ModelSpec, batch: Int) throws -> [GEMMShape] {
        var out: [GEMMShape] = []
        for layer in try spec.geometry() {
            guard let gemm = layer.gemm else { continue }
            let (name, f) = (layer.name, gemm.channels)
            guard var g = layer.window else {
                out += [
                    GEMMShape("\(name) fwd", m: batch, n: f, k: gemm.length),
                    GEMMShape("\(name) dW", m: gemm.length, n: f, k: batch, form: .aTb),
                    GEMMShape("\(name) dx", m: batch, n: gemm.length, k: f),
                ]
                continue
            }
            g.n = batch
            let plan = ConvPlan(g, outputs: f, shifted: g.stride == 1)
            out += [
                GEMMShape("\(name) fwd", m: f, n: plan.columns, k: g.cols, chunks: plan.count, isConvolution: true),
                GEMMShape(
                    "\(name) dW", m: f, n: g.cols, k: plan.columns, form: .abT, chunks: plan.count,
                    isConvolution: true),
            ]
            if layer.index > 0 {
                out.append(
                    plan.shifted
                        ? GEMMShape(
                            "\(name) dx", m: g.c, n: plan.planeSize, k: f * g.fh * g.fw, chunks: plan.count,
                            isConvolution: true)
                        : GEMMShape(
                            "\(name) dx", m: g.cols, n: plan.columns, k: f, form: .aTb, chunks: plan.count,
                            isConvolution: true))
            }
        }
        return out
    }
}

/// Median GFLOP/s (2·m·n·k per GEMM, times `chunks`) of `runs` timed runs of this shape in `T`.
@_specialize(where T == Float)
public func gemmGFLOPS<T: NetworkScalar>(_ s: GEMMShape, runs: Int, as: T.Type = T.self) -> Double {
    let a = [T](repeating: 1, count: s.m * s.k), b = [T](repeating: 0.5, count: s.k * s.n)
    let bRows = s.form == .abT ? (0..<s.n).map { $0 * s.k } : (0..<s.k).map { $0 * s.n }
    func run(_ c: UnsafeMutablePointer<T>, parallel: Bool) {
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                switch s.form {
                case .ab, .aTb:
                    gemm(
                        s.m, s.n, s.k, ap.baseAddress!, s.form == .aTb ? s.m : s.k, transA: s.form == .aTb,
                        bp.baseAddress!, s.n, c, s.n, parallel: parallel)
                case .abT:
                    gemmABt(s.m, s.n, s.k, ap.baseAddress!, s.k, bp.baseAddress!, bRows, c, s.n, parallel: parallel)
                }
            }
        }
    }
    var times: [Double] = []
    for r in 0...runs {
        let start = DispatchTime.now().uptimeNanoseconds
        if s.chunks == 1 {
            var c = [T](repeating: 0, count: s.m * s.n)
            c.withUnsafeMutableBufferPointer { run($0.baseAddress!, parallel: true) }
        } else {
            parallelChunks(s.chunks, work: s.chunks * s.m * s.n * s.k) { chunks in
                var c = [T](repeating: 0, count: s.m * s.n)
                c.withUnsafeMutableBufferPointer { c in
                    for _ in chunks { run(c.baseAddress!, parallel: false) }
                }
            }
        }
        if r > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    return 2 * Double(s.chunks * s.m * s.n * s.k) / median(times) / 1e9
}

extension GEMMShape {
    /// The uint8 × int8 GEMMs of `spec`'s integer inference at `batch`: per image, a convolution's
    /// output pixels (rows) by its filters over the window taps (`chunks` = images, split over the
    /// cores); an affine layer's batch by its units, one call.
    public static func int8(_ spec: ModelSpec, batch: Int) throws -> [GEMMShape] {
        try spec.geometry().compactMap { layer in
            guard let gemm = layer.gemm else { return nil }
            guard let g = layer.window else {
                return GEMMShape("\(layer.name) fwd", m: batch, n: gemm.channels, k: gemm.length)
            }
            return GEMMShape(
                "\(layer.name) fwd", m: g.pixels, n: gemm.channels, k: g.cols, chunks: batch, isConvolution: true)
        }
    }
}

/// Median GOP/s (2·m·n·k integer operations per GEMM, times `chunks`) of `runs` timed runs of the
/// packed uint8 × int8 kernel on this shape, as integer inference calls it: B packed once, A rows
/// padded to a multiple of 4, chunks split over the cores.
public func int8GEMMGOPS(_ s: GEMMShape, runs: Int, portable: Bool = false) -> Double {
    let lda = (s.k + 3) / 4 * 4
    let a = (0..<(s.m * lda)).map { UInt8(truncatingIfNeeded: $0 &* 31) },
        b = (0..<(s.k * s.n)).map { Int8(truncatingIfNeeded: $0 &* 17) }
    var packed = [Int8](repeating: 0, count: precis_pack_s8_size(Int32(s.k), Int32(s.n)))
    precis_pack_s8(Int32(s.k), Int32(s.n), b, Int32(s.n), &packed)
    var times: [Double] = []
    for r in 0...runs {
        let start = DispatchTime.now().uptimeNanoseconds
        parallelChunks(s.chunks, work: s.chunks * s.m * s.n * s.k) { chunks in
            var c = [Int32](repeating: 0, count: s.m * s.n)
            for _ in chunks {
                precis_gemm_u8s8(
                    Int32(s.m), Int32(s.n), Int32(s.k), a, Int32(lda), packed, &c, Int32(s.n), portable ? 1 : 0)
            }
        }
        if r > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    return 2 * Double(s.chunks * s.m * s.n * s.k) / median(times) / 1e9
}

/// The machine's peak rates on every core at once, measured in the same run as the GEMMs they
/// bound: float32 fused multiply-adds (GFLOP/s) and uint8 × int8 VNNI multiply-adds (GOP/s), each
/// the median of `runs` timed runs of register-only chains; nil without AVX-512 VNNI.
public func peakRates(runs: Int) -> (float32GFLOPS: Double, int8GOPS: Double, cores: Int)? {
    guard precis_peak_kernels() != 0 else { return nil }
    let iterations = 2_000_000
    func rate(_ operations: Double, _ body: @escaping (Int) -> Void) -> Double {
        var times: [Double] = []
        for r in 0...runs {
            let start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: availableCores) { body($0) }
            if r > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        return operations * Double(availableCores * iterations) / median(times) / 1e9
    }
    let sink = UnsafeMutablePointer<Float>.allocate(capacity: availableCores)
    defer { sink.deallocate() }
    let fma = rate(384) { sink[$0] = precis_fma_chains(iterations, 0.5 + Float($0)) }
    let vnni = rate(1_536) { sink[$0] = Float(precis_vnni_chains(iterations, Int32($0 + 1))) }
    return (fma, vnni, availableCores)
}
