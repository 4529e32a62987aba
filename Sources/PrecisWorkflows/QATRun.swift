import PrecisCore
import PrecisWeights

/// `precis train --qat --json`: post-training quantization against quantization-aware training of
/// the same network in the same format, on the same test images.
public struct QATSummary: Encodable {
    public var schema = ReportSchema.qat
    public let format: String, from: String, dataset: String
    public let epochs: Int, warmup: Int, learningRate: Double
    /// Whether the weight scales and int8 input ranges were learned (LSQ).
    public let learnedSteps: Bool
    public let float32: RunResult, ptq: RunResult, qat: RunResult
    /// The share of PTQ's accuracy loss against float32 that QAT wins back (nil when PTQ loses nothing).
    public let recovered: Double?
    public let history: TrainingHistory
    public let output: String?, variant: String

    private enum CodingKeys: String, CodingKey {
        case schema, format, from, dataset, epochs, warmup, learningRate = "learning_rate", float32, ptq, qat
        case learnedSteps = "learned_steps"
        case recovered, loss, testAccuracy = "test_accuracy", secondsPerIteration = "seconds_per_iteration", output
        case variant
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schema, forKey: .schema)
        try c.encode(format, forKey: .format)
        try c.encode(from, forKey: .from)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(warmup, forKey: .warmup)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(learnedSteps, forKey: .learnedSteps)
        try c.encode(float32, forKey: .float32)
        try c.encode(ptq, forKey: .ptq)
        try c.encode(qat, forKey: .qat)
        try c.encode(recovered, forKey: .recovered)
        try c.encode(history.loss, forKey: .loss)
        try c.encode(history.testAccuracy, forKey: .testAccuracy)
        try c.encode(history.trainingSeconds / Double(max(history.iterations, 1)), forKey: .secondsPerIteration)
        try c.encode(output, forKey: .output)
        try c.encode(variant, forKey: .variant)
    }
}

extension QATSummary {
    /// One line: post-training against quantization-aware accuracy, and what was written.
    public var text: String {
        String(
            format: "%@: post-training %@ (%+.2f points), quantization-aware%@ %@ (%+.2f points)%@", format,
            percentText(ptq.accuracy), ptq.vsFloat32.changePP, learnedSteps ? " with learned steps" : "",
            percentText(qat.accuracy), qat.vsFloat32.changePP,
            recovered.map { String(format: "; recovers %.0f%% of the loss", 100 * $0) } ?? "")
            + (output.map { "; wrote \($0) with /variants/\(variant)" } ?? "")
    }
}

/// Quantization-aware training: fine-tunes a trained network with a format simulated, measures
/// post-training quantization of the same network against it, and writes the fine-tuned network
/// with its variant.
public struct QATRun {
    public let target: QATTarget
    /// Steps during which layer inputs are observed before their ranges freeze.
    public let warmup: Int
    /// Whether the weight scales and int8 input ranges are learned too (LSQ, Esser et al. 2019).
    public let learnSteps: Bool

    public init(target: QATTarget, warmup: Int = 100, learnSteps: Bool = false) {
        (self.target, self.warmup, self.learnSteps) = (target, warmup, learnSteps)
    }

    /// The learning rate fine-tuning uses unless told: a tenth of Adam's default.
    public static let fineTuningLearningRate = 0.0001

    /// Fine-tunes `source` (read from `from`) on `dataset` as `config` says and, with `output`, writes
    /// it there (replacing a file with `overwrite`) with its variant. `log` gets the lines a person
    /// reads before training, `events` the trainer's.
    public func run(
        from: String, source: WeightFile, dataset: Dataset, config: TrainingConfig, output: String?, overwrite: Bool,
        log: (String) -> Void = { _ in }, events: @escaping (TrainingEvent) -> Void = { _ in }
    ) throws -> QATSummary {
        let spec = source.spec
        let study = try QuantizationStudy(
            spec: spec, tensors: source.tensors, dataset: dataset, calibrationSize: 500, seed: config.seed)
        let ptq = try evaluate(try quantized(study), study, tensors: study.tensors)
        log(
            "\(target) on \(from): float32 \(percentText(study.float32.accuracy)), post-training "
                + String(format: "%@ (%+.2f points)", percentText(ptq.accuracy), ptq.vsFloat32.changePP))
        log(
            "quantization-aware training for \(config.epochs) epochs (\(config.optimizer.rawValue) lr "
                + "\(config.learningRate!), inputs observed for \(warmup) steps, then frozen"
                + (learnSteps ? "; weight scales and int8 input ranges learned)" : ")"))
        let net = try Network<Float>(spec: spec, parameters: source.tensors, seed: config.seed)
        let qat = try QuantizationAwareTraining(
            network: net, target: target, observers: study.observers, warmup: warmup,
            learnSteps: learnSteps ? (config.optimizer, config.learningRate!) : nil)
        let history = try Trainer(config).run(net, on: dataset, around: qat.around, events: events)
        let form = try qat.quantized(), masters = net.tensorValues()
        let result = try evaluate(form, study, tensors: masters)
        let lost = study.float32.accuracy - ptq.accuracy
        var variant = target.description
        if let output {
            let record = TrainingRecord(dataset: dataset, config: config, history: history)
            try WeightFile(spec: spec, dataset: dataset.name, training: record, tensors: masters).write(
                to: output, overwrite: overwrite)
            let out = try WeightStore(output)
            let how: [(String, HDF5Attribute)] = [
                ("training", .string("quantization-aware, fine-tuned from \(config.startedFrom)")),
                ("qat_epochs", .int(config.epochs)), ("qat_warmup_steps", .int(warmup)),
                ("qat_step_sizes", .string(learnSteps ? "learned (LSQ)" : "calibrated")),
            ]
            let calibration =
                target.calibratesInputs
                ? calibrationAttributes(
                    target.calibrationName, images: study.calibrationCount, seed: config.seed,
                    source: "training set of \(dataset.name), then \(warmup) training batches") : []
            switch form {
            case .int8(let model): variant = try out.store(model, calibration: calibration + how)
            case .format(let model): variant = try out.store(model, calibration: calibration + how)
            }
        }
        return QATSummary(
            format: target.description, from: from, dataset: dataset.name, epochs: config.epochs, warmup: warmup,
            learningRate: config.learningRate!, learnedSteps: learnSteps, float32: study.float32, ptq: ptq, qat: result,
            recovered: lost > 0 ? (result.accuracy - ptq.accuracy) / lost : nil, history: history, output: output,
            variant: variant)
    }

    /// The target applied to the study's network by post-training quantization, as quantizing stores it.
    func quantized(_ study: QuantizationStudy) throws -> QuantizedForm {
        switch target {
        case let .int8(scheme, method): return .int8(try study.quantize(scheme, method))
        case .format(let mode): return .format(try study.formatModel(mode))
        }
    }

    /// `form` run as the precision report runs the stored variant (the integer path for int8), with
    /// `tensors` for the float tensors, on the study's test images.
    func evaluate(_ form: QuantizedForm, _ study: QuantizationStudy, tensors: [String: Tensor<Double>]) throws
        -> RunResult
    {
        switch form {
        case .int8(let model):
            return study.evaluate(try IntegerNetwork(spec: study.spec, model: model, tensors: tensors))
        case .format(let model):
            let network = try FormatNetwork(spec: study.spec, tensors: tensors, model: model)
            return study.evaluate { network.predict($0) }
        }
    }
}
