import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network, or fine-tune one (quantization-aware if asked), and save its weights.",
        discussion: """
            --model takes simple (the book's SimpleConvNet), deep (DeepConvNet), or a layer list such as
            "conv(6,5,pad=2) relu maxpool(2) conv(16,5) relu maxpool(2) affine(120) relu affine(84) relu affine(10)".
            """)

    @Option(help: "simple (the default), deep, or a layer list.")
    var model: String?

    @Option(
        name: .customLong("init"),
        help: "Weight init: he, xavier or normal:STD, STD in (0, 10] (default: the model's).",
        transform: { try parsedOption(WeightInit.init(parsing:), $0) })
    var weightInit: WeightInit?

    @OptionGroup var data: DataOptions

    @Option(parsing: .unconditional, help: "Passes over the training set, 1 to 1000000 (default: 20; 2 with --from).")
    var epochs: Int?

    @Option(parsing: .unconditional, help: "Images per mini-batch, 1 to 1000000 (default: 100).")
    var batchSize: Int?

    @Option(
        help: "The update rule (default: adam; momentum with --precision float16, where Adam's averages underflow).")
    var optimizer: OptimizerKind?

    @Option(
        name: [.customLong("learning-rate"), .customLong("lr")], parsing: .unconditional,
        help: "Learning rate, a positive number (default: the optimizer's book default).")
    var learningRate: Double?

    @Option(
        help: ArgumentHelp(
            "constant (the default), or step:EVERY:FACTOR (multiply the rate by FACTOR, a positive number, every "
                + "EVERY epochs, a whole number from 1)."),
        transform: { try parsedOption(LearningRateSchedule.init(parsing:), $0) })
    var lrSchedule: LearningRateSchedule?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Seed for the initial weights, the batch order, dropout and the --eval-sample samples, a whole number "
                + "from 0 to 2^64-1 (default: 0)."), transform: { try seedValue($0) })
    var seed: UInt64?

    @Option(
        help: """
            Per-epoch accuracy on a sample of this many images of each split, stratified by class and drawn with \
            --seed (the last epoch uses all).
            """)
    var evalSample: Int?

    @Option(
        help: ArgumentHelp(
            "Random transforms of every training image, drawn from --seed: shift:K (K 1 to 8 pixels), rotate:DEGREES "
                + "(0 to 180), scale:FRACTION (0 to 1), crop:K (pad K, 1 to 8, crop back), flip (not for digits); "
                + "comma-separated.",
            valueName: "list"), transform: { try parsedOption(Augmentation.init(parsing:), $0) })
    var augment: Augmentation?

    @Option(
        help: """
            float32 (the default); float16: everything in IEEE half (weights, gradients, optimizer state, every sum); \
            mixed-float16 / mixed-bfloat16: weights, activations and gradients stored in 16 bits between operations, \
            sums and master weights in float32, dynamic loss scaling from 2^15.
            """)
    var precision: TrainingPrecision?

    @Option(
        help: ArgumentHelp(
            "With a mixed precision: dynamic (the default: from 2^15, halved on overflow, doubled after 1000 clean "
                + "steps) or a fixed scale (1: none).", valueName: "scale"))
    var lossScale: String?

    @Option(
        help: ArgumentHelp(
            "Quantization-aware training: fine-tune the network of --from with FORMAT simulated (int8, "
                + "int8-<scheme>, or a number format such as int4-channel or mxfp4) and store its variant.",
            valueName: "format"))
    var qat: String?

    @Option(
        help: ArgumentHelp(
            "Fine-tune this trained weight file (its model and data set) instead of starting afresh; the default "
                + "learning rate is then 0.0001.", valueName: "file"))
    var from: String?

    @Option(help: "With --qat and int8: how the input ranges are calibrated (default: mse).")
    var calibration: CalibrationMethod?

    @Option(
        parsing: .unconditional,
        help: "With --qat: the steps during which layer inputs are observed before their ranges freeze (default: 100).")
    var qatWarmup: Int?

    @Option(help: "After every epoch, write the run's state here (a weight file that --resume continues).")
    var checkpoint: String?

    @Option(help: "Continue the run a --checkpoint file holds, with its model, data set and settings.")
    var resume: String?

    @Option(help: "Where to write the trained weights (HDF5, e.g. Weights/deep-fashion.h5).")
    var output: String?

    @Flag(help: "Train without writing the weights anywhere (a trial run); otherwise --output is needed.")
    var noOutput = false

    @Flag(help: "Replace existing output files (--output, --checkpoint, the --report folder).")
    var force = false

    @Option(
        name: .customLong("report"),
        help: ArgumentHelp("Then draw the trained file's picture report into this folder.", valueName: "dir"))
    var reportFolder: String?

    @Flag(help: "No progress line and no per-epoch lines.")
    var quiet = false

    @Flag(help: "Print the run's summary and history as JSON (schema \(ReportSchema.train)).")
    var json = false

    func validate() throws {
        // Every output is checked before training, so that a bad path does not throw the run away.
        if output == nil && !noOutput {
            throw ValidationError("give --output FILE to keep the trained weights, or --no-output for a trial run")
        }
        if output != nil && noOutput { throw ValidationError("give --output or --no-output, not both") }
        if let output, let problem = outputProblem(output, force: force) {
            throw ValidationError("--output \(output): \(problem)")
        }
        if let checkpoint, let problem = outputProblem(checkpoint, force: force || checkpoint == resume) {
            throw ValidationError("--checkpoint \(checkpoint): \(problem)")
        }
        if let checkpoint, let output, samePath(checkpoint, output) {
            throw ValidationError("--checkpoint and --output name the same file, \(output): give each its own")
        }
        if let reportFolder, let problem = folderOutputProblem(reportFolder, force: force) {
            throw ValidationError("--report \(reportFolder): \(problem)")
        }
        guard (1...1_000_000).contains(epochs ?? 1) else {
            throw ValidationError("--epochs must be from 1 to 1000000")
        }
        guard (1...1_000_000).contains(batchSize ?? 1) else {
            throw ValidationError("--batch-size must be from 1 to 1000000")
        }
        let settings: [Any?] = [
            model, weightInit, epochs, batchSize, optimizer, learningRate, lrSchedule, seed, precision, lossScale,
        ]
        if resume != nil && (settings + [evalSample, augment]).contains(where: { $0 != nil }) {
            throw ValidationError(
                "--resume continues the checkpoint's run with its own settings: give only the data, outputs and "
                    + "--checkpoint")
        }
        if let qat {
            guard from != nil else { throw ValidationError("--qat fine-tunes a trained network: give --from FILE") }
            let others: [Any?] = [model, weightInit, precision, lossScale, checkpoint, resume]
            if others.contains(where: { $0 != nil }) {
                throw ValidationError(
                    "--qat fine-tunes the --from network in float32: no --model, --init, --precision, --loss-scale, "
                        + "--checkpoint or --resume")
            }
            do { _ = try QATTarget(parsing: qat, calibration: calibration) } catch {
                throw ValidationError("--qat: \(error)")
            }
            guard (qatWarmup ?? 0) >= 0 else { throw ValidationError("--qat-warmup must be 0 or more") }
        } else if calibration != nil {
            throw ValidationError("--calibration chooses the int8 input ranges of --qat")
        } else if qatWarmup != nil {
            throw ValidationError("--qat-warmup goes with --qat")
        }
        if from != nil && (model != nil || weightInit != nil || resume != nil) {
            throw ValidationError("--from starts from a trained network: no --model, --init or --resume")
        }
        if let lossScale {
            guard precision?.isMixed == true else {
                throw ValidationError("--loss-scale goes with --precision mixed-float16 or mixed-bfloat16")
            }
            guard lossScale == "dynamic" || (Double(lossScale).map { $0 >= 1 && $0 <= 0x1p60 } ?? false) else {
                throw ValidationError("--loss-scale must be dynamic or a number from 1 to 2^60")
            }
        }
        if let model, !["simple", "deep"].contains(model) {
            do { _ = try LayerSpec.parseList(model) } catch { throw ValidationError("--model: \(error)") }
        }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) {
            throw ValidationError("--learning-rate must be positive")
        }
        if let evalSample, evalSample <= 0 { throw ValidationError("--eval-sample must be positive") }
        if reportFolder != nil && output == nil {
            throw ValidationError("--report draws the file --output writes: give both")
        }
    }

    func run() throws {
        try reportingErrors {
            let resumed = try resume.map(Checkpoint.read), source = try from.map { try WeightStore($0).master }
            let start = resumed?.file ?? source
            let model = start?.spec.name ?? self.model ?? "simple"
            let dataset = try data.load(
                fallback: start?.dataset ?? (model == "simple" ? "mnist5k" : "fashion-mnist"))
            let spec = try start?.spec ?? typedModel(model, dataset: dataset)
            guard spec.classes == dataset.classes, spec.inputShape == dataset.imageShape else {
                throw ModelError.badSpec(
                    "the model takes \(shapeText(spec.inputShape)) images in \(spec.classes) classes, \(dataset.name) "
                        + "has \(shapeText(dataset.imageShape)) in \(dataset.classes)")
            }
            if let resumed, resumed.file.dataset != dataset.name {
                throw ModelError.badSpec("the checkpoint trains on \(resumed.file.dataset), not \(dataset.name)")
            }
            var config = TrainingConfig()
            config.epochs = epochs ?? (from == nil ? 20 : 2)
            config.batchSize = batchSize ?? 100
            config.optimizer = optimizer ?? (precision == .float16 ? .momentum : .adam)
            config.learningRate = learningRate ?? (source != nil ? Self.fineTuningLearningRate : nil)
            config.startedFrom = from.map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
            let target = try qat.map { try QATTarget(parsing: $0, calibration: calibration) }
            config.quantizationAware = target?.description ?? ""
            config.schedule = lrSchedule ?? .constant
            config.seed = seed ?? 0
            config.evaluationSample = evalSample
            config.augmentation = augment
            config.precision = precision ?? .float32
            if let fixed = lossScale.flatMap(Double.init) {
                config.lossScaler = LossScaler(scale: fixed, growthInterval: 0)
            }
            if let resumed { config = resumed.config }
            let (epochs, seed) = (config.epochs, config.seed)
            if let refusal = config.augmentation?.refusal(for: dataset.name) { throw ValidationError(refusal) }
            try spec.checkMemory(batch: config.batchSize, training: true)
            if let target, let from, let source {
                return try runQAT(target, from: from, source: source, dataset: dataset, config: config)
            }
            func network<T: NetworkScalar>(_: T.Type) throws -> Network<T> {
                try start.map { try Network<T>(spec: spec, parameters: $0.tensors, seed: seed) }
                    ?? Network<T>(spec: spec, seed: seed)
            }
            let history =
                config.precision == .float16
                ? try train(network(Float16.self), dataset, config, resumed)
                : try train(network(Float.self).storing(config.precision.storage, seed: seed), dataset, config, resumed)
            if let reportFolder, let output {
                let store = try WeightStore(output)
                let line = try PictureReportWriter(store: store, dataset: dataset, folder: reportFolder).write()
                if !json { print(line) }
            }
            let perIteration = history.trainingSeconds / Double(history.iterations)
            if json {
                return try printJSON(
                    TrainingSummary(
                        model: spec.name, layers: spec.layerText, dataset: dataset.name, epochs: epochs,
                        seed: seed, precision: config.precision.rawValue, history: history, output: output))
            }
            print(
                String(
                    format:
                        "test accuracy %@ after %d %@; %.1f s wall, %d iterations at %.4f s each (evaluation excluded)",
                    percentText(history.testAccuracy.last ?? 0), epochs, epochs == 1 ? "epoch" : "epochs",
                    history.seconds,
                    history.iterations, perIteration) + (output.map { "; wrote \($0)" } ?? ""))
        }
    }

    /// The network `--model` names (a layer list checked against the data set's images): a mistake in
    /// it is a command-line mistake, exit code 64.
    func typedModel(_ model: String, dataset: Dataset) throws -> ModelSpec {
        do {
            let spec = try ModelSpec.named(model, weightInit: weightInit, inputShape: dataset.imageShape)
            _ = try spec.shapes()
            return spec
        } catch let error as ModelError {
            throw ValidationError("--model: \(error)")
        }
    }

    /// Shows a run's progress: a progress line while it trains and, with `log`, a line per epoch
    /// (`test` naming what the test accuracy measures, when it needs saying).
    func progressEvents(_ progress: ProgressLine, epochs: Int, log: Bool, test: String = "test") -> (
        TrainingEvent
    ) -> Void {
        { event in
            switch event {
            case let .iteration(epoch, index, perEpoch, loss):
                progress.update(
                    "epoch \(epoch)/\(epochs)", done: (epoch - 1) * perEpoch + index, total: epochs * perEpoch,
                    unit: "it", suffix: String(format: "loss %.4f", loss))
            case let .epochEnd(epoch, loss, train, accuracy, seconds):
                progress.clear()
                if log {
                    print(
                        String(
                            format: "epoch %2d/%d  loss %.4f  train %@  %@ %@  %.1f s", epoch, epochs, loss,
                            percentText(train), test, percentText(accuracy), seconds))
                    fflush(stdout)
                }
            }
        }
    }

    /// Trains `net` as `config` says (from the checkpoint when resuming), printing progress, writing
    /// checkpoints and the output file.
    func train<T: NetworkScalar>(
        _ net: Network<T>, _ dataset: Dataset, _ config: TrainingConfig, _ resumed: Checkpoint?
    ) throws -> TrainingHistory {
        let (spec, epochs, seed) = (net.spec, config.epochs, config.seed)
        let log = !quiet && !json
        if log {
            print(
                (resumed.map { "resuming after epoch \($0.state.epochsDone): " } ?? "")
                    + "training \(spec.name) on \(dataset.name) "
                    + "(\(dataset.trainCount) train / \(dataset.testCount) test), \(config.optimizer.rawValue) "
                    + "lr \(config.learningRate ?? config.optimizer.defaultLearningRate), "
                    + "batch \(config.batchSize), seed \(seed)"
                    + (config.augmentation.map { ", augment \($0)" } ?? "")
            )
        }
        let progress = ProgressLine(quiet: quiet)
        let history = try Trainer(config).run(
            net, on: dataset, resume: resumed?.state,
            checkpoint: { state in
                guard let checkpoint else { return }
                let record = TrainingRecord(dataset: dataset, config: config, history: state.history)
                try Checkpoint(
                    file: WeightFile(
                        spec: spec, dataset: dataset.name, training: record, tensors: net.tensorValues()),
                    state: state, config: config
                ).write(to: checkpoint)
            },
            events: progressEvents(progress, epochs: epochs, log: log))
        if let output {
            let record = TrainingRecord(dataset: dataset, config: config, history: history)
            try WeightFile(spec: spec, dataset: dataset.name, training: record, tensors: net.tensorValues()).write(
                to: output, overwrite: force)
        }
        return history
    }
}

/// `precis train --json`: the run's summary and history.
struct TrainingSummary: Encodable {
    var schema = ReportSchema.train
    let model: String, layers: String, dataset: String
    let epochs: Int, seed: UInt64
    let precision: String
    let history: TrainingHistory
    let output: String?

    private enum CodingKeys: String, CodingKey {
        case schema, model, layers, dataset, epochs, seed, output, loss, trainAccuracy = "train_accuracy"
        case testAccuracy = "test_accuracy", seconds, trainingSeconds = "training_seconds"
        case secondsPerIteration = "seconds_per_iteration", secondsPerEpoch = "seconds_per_epoch", iterations
        case precision, skippedSteps = "skipped_steps", unchangedFraction = "unchanged_fraction"
        case gradientUnderflow = "gradient_underflow"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schema, forKey: .schema)
        try c.encode(model, forKey: .model)
        try c.encode(layers, forKey: .layers)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(seed, forKey: .seed)
        try c.encode(output, forKey: .output)
        try c.encode(history.loss, forKey: .loss)
        try c.encode(history.trainAccuracy, forKey: .trainAccuracy)
        try c.encode(history.testAccuracy, forKey: .testAccuracy)
        try c.encode(history.seconds, forKey: .seconds)
        try c.encode(history.trainingSeconds, forKey: .trainingSeconds)
        try c.encode(history.trainingSeconds / Double(max(history.iterations, 1)), forKey: .secondsPerIteration)
        try c.encode(history.epochSeconds, forKey: .secondsPerEpoch)
        try c.encode(history.iterations, forKey: .iterations)
        try c.encode(precision, forKey: .precision)
        try c.encode(history.skippedSteps, forKey: .skippedSteps)
        try c.encode(history.unchangedFraction, forKey: .unchangedFraction)
        try c.encode(history.gradientUnderflow, forKey: .gradientUnderflow)
    }
}
