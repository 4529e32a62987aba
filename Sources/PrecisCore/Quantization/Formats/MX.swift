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
    /// emax_elem: see `MXElement.maxExponent` (kept, since every block's scale needs it).
    public let elementMaxExponent: Int

    public init(element: MXElement, size: Int = 32) {
        (self.element, self.size, elementMaxExponent) = (element, size, element.maxExponent)
    }

    /// A block of float elements.
    public init(element: MiniFloat, size: Int = 32) { self.init(element: .float(element), size: size) }

    /// Bits per value, the shared scale included: 8.25 for MXFP8 and MXINT8, 6.25 for MXFP6, 4.25 for
    /// MXFP4.
    public var bitsPerValue: Double { Double(element.bits) + 8 / Double(size) }

    /// The shared scale 2^e of a block whose largest magnitude is `amax` (not NaN):
    /// e = floor(log2(amax)) − emax_elem, clamped to E8M0's range −127...127. floor(log2) is the
    /// float32 exponent field; an all-zero block, and float32 subnormals, get the smallest scale.
    @inline(__always)
    func scale(amax: Float) -> Float {
        let field = Int(amax.bitPattern >> 23)
        let e = min(127, max(-127, (amax.isFinite ? field - 127 : 127 + elementMaxExponent) - elementMaxExponent))
        return e == -127 ? 0x1p-127 : Float(bitPattern: UInt32(e + 127) << 23)
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
        let x = scale(amax: amax)
        return (MiniFloat.e8m0.encode(x), values.map { element.encode($0 / x) })
    }

    /// The values a block's scale and codes stand for.
    public func dequantize(scale: UInt8, codes: [UInt8]) -> [Float] {
        let x = MiniFloat.e8m0.decode(scale)
        return codes.map { element.decode($0) * x }
    }
}

extension MXBlockFormat: BlockFormat {
    public var elementBits: Int { element.bits }

    public func blockSize(length: Int) -> Int? { size }

    /// E8M0 block scales (0xFF is NaN), no float scale.
    public var storage: BlockStorage { BlockStorage(blockScale: { $0 != 0xFF }, scales: .none) }

    public func quantize(_ values: [Float], into t: inout FormatTensor) {
        t.forEachBlock(of: values) { block in
            let (scale, codes) = quantize(block)
            t.blockScales.append(scale)
            t.codes += codes
        }
    }

    /// A block with the NaN scale holds zero codes.
    public func code(_ x: Float, block b: Int, in t: FormatTensor) -> UInt8 {
        t.blockScales[b] == 0xFF ? 0 : element.encode(x / MiniFloat.e8m0.decode(t.blockScales[b]))
    }

    public func value(_ code: UInt8, block b: Int, in t: FormatTensor) -> Float {
        element.decode(code) * MiniFloat.e8m0.decode(t.blockScales[b])
    }

    /// Finite float elements; for MXINT8, every code but the unused −128.
    public func isFiniteCode(_ code: UInt8) -> Bool {
        if case .float(let f) = element { return f.decode(code).isFinite }
        return code != 0x80
    }

    public var text: String {
        let name = if case .float(let e) = element { e.name.uppercased() } else { "INT8 (k/64, |k| <= 127)" }
        return "OCP MX v1.0: \(name) elements, one E8M0 scale per \(size) values along the reduction axis"
    }

    /// Block scales come from the values: no calibration.
    public var inputNeedsCalibration: Bool { false }

    public func inputRounding(_ calibration: InputCalibration?) -> OperandRounding? { .mx(self) }
}

extension OperandRounding {
    /// OCP MX v1.0: a shared E8M0 scale 2^(floor(log2 amax) − emax_elem) per block.
    public static func mx(_ format: MXBlockFormat) -> OperandRounding {
        blocks(format.element.rounder, size: format.size) { format.scale(amax: $0) }
    }
}
