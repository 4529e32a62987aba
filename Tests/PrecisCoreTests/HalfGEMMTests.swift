import CKernels
import Foundation
import Testing

@testable import PrecisCore

/// The strict-half GEMMs against a scalar reference written from their definition: every product
/// added in float32 and rounded to half at once (half products are exact in float32), a chain per
/// element in `gemm`, 16 lanes then a balanced pairwise tree in `gemmABt`. Bit for bit, with
/// subnormals, overflows to infinity and sizes that are not multiples of the blocking.
@Suite struct HalfGEMMTests {
    /// `count` halves spread over 2⁻²⁰ to 2¹² in magnitude, both signs.
    static func values(_ count: Int, seed: UInt64) -> [Float16] {
        var rng = RandomSource(seed: seed)
        return (0..<count).map { _ in
            Float16(Float(rng.normal()) * Float.pow(2, Float(Int(rng.uniform() * 32) - 20)))
        }
    }

    static func same(_ x: Float16, _ y: Float16) -> Bool { x.bitPattern == y.bitPattern || (x.isNaN && y.isNaN) }

    @Test(arguments: [(13, 45, 37), (8, 32, 16), (1, 70, 200), (21, 7, 3)])
    func gemmMatchesTheScalarChain(_ m: Int, _ n: Int, _ k: Int) {
        let a = Self.values(m * k, seed: 1), b = Self.values(k * n, seed: 2)
        var c = [Float16](repeating: 7, count: m * n)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer {
                    gemm(m, n, k, ap.baseAddress!, k, bp.baseAddress!, n, $0.baseAddress!, n)
                }
            }
        }
        var infinities = 0
        for i in 0..<m {
            for j in 0..<n {
                var want = Float16(0)
                for p in 0..<k { want = Float16(Float(a[i * k + p]) * Float(b[p * n + j]) + Float(want)) }
                if want.isInfinite { infinities += 1 }
                #expect(Self.same(c[i * n + j], want), "m \(m) n \(n) k \(k) at \(i),\(j): \(c[i * n + j]) not \(want)")
            }
        }
        if k > 30 { #expect(infinities > 0, "some sums overflow half") }
    }

    @Test(arguments: [(7, 6, 48), (4, 4, 16), (9, 13, 160)])
    func gemmABtMatchesTheLaneTree(_ m: Int, _ n: Int, _ len: Int) {
        let a = Self.values(m * len, seed: 3), b = Self.values(n * len, seed: 4)
        var c = [Float16](repeating: 7, count: m * n)
        let rows = (0..<n).map { $0 * len }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer {
                    gemmABt(m, n, len, ap.baseAddress!, len, bp.baseAddress!, rows, $0.baseAddress!, n)
                }
            }
        }
        for i in 0..<m {
            for j in 0..<n {
                var lanes = [Float16](repeating: 0, count: 16)
                for o in stride(from: 0, to: len, by: 16) {
                    for l in 0..<16 {
                        lanes[l] = Float16(Float(a[i * len + o + l]) * Float(b[j * len + o + l]) + Float(lanes[l]))
                    }
                }
                while lanes.count > 1 {
                    lanes = stride(from: 0, to: lanes.count, by: 2).map {
                        Float16(Float(lanes[$0]) + Float(lanes[$0 + 1]))
                    }
                }
                #expect(Self.same(c[i * n + j], lanes[0]), "m \(m) n \(n) len \(len) at \(i),\(j)")
            }
        }
    }

    /// The convolution epilogue of a strict half network in C (bias, ReLU, 2×2 max pooling) against
    /// Swift's `Float16` arithmetic and `larger`, with NaN, zeros of both signs and ties, rows whose
    /// width is not a multiple of 8, with and without pooling.
    @Test(arguments: [(false, false), (true, false), (true, true)])
    func convolutionEpilogueMatchesFloat16Arithmetic(_ relu: Bool, _ pooled: Bool) throws {
        guard halfKernels else { return }
        let (channels, images, oh, ow, rowWidth) = (3, 2, 6, 13, 17), bandRows = oh + 1
        let columns = images * bandRows * rowWidth
        var out = Self.values(channels * columns, seed: 5)
        for i in stride(from: 0, to: out.count, by: 11) { out[i] = [.nan, 0, -0.0, out[i - i % 2]][i % 4] }
        let bias = Self.values(channels, seed: 6), (ph, pw) = pooled ? (oh / 2, ow / 2) : (oh, ow)
        var y = [Float16](repeating: 7, count: images * channels * ph * pw), ran = false
        out.withUnsafeBufferPointer { o in
            bias.withUnsafeBufferPointer { b in
                y.withUnsafeMutableBufferPointer {
                    ran = Float16.finishConvolution(
                        o.baseAddress!, columns: columns, filters: channels, images: images, bandRows: bandRows,
                        rowWidth: rowWidth, oh: ph, ow: pw, bias: b.baseAddress!, relu: relu, pooled: pooled,
                        $0.baseAddress!)
                }
            }
        }
        #expect(ran)
        for j in 0..<images {
            for f in 0..<channels {
                func act(_ oy: Int, _ ox: Int) -> Float16 {
                    let s = out[f * columns + (j * bandRows + oy) * rowWidth + ox] + bias[f]
                    return relu && s <= 0 ? 0 : s
                }
                for oy in 0..<ph {
                    for ox in 0..<pw {
                        let want =
                            pooled
                            ? larger(
                                larger(larger(act(2 * oy, 2 * ox), act(2 * oy, 2 * ox + 1)), act(2 * oy + 1, 2 * ox)),
                                act(2 * oy + 1, 2 * ox + 1))
                            : act(oy, ox)
                        let got = y[((j * channels + f) * ph + oy) * pw + ox]
                        #expect(Self.same(got, want), "image \(j) filter \(f) at \(oy),\(ox): \(got) not \(want)")
                    }
                }
            }
        }
    }

    /// The strict-half optimizer steps in C against the update written out in Swift's `Float16`
    /// arithmetic, operation by operation, over three steps on 37 values (a partial block of 8),
    /// with zeros, subnormals and a NaN among the gradients.
    @Test(arguments: [OptimizerKind.sgd, .momentum, .adam])
    func optimizerStepsMatchFloat16Arithmetic(_ kind: OptimizerKind) {
        guard halfKernels else { return }
        var w = Self.values(37, seed: 7), s1 = [Float16](repeating: 0, count: 37), s2 = s1
        let optimizer = Optimizer<Float16>(kind, learningRate: 0.01)
        let parameter = Parameter("w", Tensor(shape: [37], data: w))
        for step in 1...3 {
            var g = Self.values(37, seed: UInt64(10 + step))
            (g[0], g[1], g[2], g[3]) = (0, -0.0, Float16(bitPattern: 0x0003), step == 3 ? .nan : g[3])
            parameter.grad = Tensor(shape: [37], data: g)
            optimizer.update([parameter])
            let lr = Float16(0.01), mu = Float16(0.9), e = Float16(1e-7)
            let t = Double(step)
            let lrt = Float16(0.01 * (1 - pow(0.999, t)).squareRoot() / (1 - pow(0.9, t)))
            for j in 0..<37 {
                switch kind {
                case .sgd: w[j] -= lr * g[j]
                case .momentum:
                    s1[j] = mu * s1[j] - lr * g[j]
                    w[j] += s1[j]
                default:
                    s1[j] += Float16(0.1) * (g[j] - s1[j])
                    s2[j] += Float16(0.001) * (g[j] * g[j] - s2[j])
                    w[j] -= lrt * s1[j] / (s2[j].squareRoot() + e)
                }
            }
            #expect(zip(parameter.value.data, w).allSatisfy(Self.same), "step \(step)")
        }
    }
}
