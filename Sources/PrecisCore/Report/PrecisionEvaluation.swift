/// A network the precision report runs.
public enum EvaluatedNetwork {
    /// A floating precision mode, built from `tensors` (the master's, or a stored variant's).
    case floating(PrecisionMode, tensors: [String: Tensor<Double>])
    /// A quantized network run with integer-only inference, by name (`int8-wchannel-au8z`).
    case integer(String, IntegerNetwork)
    /// A number format simulated in Float.
    case format(FormatNetwork)
    /// A searched assignment, each layer in its own candidate, simulated in Float.
    case searched(SearchedNetwork)
}

/// One entry of the precision report: a network and where its weights came from.
public struct EvaluationEntry {
    public let network: EvaluatedNetwork
    /// `/model`, `/variants/<name>`, or how the weights were made.
    public let weights: String

    public init(_ network: EvaluatedNetwork, weights: String) {
        (self.network, self.weights) = (network, weights)
    }

    /// The name of the row.
    public var name: String {
        switch network {
        case .floating(let mode, _): return mode.rawValue
        case .integer(let name, _): return name
        case .format(let f): return f.model.name
        case .searched(let s): return s.model.name
        }
    }
}

/// The test images of an evaluation: row-major Floats of the network's input shape, and labels.
public struct TestImages {
    public let images: [Float], labels: [Int]
    /// The factor every input is multiplied by (1 normally; larger to stress the range).
    public let inputScale: Float

    public init(images: [Float], labels: [Int], inputScale: Float = 1) {
        (self.images, self.labels, self.inputScale) = (images, labels, inputScale)
    }

    public var count: Int { labels.count }
}

/// The precision report's results: every entry run side by side against the float64 network of
/// `master` (per-layer errors) and against float32 (predictions; run even when no entry asks for
/// it, then not shown). With `keepLogits`, `logits` holds each shown entry's logits, widened to
/// Double, `(images, classes)` row-major.
public struct PrecisionEvaluation {
    public let results: [ModeResult]
    public let logits: [String: [Double]]
    /// Each shown entry's predicted class of every image, by name.
    public let predicted: [String: [Int]]
    /// float32's predicted class of every image.
    public let float32Predicted: [Int]

    public init(
        spec: ModelSpec, master: [String: Tensor<Double>], entries: [EvaluationEntry], test: TestImages,
        keepLogits: Bool = false, progress: (Int) -> Void = { _ in }
    ) throws {
        struct Report: NetworkBody {
            let mode: PrecisionMode, test: TestImages, keep: Bool
            func callAsFunction<T: NetworkScalar>(_ network: Network<T>) -> ModeReport {
                ModeReport(mode, network, inputScale: test.inputScale, keepLogits: keep)
            }
        }
        func report(_ entry: EvaluationEntry) throws -> ModeReport {
            switch entry.network {
            case let .floating(mode, tensors):
                return try mode.withNetwork(
                    spec: spec, tensors: tensors, Report(mode: mode, test: test, keep: keepLogits))
            case let .integer(name, network):
                return ModeReport(
                    name: name, depth: spec.layers.count, modelBytes: network.modelBytes, inputScale: test.inputScale,
                    keepLogits: keepLogits, forward: network.forwardAll, predict: network.predict)
            case let .format(f):
                let r = ModeReport(
                    name: f.model.name, depth: spec.layers.count, modelBytes: f.modelBytes, inputScale: test.inputScale,
                    keepLogits: keepLogits, forward: { spec.hidingFolded(f.forwardAll($0), f.model.folded) })
                r.bitsPerWeight = f.bitsPerWeight
                return r
            case let .searched(s):
                let r = ModeReport(
                    name: s.model.name, depth: spec.layers.count, modelBytes: s.modelBytes, inputScale: test.inputScale,
                    keepLogits: keepLogits,
                    forward: { spec.hidingFolded(s.network.forwardAll($0), s.model.folded) })
                r.bitsPerWeight = s.bitsPerWeight
                return r
            }
        }
        let hasFloat32 = entries.contains { if case .floating(.float32, _) = $0.network { true } else { false } }
        let run =
            hasFloat32 ? entries : [EvaluationEntry(.floating(.float32, tensors: master), weights: "/model")] + entries
        let reports = try run.map(report)
        let reference = try Network<Double>(spec: spec, parameters: master)
        runPrecisionReport(
            reference: reference, reports, images: test.images, count: test.count, inputScale: test.inputScale,
            progress: progress)
        let float32 = reports[run.firstIndex { $0.name == PrecisionMode.float32.rawValue }!]
        let shown = hasFloat32 ? Array(zip(run, reports)) : Array(zip(run, reports).dropFirst())
        results = shown.map { entry, r in
            ModeResult(r, float32: float32, labels: test.labels, weights: entry.weights, layerNames: spec.layerNames)
        }
        logits = Dictionary(uniqueKeysWithValues: shown.map { ($0.0.name, $0.1.logitValues) })
        predicted = Dictionary(uniqueKeysWithValues: shown.map { ($0.0.name, $0.1.predicted) })
        float32Predicted = float32.predicted
    }
}

/// `--explain` for a floating mode: float32 with one layer at a time computed in `mode` (weights
/// from `tensors`), against float32's predictions and the float64 logits of `master`.
public func explainPrecision(
    _ mode: PrecisionMode, spec: ModelSpec, master: [String: Tensor<Double>],
    tensors: [String: Tensor<Double>], test: TestImages, float32Predicted: [Int],
    progress: @escaping (Int) -> Void = { _ in }
) throws -> Explanation {
    struct Explain: NetworkBody {
        let float32: Network<Float>, reference: Network<Double>, test: TestImages, predicted: [Int]
        let progress: (Int) -> Void
        func callAsFunction<T: NetworkScalar>(_ reduced: Network<T>) -> [LayerEffect] {
            explainLayers(
                float32: float32, reduced: reduced, reference: reference, images: test.images, labels: test.labels,
                float32Predicted: predicted, inputScale: test.inputScale, progress: progress)
        }
    }
    let explain = Explain(
        float32: try Network<Float>(spec: spec, parameters: master),
        reference: try Network<Double>(spec: spec, parameters: master), test: test,
        predicted: float32Predicted, progress: progress)
    let effects = try mode.withNetwork(spec: spec, tensors: tensors, explain)
    return Explanation(precision: mode.rawValue, simulated: false, effects: effects.map { LayerEffectResult($0) })
}

/// `--explain` for a quantized model (int8 or a number format): float32 with one of its layers
/// at a time quantized as `model` holds it (int8 simulated in Float), against float32's predictions
/// and the float64 logits of `master`. `tensors` supplies the values the model runs with in float.
public func explainQuantized<Model: QuantizedLayers>(
    _ model: Model, name: String, spec: ModelSpec, master: [String: Tensor<Double>],
    tensors: [String: Tensor<Double>], test: TestImages, float32Predicted: [Int],
    progress: @escaping (Int, Int) -> Void = { _, _ in }
) throws -> Explanation {
    let effects = try model.layerEffects(
        spec: spec, tensors: tensors, float32: try Network<Float>(spec: spec, parameters: master),
        reference: try Network<Double>(spec: spec, parameters: master), test: test,
        float32Predicted: float32Predicted, progress: progress)
    return Explanation(precision: name, simulated: true, effects: effects.map { LayerEffectResult($0) })
}
