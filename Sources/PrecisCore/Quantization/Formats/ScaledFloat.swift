/// Float elements with one float32 scale per tensor, `amax / max` (OFP8 E4M3 or E5M2 with a tensor
/// scale): every value is divided by the scale and rounded to the element, to nearest even,
/// saturating or not.
public struct ScaledFloat: BlockFormat {
    public let element: MiniFloat
    public let saturating: Bool

    public var elementBits: Int { element.bits }

    public func blockSize(length: Int) -> Int? { nil }

    public var storage: BlockStorage { BlockStorage(scales: .tensor) }

    public func quantize(_ values: [Float], into t: inout FormatTensor) {
        let amax = values.reduce(Float(0)) { max($0, $1.magnitude) }
        let s = amax > 0 ? amax / element.max : 1
        t.scales = [s]
        t.codes = values.map { element.encode($0 / s, saturating: saturating) }
    }

    public func code(_ x: Float, block b: Int, in t: FormatTensor) -> UInt8 {
        element.encode(x / t.scales[0], saturating: saturating)
    }

    public func value(_ code: UInt8, block b: Int, in t: FormatTensor) -> Float { element.decode(code) * t.scales[0] }

    public func isFiniteCode(_ code: UInt8) -> Bool { element.decode(code).isFinite }

    public var text: String {
        "\(element.name.uppercased()) with one float32 scale per tensor (amax / \(element.max)), "
            + (saturating ? "saturating" : "not saturating")
    }

    /// The tensor scale comes from the largest magnitude calibration saw.
    public var inputNeedsCalibration: Bool { true }

    public func inputRounding(_ calibration: InputCalibration?) -> OperandRounding? {
        guard case .amax(let amax)? = calibration else { return nil }
        return .scaled(GridRounder(element, saturating: saturating), scale: amax / element.max)
    }
}
