import CKernels

/// A network simulated in a `FormatMode`: the float32 network whose convolution and affine layers
/// run on their weights as a `FormatModel` holds them (decoded once), and whose inputs are rounded
/// batch by batch along the reduction axis (a convolution's window, an affine layer's input).
/// Products, sums and biases stay in float32, as block-scaled hardware accumulates.
public struct FormatNetwork {
    public let model: FormatModel
    public var mode: FormatMode { model.mode }
    public let network: Network<Float>
    /// Bytes of the weights: codes and scales of the format's tensors, 4 per value of the others.
    public let modelBytes: Int
    /// Bits per weight value of the format's tensors, scales included.
    public let bitsPerWeight: Double

    /// `model` run with the other tensors (biases, batch normalization) from `tensors`: those it runs
    /// with (`FormatModel.tensors(from:spec:)`, equalized when the model is).
    public init(spec: ModelSpec, tensors: [String: Tensor<Double>], model: FormatModel) throws {
        self.model = model
        var parameters = try spec.folding(model.folded, in: tensors), roundings: [Int: OperandRounding] = [:],
            bytes = 0, weightBytes = 0, values = 0
        for layer in try spec.geometry() {
            guard let t = model.weights[layer.index] else {
                bytes += model.folded.contains(layer.index) ? 0 : 4 * layer.parameterCount
                continue
            }
            let option = try LayerOption.format(model, layer)
            parameters.merge(option.tensors) { $1 }
            roundings[layer.index] = option.rounding
            (weightBytes, values) = (weightBytes + t.bytes, values + option.values)
            bytes += t.bytes + 4 * (layer.parameterCount - option.values)
        }
        (modelBytes, bitsPerWeight) = (bytes, values > 0 ? 8 * Double(weightBytes) / Double(values) : 32)
        network = try Network<Float>(
            spec: spec, parameters: parameters, inputRoundings: roundings, folded: model.folded)
    }

    /// `mode` applied to `tensors` now (see `FormatModel`), inputs calibrated from `observers`.
    public init(spec: ModelSpec, tensors: [String: Tensor<Double>], mode: FormatMode, observers: [Int: Observer] = [:])
        throws
    {
        try self.init(
            spec: spec, tensors: tensors,
            model: try FormatModel(spec: spec, tensors: tensors, mode: mode, observers: observers))
    }

    /// The rounding of a layer's input in `format`, with its calibration.
    static func inputRounding(_ format: OperandFormat, _ calibration: InputCalibration?, _ layer: String) throws
        -> OperandRounding
    {
        if case .int8 = format, case .range(let r)? = calibration { return .int8(r) }
        guard let rounding = format.block?.inputRounding(calibration) else {
            throw ModelError.badSpec("\(layer): no input calibration for its format")
        }
        return rounding
    }

    /// Logits `(N, classes)`.
    public func predict(_ x: Tensor<Float>) -> Tensor<Float> { network.predict(x) }

    /// The input followed by every layer's output.
    public func forwardAll(_ x: Tensor<Float>) -> [Tensor<Float>] { network.forwardAll(x) }
}

extension OperandRounding {
    /// int8 codes of `range`, in Float: `(clamp(round(x / scale) + zp) − zp)·scale`.
    public static func int8(_ range: QuantRange) -> OperandRounding {
        let s = Float(range.scale), zp = Float(range.zeroPoint), lo = Float(range.qmin), hi = Float(range.qmax)
        return OperandRounding { x, layout in
            let count = (layout.vectors - 1) * layout.vectorStride + (layout.length - 1) * layout.elementStride + 1
            precis_fake_quant_f32(x, Int64(count), s, zp, lo, hi)
        }
    }
}
