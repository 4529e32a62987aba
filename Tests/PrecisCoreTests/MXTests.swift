import Testing

@testable import PrecisCore

/// MX blocks worked out by hand from the OCP MX v1.0 conversion rule.
@Suite struct MXTests {
    @Test func anMXFP4BlockWorkedByHand() {
        let mxfp4 = MXBlockFormat(element: .e2m1)
        // amax 6.5: floor(log2 6.5) = 2, minus E2M1's emax 2 gives shared exponent 0 (scale 1, code 127).
        // 6.5 clamps to 6 (0x7); 3 is 0x5; -1 is 0xA; 0.5 is 0x1; 0.1 rounds to 0; 2.5 ties to the even 2
        // (0x4); 0.75 ties to the even 1 (0x2). The other 25 values are zero.
        let first: [Float] = [6.5, 3, -1, 0.5, 0.1, 2.5, 0.75] + Array(repeating: 0, count: 25)
        let (s1, c1) = mxfp4.quantize(first[...])
        #expect(
            s1 == 127 && Array(c1.prefix(7)) == [0x7, 0x5, 0xA, 0x1, 0x0, 0x4, 0x2]
                && c1.dropFirst(7).allSatisfy { $0 == 0 })
        // amax 40: floor(log2 40) = 5, shared exponent 3 (scale 8, code 130). 40/8 = 5 ties to the even
        // 4 (0x6); 12/8 = 1.5 (0x3); -3/8 = -0.375 rounds to -0.5 (0x9).
        let second: [Float] = [40, 12, -3] + Array(repeating: 0, count: 29)
        let (s2, c2) = mxfp4.quantize(second[...])
        #expect(s2 == 130 && Array(c2.prefix(3)) == [0x6, 0x3, 0x9])
        #expect(Array(mxfp4.dequantize(scale: s2, codes: c2).prefix(3)) == [32, 12, -4])
        #expect(mxfp4.bitsPerValue == 4.25 && MXBlockFormat(element: .e4m3).bitsPerValue == 8.25)
    }

    @Test func elementExponentsAndEdgeBlocks() {
        #expect(MiniFloat.all.dropLast().map { MXBlockFormat(element: $0).elementMaxExponent } == [8, 15, 4, 2, 2])
        let mxfp8 = MXBlockFormat(element: .e4m3)
        #expect(mxfp8.quantize([0, 0, 0][...]) == (0, [0, 0, 0]))
        #expect(mxfp8.quantize([1, .nan][...]).scale == 0xFF)
        // A tiny block clamps to the smallest scale, 2^-127.
        #expect(mxfp8.quantize([Float.leastNonzeroMagnitude][...]).scale == 0)
    }
}
