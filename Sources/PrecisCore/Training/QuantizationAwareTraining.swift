/// What quantization-aware training simulates, named as the variant it stores: an int8 scheme with
/// its input calibration (`int8-wchannel-au8z`), or a number format (`int4-channel`, `mxfp4`).
public enum QATTarget: Sendable, Equatable, CustomStringConvertible {
    case int8(QuantScheme, CalibrationMethod)
    case format(FormatMode)

    /// The target named `text`: `int8` (the default scheme), `int8-<scheme>`, or a number format; int8
    /// inputs are calibrated with `calibration` (mse unless given).
    public init(parsing text: String, calibration: CalibrationMethod? = nil) throws {
        switch Precision.target(text) {
        case .int8(let scheme, .plain)?:
            self = .int8(scheme, calibration ?? .mse)
        case .format(let mode, mixed: false)?:
            guard calibration == nil else {
                throw ModelError.badSpec("a calibration method chooses the input ranges of int8, not of \(text)")
            }
            self = .format(mode)
        default:
            throw ModelError.badSpec(
                "unknown format '\(text)' (int8, int8-<scheme>, or " + FormatMode.namePatterns.joined(separator: ", ")
                    + ")")
        }
    }

    /// The variant's name.
    public var description: String {
        switch self {
        case .int8(let scheme, _): return Precision.int8(scheme, .plain).name
        case .format(let mode): return mode.name
        }
    }

    /// How the inputs are calibrated: the int8 method, or the format's rule.
    public var calibrationName: String {
        switch self {
        case .int8(_, let method): return method.rawValue
        case .format(let mode): return FormatModel.inputCalibrationName(mode)
        }
    }

    /// Whether its step sizes can be learned (LSQ): int8, or int4 weights. The other formats take
    /// their scales from the values.
    public var learnsSteps: Bool {
        switch self {
        case .int8: return true
        case .format(let mode):
            if case .int4 = mode.weights { return true }
            return false
        }
    }

    /// Whether layer inputs have a calibrated scale or range.
    public var calibratesInputs: Bool {
        switch self {
        case .int8: return true
        case .format(let mode): return mode.needsCalibration
        }
    }
}

/// A network quantized as a weight file stores it: int8 codes, or a number format's codes and scales.
public enum QuantizedForm: Sendable, Equatable {
    case int8(QuantizedModel)
    case format(FormatModel)
}

/// Quantization-aware training of a float32 network (Jacob et al. 2018, as PyTorch and Brevitas do
/// it). Every step runs the forward and backward pass with each convolution and affine layer's
/// weights (and int8 biases) replaced by the values the stored variant would hold, and, after the
/// warm-up, its input rounded with the frozen calibration; the rounding's derivative is taken as 1
/// (the straight-through estimator), so the gradients update the float32 master weights, which are
/// put back after every pass. During the `warmup` steps the inputs stay in float and the observers,
/// started from the calibration images, also see every training batch; then the input ranges are
/// frozen. Formats whose inputs need no calibration (MX, weight-only int4) round them from the start.
/// With learned steps (LSQ), the weight scales and, once frozen, the int8 input ranges train too.
public final class QuantizationAwareTraining {
    public let target: QATTarget
    public let warmup: Int
    let net: Network<Float>
    let layers: [Int]
    /// The quantized layers' weights and biases, by name.
    let tensors: [String: Parameter<Float>]
    /// Each quantized layer's input statistics, updated during the warm-up.
    public private(set) var observers: [Int: Observer]
    /// The input calibration the weights are quantized with: from the observers at the start, frozen
    /// at the end of the warm-up.
    public private(set) var inputs: [Int: InputCalibration] = [:]
    /// Whether the inputs are rounded (the calibration frozen).
    public private(set) var frozen = false
    public private(set) var steps = 0
    /// The learned step sizes, when they are learned.
    public private(set) var learned: LearnedSteps?

    /// `network` (its tensors the master weights) trained for `target`, the inputs calibrated from
    /// `observers` (by layer index, e.g. `QuantizationStudy.observers`).
    /// With `learnSteps` (the optimizer rule and learning rate), the weight scales and int8 input
    /// ranges are learned as LSQ does, starting from post-training quantization's.
    public init(
        network: Network<Float>, target: QATTarget, observers: [Int: Observer], warmup: Int,
        learnSteps: (rule: OptimizerKind, learningRate: Double)? = nil
    ) throws {
        (net, self.target, self.observers, self.warmup) = (network, target, observers, warmup)
        layers = quantizedLayers(network.spec)
        let names = Set(
            layers.flatMap { [tensorKey(network.layerNames[$0], "W"), tensorKey(network.layerNames[$0], "b")] })
        tensors = Dictionary(uniqueKeysWithValues: network.parameters.filter { names.contains($0.name) })
        inputs = try calibration()
        learned = try learnSteps.map {
            try LearnedSteps(form: try nearest(), spec: network.spec, rule: $0.rule, learningRate: $0.learningRate)
        }
        if !target.calibratesInputs || warmup == 0 { try freeze() }
    }

    /// The input calibration the observers give now.
    func calibration() throws -> [Int: InputCalibration] {
        guard target.calibratesInputs else { return [:] }
        var out: [Int: InputCalibration] = [:]
        for i in layers {
            guard let o = observers[i], o.count > 0 else {
                throw ModelError.badSpec("\(net.layerNames[i]): no calibration values for its input")
            }
            switch target {
            case let .int8(scheme, method):
                out[i] = .range(
                    o.quantRange(
                        method, symmetric: scheme.activations == .int8Symmetric,
                        unsigned: scheme.activations == .uint8Asymmetric))
            case .format(let mode):
                out[i] = FormatModel.inputCalibration(mode, o)
            }
        }
        return out
    }

    /// Freezes the input calibration and rounds every quantized layer's input from now on.
    func freeze() throws {
        inputs = try calibration()
        learned?.startInputs(inputs)
        net.setInputRoundings(try roundings(inputs))
        frozen = true
    }

    /// The roundings of the layer inputs `calibration` calibrates, by layer index.
    func roundings(_ calibration: [Int: InputCalibration]) throws -> [Int: OperandRounding] {
        var out: [Int: OperandRounding] = [:]
        for i in layers {
            switch target {
            case .int8:
                if case .range(let r)? = calibration[i] { out[i] = .int8(r) }
            case .format(let mode):
                guard let a = mode.activations else { continue }
                out[i] = try FormatNetwork.inputRounding(a, calibration[i], net.layerNames[i])
            }
        }
        return out
    }

    /// The master tensors quantized with the current calibration (and the learned steps).
    public func quantized() throws -> QuantizedForm {
        let form = try nearest()
        return try learned?.applied(to: form, masters: masters, spec: net.spec) ?? form
    }

    /// The master tensors, widened.
    var masters: [String: Tensor<Double>] { tensors.mapValues { $0.value.converted(to: Double.self) } }

    /// The master tensors quantized with the calibrated scales, rounded to nearest (without the
    /// learned steps).
    public func nearest() throws -> QuantizedForm {
        let tensors = masters
        switch target {
        case .int8(let scheme, _):
            var ranges: [Int: QuantRange] = [:]
            for (i, c) in inputs { if case .range(let r) = c { ranges[i] = r } }
            return .int8(
                try QuantizedModel(spec: net.spec, tensors: tensors, scheme: scheme, inputs: ranges, fold: false))
        case .format(let mode):
            return .format(try FormatModel(spec: net.spec, tensors: tensors, mode: mode, inputs: inputs, fold: false))
        }
    }

    /// The tensors the quantized form stands for: weights decoded (and int8 biases), by name.
    func fakeQuantized() throws -> [String: Tensor<Double>] {
        switch try quantized() {
        case .int8(let model):
            return try model.dequantized(net.spec, [:])
        case .format(let model):
            var out: [String: Tensor<Double>] = [:]
            for layer in try net.spec.geometry() {
                guard let t = model.weights[layer.index], let gemm = layer.gemm, let w = layer.tensor(.weight) else {
                    continue
                }
                out[layer.key(w.name)] = Tensor(shape: w.shape, data: gemm.stored(t.decoded()).map(Double.init))
            }
            return out
        }
    }

    /// Runs `body` with the quantized weights in place and the masters restored after it: a training
    /// step's forward and backward pass on batch `x` (whose layer inputs the observers see during
    /// the warm-up), or with `x` nil an evaluation. For `Trainer.run(around:)`.
    public func around(_ x: Tensor<Float>?, _ body: () -> Void) throws {
        if x != nil && !frozen && steps >= warmup { try freeze() }
        let fake = try fakeQuantized()
        var saved: [String: Tensor<Float>] = [:]
        for (name, v) in fake {
            let p = tensors[name]!
            saved[name] = p.value
            p.value = v.converted()
        }
        if let x, !frozen {
            let outs = net.forwardAll(x)
            for i in layers { observers[i, default: Observer()].observe(outs[net.spec.inputs(of: i)[0] + 1].data) }
        }
        if let learned, frozen {
            let current = try roundings(learned.inputCalibration(inputs))
            net.setInputRoundings(x == nil ? current : current.filter { learned.inputs[$0.key] == nil })
            net.trainingInputs = x == nil ? nil : learned.trainingInputs
            if x != nil { learned.startPass() }
        }
        body()
        net.trainingInputs = nil
        if let learned, x != nil {
            learned.backward(tensors, masters: saved, spec: net.spec)
            learned.update()
        }
        for (name, v) in saved { tensors[name]!.value = v }
        if x != nil { steps += 1 }
    }
}

extension Network where T == Float {
    /// Rounds the inputs of convolution and affine layers (by layer index) from now on; the others'
    /// inputs are left as they are.
    func setInputRoundings(_ roundings: [Int: OperandRounding]) {
        for (i, node) in nodes.enumerated() {
            (node.layer as? any RoundedInput)?.inputRounding = roundings[i]
        }
    }
}
