import CKernels
import Testing

@testable import PrecisCore

@Suite struct Int8GEMMTests {
    /// The packed uint8 × int8 kernel of integer inference: every tile shape (16, 8 and 4 rows;
    /// 1, 2, 3 and 4 panels), partial rows, columns and k, and the extreme codes.
    @Test(arguments: [(1, 1, 1), (17, 16, 9), (9, 32, 13), (5, 50, 144), (7, 64, 288), (33, 10, 1024), (3, 48, 7)])
    func packedUnsignedKernelEqualsTheNaiveProduct(m: Int, n: Int, k: Int) {
        var rng = RandomSource(seed: UInt64(m * 7919 + n * 31 + k))
        let a = (0..<(m * k)).map { i in i % 7 == 0 ? UInt8.max : UInt8(truncatingIfNeeded: rng.next()) }
        let b = (0..<(k * n)).map { i in i % 5 == 0 ? Int8.min : Int8(truncatingIfNeeded: rng.next()) }
        var want = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n { for p in 0..<k { want[i * n + j] += Int32(a[i * k + p]) * Int32(b[p * n + j]) } }
        }
        #expect(gemmU8S8(m, n, k, a, b, portable: true) == want)
        #expect(gemmU8S8(m, n, k, a, b) == want, "path \(int8GEMMPath)")
    }

    /// Rows of A read as runs `stride` apart (window rows over a padded image), rows overlapping.
    @Test(arguments: [(7, 16, 3, 12, 4, 40), (28, 16, 3, 48, 16, 480), (14, 32, 3, 96, 32, 512), (5, 64, 2, 8, 1, 9)])
    func segmentedRowsEqualTheNaiveProduct(m: Int, n: Int, segments: Int, kseg: Int, lda: Int, stride: Int) {
        var rng = RandomSource(seed: UInt64(m * 31 + n + kseg))
        let a = (0..<((m - 1) * lda + (segments - 1) * stride + kseg)).map { i in
            i % 11 == 0 ? UInt8.max : UInt8(truncatingIfNeeded: rng.next())
        }
        let k = segments * kseg
        let b = (0..<(k * n)).map { i in i % 5 == 0 ? Int8.min : Int8(truncatingIfNeeded: rng.next()) }
        var want = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                for g in 0..<segments {
                    for q in 0..<kseg {
                        want[i * n + j] += Int32(a[i * lda + g * stride + q]) * Int32(b[(g * kseg + q) * n + j])
                    }
                }
            }
        }
        var packed = [Int8](repeating: 0, count: precis_pack_s8_size(Int32(k), Int32(n)))
        precis_pack_s8(Int32(k), Int32(n), b, Int32(n), &packed)
        for portable in [1, 0] {
            var c = [Int32](repeating: 0, count: m * n)
            precis_gemm_u8s8_segments(
                Int32(m), Int32(n), Int32(segments), Int32(kseg), a, Int32(lda), Int32(stride), packed, &c, Int32(n),
                Int32(portable))
            #expect(c == want, "portable \(portable), path \(int8GEMMPath)")
        }
    }
}
