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

/// How the weights are rounded to a format's grid once its scales are set from the weights.
public enum WeightRounding: String, Sendable, CaseIterable {
    /// Each weight to the nearest value, ties to even.
    case nearest
    /// GPTQ: one column of the reduction axis at a time, each column's rounding error spread over the
    /// columns not yet rounded so that the layer's output on calibration images changes least (see `GPTQ`).
    case gptq
    /// AdaRound: each weight up or down on the grid, learned to keep the layer's output on calibration
    /// images (see `AdaRound`).
    case adaround

    /// How a variant's `rounding` attribute describes it.
    public var text: String {
        switch self {
        case .nearest: return "to nearest, ties to even"
        case .gptq:
            return "GPTQ (Frantar et al. 2022) on the calibration images, the scales set from the weights first, "
                + "damping 0.01 of the mean Hessian diagonal, columns in stored order"
        case .adaround:
            return "AdaRound (Nagel et al. 2020) on the calibration images, the scales set from the weights first: "
                + "each weight its grid value below or above, \(AdaRound.steps) full-batch Adam steps"
        }
    }

    /// What a mode's name ends in: nothing for `nearest`, else `-<name>`.
    public var suffix: String { self == .nearest ? "" : "-\(rawValue)" }
}

/// A number format the precision report simulates: weights and layer inputs of every convolution and
/// affine layer stored in a format, products and sums in float32, biases in float32.
public struct FormatMode: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let weights: OperandFormat
    /// The inputs' format; nil keeps them in float32 (weight-only quantization).
    public let activations: OperandFormat?
    /// How the weights are rounded; the name ends in its `suffix`.
    public let rounding: WeightRounding
    /// Whether the network is equalized across layers first (see `Equalization`); the name then holds
    /// `-cle` before the rounding's suffix.
    public let equalized: Bool

    public var description: String { name }

    init(
        name: String, weights: OperandFormat, activations: OperandFormat?, rounding: WeightRounding = .nearest,
        equalized: Bool = false
    ) {
        (self.name, self.weights, self.activations) = (name, weights, activations)
        (self.rounding, self.equalized) = (rounding, equalized)
    }

    /// The format's own name: without `-cle` and the rounding's suffix.
    public var formatName: String {
        String(name.dropLast(rounding.suffix.count + (equalized ? Self.equalizedSuffix.count : 0)))
    }

    /// What an equalized mode's format name is followed by.
    public static let equalizedSuffix = "-cle"

    /// The mode with its weights rounded by `rounding`, named with its suffix.
    public func rounded(_ rounding: WeightRounding) -> FormatMode {
        with(rounding: rounding, equalized: equalized)
    }

    /// The mode with the network equalized first, or not.
    public func equalizing(_ equalized: Bool) -> FormatMode { with(rounding: rounding, equalized: equalized) }

    private func with(rounding: WeightRounding, equalized: Bool) -> FormatMode {
        FormatMode(
            name: formatName + (equalized ? Self.equalizedSuffix : "") + rounding.suffix, weights: weights,
            activations: activations, rounding: rounding, equalized: equalized)
    }

    /// The mode with its int4 weight ranges chosen by `method` (minmax or mse); other modes as they are.
    public func weightRanges(_ method: CalibrationMethod) -> FormatMode {
        guard case .int4(let w) = weights else { return self }
        return FormatMode(
            name: name, weights: .int4(Int4Weights(group: w.group, zeroPoint: w.zeroPoint, method: method)),
            activations: activations, rounding: rounding, equalized: equalized)
    }

    /// Whether the inputs' scale comes from calibration images (a per-tensor scale or range).
    public var needsCalibration: Bool {
        activations.map { $0.block?.inputNeedsCalibration ?? true } ?? false
    }

    /// Whether building the mode needs calibration images: to scale its inputs, to round its weights
    /// other than to nearest, or to absorb high biases when equalizing.
    public var needsImages: Bool { needsCalibration || rounding != .nearest || equalized }
}
