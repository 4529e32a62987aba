import Testing

@testable import PrecisCore

/// The small formats' codes: hand-checked values from the OCP specifications, and every code
/// converting back to itself. Agreement with ml_dtypes on a million values is Tools/formats-check.py.
@Suite struct MiniFloatTests {
    @Test func e2m1HoldsTheEightValuesOfTheMXSpecification() {
        let positive: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
        #expect((0..<8).map { MiniFloat.e2m1.decode(UInt8($0)) } == positive)
        #expect((8..<16).map { MiniFloat.e2m1.decode(UInt8($0)) } == positive.map { -$0 })
        // Ties go to the even code: 0.25 to 0, 0.75 to 1, 5 to 4; beyond 6 saturates.
        #expect([0.25, 0.75, 2.5, 5, 7, 1e9].map { MiniFloat.e2m1.encode($0) } == [0, 2, 4, 6, 7, 7])
    }

    @Test func e4m3AndE5m2LimitsFollowOFP8() {
        let e4m3 = MiniFloat.e4m3, e5m2 = MiniFloat.e5m2
        #expect(e4m3.max == 448 && e4m3.smallest == 0.001953125 && e5m2.max == 57344)
        #expect(e4m3.encode(464) == 0x7E && e4m3.encode(465).nonzeroBitCount == 7 && e4m3.decode(0x7F).isNaN)
        #expect(e4m3.encode(465, saturating: true) == 0x7E && e4m3.encode(-.infinity, saturating: true) == 0xFE)
        #expect(e5m2.encode(61440) == 0x7C && e5m2.decode(0x7C) == .infinity && e5m2.encode(61439) == 0x7B)
        #expect(e5m2.encode(.infinity, saturating: true) == 0x7B)
    }

    @Test func e8m0IsAPowerOfTwoWithTiesUp() {
        let s = MiniFloat.e8m0
        #expect(s.decode(127) == 1 && s.decode(0) == Float(sign: .plus, exponent: -127, significand: 1))
        #expect([1.4999, 1.5, 3, 0.75].map { s.encode($0) } == [127, 128, 129, 127])
        // float32 subnormals: to the nearer of 2^-127 (bits 0x40_0000) and 2^-126 (0x80_0000); the
        // midpoint 1.5 × 2^-127 (0x60_0000) goes up, as 1.5 does.
        let subnormals: [UInt32] = [0x1, 0x40_0000, 0x40_0001, 0x5F_FFFF, 0x60_0000, 0x7F_FFFF]
        #expect(subnormals.map { s.encode(Float(bitPattern: $0)) } == [0, 0, 0, 0, 1, 1])
        #expect([0, -1, .infinity, .nan].map { s.encode($0) } == [0xFF, 0xFF, 0xFF, 0xFF] && s.decode(0xFF).isNaN)
    }

    @Test(arguments: MiniFloat.all)
    func everyCodeConvertsBackToItself(_ f: MiniFloat) {
        let codes = (0..<(1 << f.bits)).map(UInt8.init).filter { !f.decode($0).isNaN }
        #expect(codes.filter { f.encode(f.decode($0)) != $0 }.isEmpty)
        let nanCodes = ["e4m3": 2, "e5m2": 6, "e8m0": 1][f.name, default: 0]
        #expect(codes.count == (1 << f.bits) - nanCodes)
    }
}
