import PrecisCore
import PrecisWeights

/// The calibration of everything the precision report quantizes now: the inputs of every
/// convolution and affine layer observed once, on the same 500 training images as quantizing
/// (stratified, seed 0), for the default int8 scheme and the number formats that scale their inputs.
public final class FormatCalibration {
    public let store: WeightStore, dataset: Dataset
    public static let images = 500
    private var cached: (observers: [Int: Observer], count: Int)?

    public init(store: WeightStore, dataset: Dataset) { (self.store, self.dataset) = (store, dataset) }

    /// Observers of every convolution and affine layer's input, and how many images they saw,
    /// computed on first use.
    private var observed: (observers: [Int: Observer], count: Int) {
        get throws {
            if let cached { return cached }
            let (images, count) = drawCalibrationImages(dataset, count: Self.images, seed: 0)
            let observers = observeActivations(
                try Network<Float>(spec: store.spec, parameters: store.master.tensors), images: images, count: count)
            cached = (observers, count)
            return (observers, count)
        }
    }

    public var observers: [Int: Observer] { get throws { try observed.observers } }
    public var imageCount: Int { get throws { try observed.count } }

    /// `mode` applied to the master weights, its inputs calibrated when it needs it.
    public func network(_ mode: FormatMode) throws -> FormatNetwork {
        try FormatNetwork(
            spec: store.spec, tensors: store.master.tensors, mode: mode,
            observers: mode.needsCalibration ? try observers : [:])
    }

    /// Where the row's weights came from.
    func describe(_ mode: FormatMode) -> String {
        "/model rounded now" + (mode.needsCalibration ? "; input scales from \(Self.images) training images" : "")
    }

    /// The default int8 scheme calibrated now (not stored), as quantizing would, and a note saying so.
    public func int8Now(
        scheme: QuantScheme = Precision.defaultInt8Scheme, method: CalibrationMethod = .mse
    ) throws -> (entry: EvaluationEntry, note: String) {
        let spec = store.spec, tensors = store.master.tensors
        let model = try QuantizedModel(
            spec: spec, tensors: tensors, scheme: scheme, observers: observers, method: method)
        let name = Precision.int8(scheme, .plain).name
        let how = "calibrated now: \(method.rawValue), \(try imageCount) training images, seed 0; not stored"
        let entry = EvaluationEntry(
            .integer(name, try IntegerNetwork(spec: spec, model: model, tensors: tensors)), weights: how)
        return (
            entry,
            "\(name): \(how) (precis quantize \(store.path) --scheme \(scheme) --calibration \(method.rawValue) "
                + "stores it)"
        )
    }
}

extension WeightStore {
    /// The network the precision report runs for `precision`: a floating mode with its weights (a
    /// stored variant's, or the master's), a stored variant of a number format or int8 scheme, or a
    /// number format rounded now.
    public func evaluationEntry(_ precision: Precision, formats: FormatCalibration) throws -> EvaluationEntry {
        let name = precision.name
        switch precision {
        case .floating(let mode):
            return EvaluationEntry(.floating(mode, tensors: try tensors(for: mode)), weights: source(for: mode))
        case .format(let mode, let mixed):
            let run = try formatRun(mode, mixed: mixed, formats: formats)
            return EvaluationEntry(.format(run.network), weights: run.weights)
        case .int8:
            let v = try variant(name, of: QuantizedModel.self)
            let network = try IntegerNetwork(
                spec: spec, model: v.model, tensors: v.tensors, floatBytesPerValue: v.floatBytesPerValue)
            return EvaluationEntry(.integer(name, network), weights: "/variants/\(name)")
        case .searched:
            return EvaluationEntry(
                .searched(try variant(name, of: SearchedModel.self).network), weights: "/variants/\(name)")
        }
    }

    /// A number format as the report runs it: its stored variant, else (not mixed) the master rounded
    /// now; with the tensors it runs with and where its weights came from.
    func formatRun(_ mode: FormatMode, mixed: Bool, formats: FormatCalibration) throws
        -> (network: FormatNetwork, tensors: [String: Tensor<Double>], weights: String)
    {
        let name = Precision.format(mode, mixed: mixed).name
        guard mixed || variantNames.contains(name) else {
            if mode.rounding != .nearest || mode.equalized {
                throw ModelError.badSpec(
                    "\(name) is not stored in the file: precis quantize \(path) --format \(mode.formatName)"
                        + (mode.equalized ? " --equalize" : "")
                        + (mode.rounding == .nearest ? "" : " --rounding \(mode.rounding.rawValue)") + " stores it")
            }
            return (try formats.network(mode), master.tensors, formats.describe(mode))
        }
        let v = try variant(name, of: FormatModel.self)
        return (v.network, v.tensors, "/variants/\(name)")
    }
}
