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
        for i in 0..<m { for j in 0..<n { for p in 0..<k { want[i * n + j] += Int32(a[i * k + p]) * Int32(b[p * n + j]) } } }
        #expect(gemmU8S8(m, n, k, a, b, portable: true) == want)
        #expect(gemmU8S8(m, n, k, a, b) == want, "path \(int8GEMMPath)")
    }
}
