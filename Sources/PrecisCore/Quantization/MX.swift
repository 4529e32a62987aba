/// OCP Microscaling (MX v1.0) blocks: `size` values (32 in the specification) share one E8M0 scale
/// 2^e, and each value is stored as an element code of `element` (E4M3, E5M2, E3M2, E2M3 or E2M1).
public struct MXBlockFormat: Sendable, Equatable {
    public let element: MiniFloat
    public let size: Int

    public init(element: MiniFloat, size: Int = 32) { (self.element, self.size) = (element, size) }

    /// The exponent of the element format's largest normal value (emax_elem in the specification):
    /// 8 for E4M3, 15 for E5M2, 4 for E3M2, 2 for E2M3 and E2M1.
    public var elementMaxExponent: Int { Int(element.max.exponent) }

    /// Bits per value, the shared scale included: 8.25 for MXFP8, 6.25 for MXFP6, 4.25 for MXFP4.
    public var bitsPerValue: Double { Double(element.bits) + 8 / Double(size) }

    /// One block of values as the specification converts it: the shared exponent is
    /// floor(log2(amax)) − emax_elem, clamped to E8M0's range 2^−127...2^127; every value is divided
    /// by the scale and rounded to the element format, to nearest even, normal values beyond its
    /// largest clamped to it. A block holding a NaN gets the NaN scale; an all-zero block the smallest
    /// scale and zero codes.
    public func quantize(_ values: ArraySlice<Float>) -> (scale: UInt8, codes: [UInt8]) {
        if values.contains(where: \.isNaN) { return (0xFF, values.map { _ in 0 }) }
        let amax = values.reduce(Float(0)) { Swift.max($0, $1.magnitude) }
        guard amax > 0 else { return (0, values.map { _ in 0 }) }
        let e = amax.isInfinite ? 127 : Swift.min(127, Swift.max(-127, Int(amax.exponent) - elementMaxExponent))
        let x = Float(sign: .plus, exponent: e, significand: 1)
        return (UInt8(e + 127), values.map { element.encode($0 / x, saturating: true) })
    }

    /// The values a block's scale and codes stand for.
    public func dequantize(scale: UInt8, codes: [UInt8]) -> [Float] {
        let x = MiniFloat.e8m0.decode(scale)
        return codes.map { element.decode($0) * x }
    }
}
