/// One network's predictions on the test images against float32's.
public struct RunResult: Codable, Equatable, Sendable {
    /// correct / images (0...1).
    public var accuracy: Double
    public var vsFloat32: AccuracyChange
    public var imagesPerSecond: Double
    /// The predicted class of every image (not part of JSON).
    public var predicted: [Int] = []

    private enum CodingKeys: String, CodingKey {
        case accuracy, vsFloat32 = "vs_float32", imagesPerSecond = "images_per_second"
    }
}

/// What one quantized layer alone in int8 does to the network (the rest in float32).
public struct LayerSensitivity: Codable, Equatable, Sendable {
    /// The layer's index and name.
    public var index: Int, layer: String
    public var vsFloat32: AccuracyChange
    /// The logits' errors against float64.
    public var logits: ErrorSummary
    /// The int8 weights' SQNR against the float weights, in dB.
    public var weightSQNRDB: Double

    private enum CodingKeys: String, CodingKey {
        case index, layer, vsFloat32 = "vs_float32", logits, weightSQNRDB = "weight_sqnr_db"
    }
}

/// One step of the mixed-precision search: these layers in float, the rest in int8 (simulated).
public struct MixedPrecisionStep: Codable, Equatable, Sendable {
    public var floatLayers: [String]
    public var result: RunResult
    public var modelBytes: Int

    private enum CodingKeys: String, CodingKey {
        case floatLayers = "float_layers", result, modelBytes = "model_bytes"
    }
}

/// What every int8 study of one network shares: the calibration images (drawn from the training
/// set only) and their activation statistics, the test images, and float32's predictions on them.
public struct QuantizationStudy {
    public let spec: ModelSpec
    /// The master tensors (equalized, in a study `equalized()` returns).
    public private(set) var tensors: [String: Tensor<Double>]
    /// How `tensors` were equalized, or nil for the master's own.
    public private(set) var equalization: Equalization?
    public private(set) var calibrationImages: [Float]
    public let calibrationCount: Int
    /// Each quantized layer's input statistics over the calibration images.
    public private(set) var observers: [Int: Observer]
    public let test: TestImages
    /// The float32 network of `tensors`.
    public private(set) var float32Network: Network<Float>
    public let float32: RunResult

    /// Which test images the study uses, and how a report names them.
    public let selection: ImageSelection, selectionText: String

    /// `calibrationSize` training images of `dataset` drawn with `seed`, and the test images of
    /// `selection`.
    public init(
        spec: ModelSpec, tensors: [String: Tensor<Double>], dataset: Dataset, calibrationSize: Int, seed: UInt64,
        selection: ImageSelection = .all
    ) throws {
        (self.spec, self.tensors) = (spec, tensors)
        (calibrationImages, calibrationCount) = drawCalibrationImages(dataset, count: calibrationSize, seed: seed)
        let net32 = try Network<Float>(spec: spec, parameters: tensors)
        float32Network = net32
        observers = observeActivations(net32, images: calibrationImages, count: calibrationCount)
        (self.selection, selectionText) = (selection, selection.text(of: dataset.testCount))
        test = dataset.testImages(selection)
        let (predicted, seconds) = Self.classify(test, shape: spec.inputShape) { net32.predict($0) }
        var reference = Self.result(predicted, seconds: seconds, reference: predicted, labels: test.labels)
        reference.vsFloat32 = AccuracyChange(
            reference: PairedChange(predicted: predicted, reference: predicted, labels: test.labels))
        float32 = reference
    }

    /// The study of the network equalized across layers (see `Equalization`), its high biases absorbed
    /// on the calibration images: its tensors and input statistics are the equalized network's, while
    /// float32's predictions, the reference every change is counted against, stay the master's.
    public func equalized() throws -> QuantizationStudy {
        let e = try Equalization(spec: spec, tensors: tensors).absorbingHighBiases(
            spec: spec, tensors: tensors, images: calibrationImages, count: calibrationCount)
        var out = self
        out.tensors = try e.applied(to: tensors, spec: spec)
        out.equalization = e
        out.float32Network = try Network<Float>(spec: spec, parameters: out.tensors)
        out.observers = observeActivations(out.float32Network, images: calibrationImages, count: calibrationCount)
        return out
    }

    /// The study with its calibration images drawn again from its own, as many, with replacement
    /// (`seed` draws them), and their statistics observed again: one bootstrap resample.
    public func resampled(seed: UInt64) -> QuantizationStudy {
        var rng = RandomSource(seed: seed), out = self
        let per = spec.inputShape.reduce(1, *)
        out.calibrationImages = (0..<calibrationCount).flatMap { _ in
            let k = Int(rng.next() % UInt64(calibrationCount))
            return calibrationImages[k * per..<(k + 1) * per]
        }
        out.observers = observeActivations(float32Network, images: out.calibrationImages, count: calibrationCount)
        return out
    }

    /// The predictions of `predict` on the test images, in batches of 100, and the seconds taken.
    static func classify(_ test: TestImages, shape: [Int], _ predict: (Tensor<Float>) -> Tensor<Float>) -> (
        [Int], Double
    ) {
        let per = shape.reduce(1, *)
        var predicted: [Int] = []
        let seconds = timed {
            for s in stride(from: 0, to: test.count, by: 100) {
                let k = min(100, test.count - s)
                predicted += argmaxRows(
                    predict(Tensor(shape: [k] + shape, data: Array(test.images[s * per..<(s + k) * per]))))
            }
        }
        return (predicted, seconds)
    }

    static func result(_ predicted: [Int], seconds: Double, reference: [Int], labels: [Int]) -> RunResult {
        RunResult(
            accuracy: Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(max(labels.count, 1)),
            vsFloat32: AccuracyChange(PairedChange(predicted: predicted, reference: reference, labels: labels)),
            imagesPerSecond: seconds > 0 ? Double(labels.count) / seconds : 0, predicted: predicted)
    }

    /// `predict`'s accuracy and change against float32 on the test images.
    public func evaluate(_ predict: (Tensor<Float>) -> Tensor<Float>) -> RunResult {
        let (predicted, seconds) = Self.classify(test, shape: spec.inputShape, predict)
        return Self.result(predicted, seconds: seconds, reference: float32.predicted, labels: test.labels)
    }

    /// `network`'s accuracy and change against float32.
    public func evaluate(_ network: IntegerNetwork) -> RunResult { evaluate { network.predict($0) } }

    /// `scheme` calibrated with `method`, and with bias correction when asked.
    public func quantize(
        _ scheme: QuantScheme, _ method: CalibrationMethod, percentile: Double = 99.99,
        biasCorrection: Bool = false
    ) throws -> QuantizedModel {
        guard scheme.equalized == (equalization != nil) else {
            throw ModelError.badSpec(
                "\(scheme) needs a study whose network is \(scheme.equalized ? "" : "not ")equalized")
        }
        var model = try QuantizedModel(
            spec: spec, tensors: tensors, scheme: scheme, observers: observers, method: method,
            percentile: percentile)
        model.equalization = equalization
        guard biasCorrection else { return model }
        return try FakeQuantNetwork(spec: spec, model: model, tensors: tensors)
            .biasCorrected(spec: spec, tensors: tensors, images: calibrationImages, count: calibrationCount)
    }

    /// Each quantized layer of `model` alone in its format (simulated), the rest in float32: ranked
    /// by accuracy change, then by logit SQNR against float64, most harmful first.
    public func sensitivity<Model: QuantizedLayers>(_ model: Model) throws -> [LayerSensitivity] {
        let weightSQNR = try model.weightSQNR(spec: spec, tensors: tensors)
        return try model.layerEffects(
            spec: spec, tensors: tensors, float32: float32Network,
            reference: try Network<Double>(spec: spec, parameters: tensors), test: test,
            float32Predicted: float32.predicted, progress: { _, _ in }
        )
        .compactMap { e in
            guard let i = spec.layerNames.firstIndex(of: e.layer), let sqnr = weightSQNR[i] else { return nil }
            return LayerSensitivity(
                index: i, layer: e.layer, vsFloat32: AccuracyChange(e.change), logits: ErrorSummary(e.logits),
                weightSQNRDB: sqnr)
        }
        .sorted { ($0.vsFloat32.changePP, $0.logits.sqnrDB) < ($1.vsFloat32.changePP, $1.logits.sqnrDB) }
    }

    /// Mixed precision: the layers of `order` (most harmful first) stay in float (their values
    /// from `floats`, `bytesPerValue` bytes each) one more at a time until the simulated drop
    /// against float32 is at most `maxDrop` points. With every layer in float32 the change is 0, so
    /// the last step is always within the budget.
    public func mixedPrecision<Model: QuantizedLayers>(
        _ model: Model, order: [Int], maxDrop: Double, floats: [String: Tensor<Double>]? = nil, bytesPerValue: Int = 4
    ) throws -> [MixedPrecisionStep] {
        var steps: [MixedPrecisionStep] = []
        for kept in 0...order.count {
            let mixed = try model.only(Set(order.dropFirst(kept))).simulation(
                spec: spec, floats: floats ?? tensors, floatBytesPerValue: bytesPerValue)
            steps.append(
                MixedPrecisionStep(
                    floatLayers: order.prefix(kept).map { spec.layerNames[$0] }, result: evaluate(mixed.predict),
                    modelBytes: mixed.bytes))
            if -steps[steps.count - 1].result.vsFloat32.changePP <= maxDrop { break }
        }
        return steps
    }

    /// `mode` applied to the study's tensors, its inputs calibrated on the study's calibration images, and
    /// its weights rounded as the mode says (GPTQ or AdaRound on the calibration images). An equalized
    /// mode takes an `equalized()` study.
    public func formatModel(_ mode: FormatMode, progress: (Int, Int) -> Void = { _, _ in }) throws -> FormatModel {
        guard mode.equalized == (equalization != nil) else {
            throw ModelError.badSpec(
                "\(mode.name) needs a study whose network is \(mode.equalized ? "" : "not ")equalized")
        }
        var model = try FormatModel(spec: spec, tensors: tensors, mode: mode, observers: observers)
        model.equalization = equalization
        guard mode.rounding != .nearest else { return model }
        return try model.rounded(
            by: mode.rounding, spec: spec, tensors: tensors, images: calibrationImages, count: calibrationCount,
            progress: progress)
    }
}

/// What `precis quantize` stored, and how the stored variant does on the test images.
public struct QuantizeSummary: Codable, Equatable, Sendable {
    /// ``ReportSchema/quantize``.
    public var schema = ReportSchema.quantize
    public var file: String, variant: String
    /// The calibration method, or `none` for dynamic quantization.
    public var calibration: String
    public var calibrationImages: Int
    public var biasCorrection: Bool
    /// The stored variant run by the integer path.
    public var result: RunResult
    public var modelBytes: Int
    /// With bias correction: the same scheme without it.
    public var withoutBiasCorrection: RunResult?
    /// With `--sensitivity` or `--max-drop`: the ranking.
    public var sensitivity: [LayerSensitivity]?
    /// With `--max-drop`: the budget in points and each step of the search.
    public var maxDropPP: Double?
    public var mixedPrecision: [MixedPrecisionStep]?
    /// The layers kept in float, and their precision.
    public var floatLayers: [String]
    public var fallback: String

    public init(
        file: String, variant: String, calibration: String, calibrationImages: Int, biasCorrection: Bool,
        result: RunResult, modelBytes: Int, floatLayers: [String] = [], fallback: String = "float32"
    ) {
        (self.file, self.variant, self.calibration, self.calibrationImages) = (
            file, variant, calibration, calibrationImages
        )
        (self.biasCorrection, self.result, self.modelBytes) = (biasCorrection, result, modelBytes)
        (self.floatLayers, self.fallback) = (floatLayers, fallback)
    }

    private enum CodingKeys: String, CodingKey {
        case schema, file, variant, calibration, calibrationImages = "calibration_images", biasCorrection =
            "bias_correction"
        case result, modelBytes = "model_bytes", withoutBiasCorrection = "without_bias_correction", sensitivity
        case maxDropPP = "max_drop_pp", mixedPrecision = "mixed_precision", floatLayers = "float_layers", fallback
    }
}

extension Array where Element == LayerSensitivity {
    /// The sensitivity table of layers put one at a time in `format`, most harmful layer first.
    public func lines(in format: String = "int8") -> [String] {
        var table = TextTable([
            ("layer", .left), ("change vs float32 [95% CI]", .left), ("differs", .right),
            ("logit SQNR dB", .right), ("weight SQNR dB", .right),
        ])
        for l in self {
            table.add([
                l.layer, l.vsFloat32.text, "\(l.vsFloat32.differs)", decibelText(l.logits.sqnrDB),
                decibelText(l.weightSQNRDB),
            ])
        }
        return ["sensitivity: one layer at a time in \(format) (simulated), the rest in float32; most harmful first:"]
            + table.lines()
    }
}
