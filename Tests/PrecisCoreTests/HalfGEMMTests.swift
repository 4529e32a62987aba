import CKernels
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
}
