import PrecisCore
import PrecisWeights

/// The precision of the layers a mixed-precision search keeps in float.
public enum FallbackPrecision: String, CaseIterable, Sendable {
    case float32, float16

    /// Bytes per kept weight.
    public var bytesPerValue: Int { self == .float16 ? 2 : 4 }
}

/// Post-training quantization of one network into a stored variant: int8 (static or dynamic) or a
/// number format, with the sensitivity ranking and the mixed-precision search when asked.
public struct Quantizer {
    /// What to store.
    public enum Target: Sendable, Equatable {
        /// An int8 scheme with its inputs calibrated by `method`.
        case int8(QuantScheme, CalibrationMethod)
        /// Dynamic int8: inputs quantized per batch, no calibration.
        case dynamic(QuantScheme)
        /// A number format (its int4 weight ranges as it says).
        case format(FormatMode)
    }

    public var target: Target
    /// The percentile of `CalibrationMethod.percentile`.
    public var percentile = 99.99
    public var biasCorrection = false
    /// Rank the layers by what quantizing each alone costs.
    public var sensitivity = false
    /// Keep the most sensitive layers in float until the drop is at most this many points.
    public var maxDrop: Double?
    public var fallback = FallbackPrecision.float32
    /// The seed the calibration images were drawn with, recorded with the variant.
    public var seed: UInt64 = 0

    public init(_ target: Target) { self.target = target }
}

extension Quantizer.Target {
    /// What `precis quantize` stores: `format` (equalized first with `equalize`, its weights rounded
    /// by `rounding`, its int4 ranges by the one method of `methods`), else int8 `scheme` (equalized
    /// first with `equalize`), dynamic or calibrated by the first of `methods`.
    public init(
        format: FormatMode?, rounding: WeightRounding, equalize: Bool, scheme: QuantScheme,
        methods: [CalibrationMethod], dynamic: Bool
    ) {
        if let format {
            let equalized = format.equalizing(equalize || format.equalized)
            let mode = rounding == .nearest ? equalized : equalized.rounded(rounding)
            self = .format(methods.count == 1 ? mode.weightRanges(methods[0]) : mode)
            return
        }
        var int8 = scheme
        int8.equalized = int8.equalized || equalize
        self = dynamic ? .dynamic(int8) : .int8(int8, methods[0])
    }
}

extension Quantizer {

    /// Quantizes the study's network, stores the variant in `store` and evaluates what was stored.
    public func store(_ study: QuantizationStudy, in store: WeightStore, dataset: String) throws -> QuantizeSummary {
        switch target {
        case let .int8(scheme, method):
            return try runInt8(scheme, method, scheme.equalized ? study.equalized() : study, store, dataset)
        case .dynamic(let scheme): return try runDynamic(scheme, scheme.equalized ? study.equalized() : study, store)
        case .format(let mode): return try runFormat(mode, mode.equalized ? study.equalized() : study, store, dataset)
        }
    }

    func runInt8(
        _ scheme: QuantScheme, _ method: CalibrationMethod, _ study: QuantizationStudy, _ store: WeightStore,
        _ dataset: String
    ) throws -> QuantizeSummary {
        let spec = study.spec
        var model = try study.quantize(scheme, method, percentile: percentile, biasCorrection: biasCorrection)
        let without =
            try biasCorrection
            ? study.evaluate(
                IntegerNetwork(
                    spec: spec, model: try study.quantize(scheme, method, percentile: percentile),
                    tensors: study.tensors)) : nil
        let floats =
            fallback == .float16
            ? study.tensors.mapValues { $0.converted(to: Float16.self).converted(to: Double.self) } : study.tensors
        let (ranked, steps) = try search(model, study, floats: floats)
        if let kept = steps?.last.map({ Set($0.floatLayers) }) {
            model = model.only(Set(model.layers.keys.filter { !kept.contains(spec.layerNames[$0]) }))
        }
        if maxDrop != nil { model.form = .mixed(half: fallback == .float16) }
        let integer = try IntegerNetwork(
            spec: spec, model: model, tensors: floats, floatBytesPerValue: fallback.bytesPerValue)
        let floatLayers = quantizedLayers(spec).filter { model.layers[$0] == nil }.map { spec.layerNames[$0] }
        var attributes = calibrationAttributes(
            method.rawValue, images: study.calibrationCount, seed: seed, source: "training set of \(dataset)")
        if method == .percentile { attributes.append(("percentile", .double(percentile))) }
        attributes.append(
            ("bias_correction", .string(biasCorrection ? "mean output shift on the calibration set" : "none")))
        var summary = QuantizeSummary(
            file: store.path, variant: try store.store(model, calibration: attributes),
            calibration: method.rawValue, calibrationImages: study.calibrationCount, biasCorrection: biasCorrection,
            result: study.evaluate(integer), modelBytes: integer.modelBytes, floatLayers: floatLayers,
            fallback: fallback.rawValue)
        (summary.withoutBiasCorrection, summary.sensitivity, summary.mixedPrecision) = (without, ranked, steps)
        summary.maxDropPP = maxDrop
        return summary
    }

    func runFormat(_ mode: FormatMode, _ study: QuantizationStudy, _ store: WeightStore, _ dataset: String) throws
        -> QuantizeSummary
    {
        let spec = study.spec
        var model = try study.formatModel(mode)
        let (ranked, steps) = try search(model, study, floats: study.tensors)
        if let kept = steps?.last.map({ Set($0.floatLayers) }) {
            model = model.only(Set(model.weights.keys.filter { !kept.contains(spec.layerNames[$0]) }))
        }
        let network = try FormatNetwork(spec: spec, tensors: study.tensors, model: model)
        let floatLayers = quantizedLayers(spec).filter { model.weights[$0] == nil }.map { spec.layerNames[$0] }
        let attributes =
            mode.needsImages
            ? calibrationAttributes(
                FormatModel.inputCalibrationName(mode), images: study.calibrationCount, seed: seed,
                source: "training set of \(dataset)") : []
        let scales =
            if case .int4(let w) = mode.weights {
                "int4 ranges \(w.method.rawValue)" + (mode.needsCalibration ? ", inputs mse" : "")
            } else { mode.needsCalibration ? "amax" : "block scales from the values" }
        let how =
            scales + (mode.equalized ? ", equalized across layers" : "")
            + (mode.rounding == .nearest ? "" : ", rounded by \(mode.rounding.rawValue)")
        var summary = QuantizeSummary(
            file: store.path, variant: try store.store(model, calibration: attributes), calibration: how,
            calibrationImages: mode.needsImages ? study.calibrationCount : 0,
            biasCorrection: false,
            result: study.evaluate { network.predict($0) }, modelBytes: network.modelBytes, floatLayers: floatLayers)
        (summary.sensitivity, summary.mixedPrecision, summary.maxDropPP) = (ranked, steps, maxDrop)
        return summary
    }

    func runDynamic(_ scheme: QuantScheme, _ study: QuantizationStudy, _ store: WeightStore) throws
        -> QuantizeSummary
    {
        var model = try study.quantize(scheme, .minmax)
        model.form = .dynamic
        let integer = try IntegerNetwork(spec: study.spec, model: model, tensors: study.tensors)
        let how = "none: each batch's inputs quantized with their own min-max range"
        return QuantizeSummary(
            file: store.path,
            variant: try store.store(model, calibration: [("calibration", .string(how))]),
            calibration: "none", calibrationImages: 0, biasCorrection: false, result: study.evaluate(integer),
            modelBytes: integer.modelBytes)
    }

    /// The sensitivity ranking (when asked, or for the search) and the mixed-precision steps within
    /// `maxDrop` (when asked), the layers kept in float taking their values from `floats`.
    func search<Model: QuantizedLayers>(_ model: Model, _ study: QuantizationStudy, floats: [String: Tensor<Double>])
        throws -> ([LayerSensitivity]?, [MixedPrecisionStep]?)
    {
        guard sensitivity || maxDrop != nil else { return (nil, nil) }
        let ranked = try study.sensitivity(model)
        let steps = try maxDrop.map {
            try study.mixedPrecision(
                model, order: ranked.map(\.index), maxDrop: $0, floats: floats, bytesPerValue: fallback.bytesPerValue)
        }
        return (ranked, steps)
    }
}

/// The attributes a stored variant's calibration is described by: its method, and how many images
/// from where, drawn with which seed (stratified by class, as `QuantizationStudy` draws them).
public func calibrationAttributes(_ method: String, images: Int, seed: UInt64, source: String) -> [(
    String, HDF5Attribute
)] {
    [
        ("calibration", .string(method)), ("calibration_images", .int(images)),
        ("calibration_seed", .int(Int(truncatingIfNeeded: seed))), ("calibration_source", .string(source)),
        ("calibration_draw", .string("stratified by class")),
    ]
}

extension QuantizeSummary {
    /// What quantizing stored, in lines: the variant and its accuracy on `sample`, the layers kept in
    /// float, bias correction with and without, the sensitivity ranking (with `ranking`, in `format`)
    /// and the mixed-precision steps.
    public func lines(sample: String, ranking: Bool, format: String?) -> [String] {
        let how =
            format != nil
            ? calibration + (calibrationImages > 0 ? "; \(calibrationImages) calibration images" : "")
            : calibration == "none" ? "dynamic" : "\(calibration) calibration, \(calibrationImages) images"
        var out = [
            String(
                format: "%@: stored /variants/%@ (%@): %@ on %@, %+.2f points against float32, %d differ; %d bytes",
                file, variant, how, percentText(result.accuracy), sample, result.vsFloat32.changePP,
                result.vsFloat32.differs, modelBytes)
        ]
        if !floatLayers.isEmpty {
            out.append(
                "kept in \(fallback) (\(fallback == "float16" ? "stored in the variant" : "from /model")): "
                    + floatLayers.joined(separator: ", "))
        }
        if let plain = withoutBiasCorrection {
            out.append(
                String(
                    format: "bias correction: %@ with (%+.2f points, %d differ), %@ without (%+.2f points, %d differ)",
                    percentText(result.accuracy), result.vsFloat32.changePP, result.vsFloat32.differs,
                    percentText(plain.accuracy), plain.vsFloat32.changePP, plain.vsFloat32.differs))
        }
        if ranking, let sensitivity { out += sensitivity.lines(in: format ?? "int8") }
        if let mixedPrecision, let maxDropPP {
            out.append(
                String(
                    format: "mixed precision, drop budget %.2f points (simulated, most sensitive layer first):",
                    maxDropPP))
            for step in mixedPrecision {
                out.append(
                    String(
                        format: "  %@: %@  %+.2f points, %d differ, %d bytes", fallback,
                        step.floatLayers.isEmpty ? "none" : step.floatLayers.joined(separator: ", "),
                        step.result.vsFloat32.changePP, step.result.vsFloat32.differs, step.modelBytes))
            }
        }
        return out
    }
}
