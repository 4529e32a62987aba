/// How one GEMM operand (a layer's weights, or its input) is stored.
public enum OperandFormat: Sendable, Hashable {
    /// Float elements with one float32 scale per tensor, `amax / max` (OFP8 with a tensor scale).
    case scaled(MiniFloat, saturating: Bool)
    /// OCP MX v1.0 blocks along the reduction axis.
    case mx(MXBlockFormat)
    /// NVIDIA's NVFP4 (see `NVFP4`).
    case nvfp4
    /// 4-bit integer weights (see `Int4Weights`).
    case int4(Int4Weights)
    /// int8 activations with a calibrated range (uint8 with a zero point, as the default int8 scheme).
    case int8
}

extension OperandFormat {
    /// The format's block type: the one table of the formats' traits. nil for int8, which only
    /// layer inputs take (see `OperandRounding.int8`).
    public var block: (any BlockFormat)? {
        switch self {
        case let .scaled(f, saturating): return ScaledFloat(element: f, saturating: saturating)
        case .mx(let f): return f
        case .nvfp4: return NVFP4()
        case .int4(let w): return w
        case .int8: return nil
        }
    }

    /// Bits of one element code.
    public var elementBits: Int { block?.elementBits ?? 8 }
}

/// A number format the precision report simulates: weights and layer inputs of every convolution and
/// affine layer stored in a format, products and sums in float32, biases in float32.
public struct FormatMode: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let weights: OperandFormat
    /// The inputs' format; nil keeps them in float32 (weight-only quantization).
    public let activations: OperandFormat?

    public var description: String { name }

    init(name: String, weights: OperandFormat, activations: OperandFormat?) {
        (self.name, self.weights, self.activations) = (name, weights, activations)
    }

    /// The mode with its int4 weight ranges chosen by `method` (minmax or mse); other modes as they are.
    public func weightRanges(_ method: CalibrationMethod) -> FormatMode {
        guard case .int4(let w) = weights else { return self }
        return FormatMode(
            name: name, weights: .int4(Int4Weights(group: w.group, zeroPoint: w.zeroPoint, method: method)),
            activations: activations)
    }

    /// Whether the inputs' scale comes from calibration images (a per-tensor scale or range).
    public var needsCalibration: Bool {
        activations.map { $0.block?.inputNeedsCalibration ?? true } ?? false
    }
}
