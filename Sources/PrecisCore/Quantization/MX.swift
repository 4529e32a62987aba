/// The element of an MX block: a small float, or MXINT8's 8-bit integer.
public enum MXElement: Sendable, Hashable {
    case float(MiniFloat)
    /// Two's complement with an implicit scale of 2^−6: values k/64, |k| ≤ 127 (the symmetric range;
    /// the code −128 is never produced).
    case int8

    /// Bits per element.
    public var bits: Int {
        switch self {
        case .float(let f): return f.bits
        case .int8: return 8
        }
    }

    /// The exponent of the largest power of two the element represents (emax_elem in the
    /// specification): 8 for E4M3, 15 for E5M2, 4 for E3M2, 2 for E2M3 and E2M1, 0 for INT8.
    public var maxExponent: Int {
        switch self {
        case .float(let f): return Int(f.max.exponent)
        case .int8: return 0
        }
    }

    /// The grid elements are rounded to (saturating: the specification clamps normal values).
    public var rounder: GridRounder {
        switch self {
        case .float(let f): return GridRounder(f, saturating: true)
        case .int8: return GridRounder(maxCode: 127, fractionBits: 6)
        }
    }

    /// The code of `x`, already divided by the block's scale.
    func encode(_ x: Float) -> UInt8 {
        switch self {
        case .float(let f): return f.encode(x, saturating: true)
        case .int8: return UInt8(bitPattern: Int8(rounder(x) * 64))
        }
    }

    /// The value of `code`, before the block's scale.
    func decode(_ code: UInt8) -> Float {
        switch self {
        case .float(let f): return f.decode(code)
        case .int8: return Float(Int8(bitPattern: code)) / 64
        }
    }
}

/// OCP Microscaling (MX v1.0) blocks: `size` values (32 in the specification) share one E8M0 scale
/// 2^e, and each value is stored as an element code (E4M3, E5M2, E3M2, E2M3, E2M1 or INT8).
public struct MXBlockFormat: Sendable, Hashable {
    public let element: MXElement
    public let size: Int

    public init(element: MXElement, size: Int = 32) { (self.element, self.size) = (element, size) }

    /// A block of float elements.
    public init(element: MiniFloat, size: Int = 32) { self.init(element: .float(element), size: size) }

    /// emax_elem: see `MXElement.maxExponent`.
    public var elementMaxExponent: Int { element.maxExponent }

    /// Bits per value, the shared scale included: 8.25 for MXFP8 and MXINT8, 6.25 for MXFP6, 4.25 for
    /// MXFP4.
    public var bitsPerValue: Double { Double(element.bits) + 8 / Double(size) }

    /// The shared exponent of a block whose largest magnitude is `amax` (finite, positive):
    /// floor(log2(amax)) − emax_elem, clamped to E8M0's range −127...127.
    @inline(__always)
    func sharedExponent(_ amax: Float) -> Int {
        amax.isInfinite ? 127 : Swift.min(127, Swift.max(-127, Int(amax.exponent) - elementMaxExponent))
    }

    /// One block of values as the specification converts it: the shared exponent is
    /// floor(log2(amax)) − emax_elem, clamped to E8M0's range 2^−127...2^127; every value is divided
    /// by the scale and rounded to the element format, to nearest even, normal values beyond its
    /// largest clamped to it. A block holding a NaN gets the NaN scale; an all-zero block the smallest
    /// scale and zero codes.
    public func quantize(_ values: ArraySlice<Float>) -> (scale: UInt8, codes: [UInt8]) {
        if values.contains(where: \.isNaN) { return (0xFF, values.map { _ in 0 }) }
        let amax = values.reduce(Float(0)) { Swift.max($0, $1.magnitude) }
        guard amax > 0 else { return (0, values.map { _ in 0 }) }
        let e = sharedExponent(amax), x = Float(sign: .plus, exponent: e, significand: 1)
        return (UInt8(e + 127), values.map { element.encode($0 / x) })
    }

    /// The values a block's scale and codes stand for.
    public func dequantize(scale: UInt8, codes: [UInt8]) -> [Float] {
        let x = MiniFloat.e8m0.decode(scale)
        return codes.map { element.decode($0) * x }
    }
}
