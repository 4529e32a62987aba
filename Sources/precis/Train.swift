import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network at float32 and save its weights.",
        discussion: """
            --model takes simple (the book's SimpleConvNet), deep (DeepConvNet), or a layer list such as
            "conv(6,5,pad=2) relu maxpool(2) conv(16,5) relu maxpool(2) affine(120) relu affine(84) relu affine(10)".
            """)

    @Option(help: "simple, deep, or a layer list.")
    var model = "simple"

    @Option(name: .customLong("init"), help: "Weight init: he, xavier or normal:STD (default: the model's).")
    var weightInit: WeightInit?

    @OptionGroup var data: DataOptions

    @Option(help: "Passes over the training set.")
    var epochs = 20

    @Option(help: "Images per mini-batch.")
    var batchSize = 100

    @Option(help: "The update rule.")
    var optimizer = OptimizerKind.adam

    @Option(help: "Learning rate (default: the optimizer's book default).")
    var learningRate: Double?

    @Option(help: "constant, or step:EVERY:FACTOR (multiply the rate by FACTOR every EVERY epochs).")
    var lrSchedule = LearningRateSchedule.constant

    @Option(help: "Seed for the initial weights, the batch order, dropout and the --eval-sample samples.")
    var seed: UInt64 = 0

    @Option(
        help: """
            Per-epoch accuracy on a sample of this many images of each split, stratified by class and drawn with \
            --seed (the last epoch uses all).
            """)
    var evalSample: Int?

    @Option(
        help: ArgumentHelp(
            "Random transforms of every training image, drawn from --seed: shift:K, rotate:DEGREES, "
                + "scale:FRACTION, crop:K (pad K, crop back), flip (not for digits); comma-separated.",
            valueName: "list"))
    var augment: Augmentation?

    @Option(help: "Where to write the trained weights (HDF5, e.g. Weights/deep-fashion.h5).")
    var output: String?

    @Flag(help: "Replace an existing output file.")
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
        if let reportFolder, FileManager.default.fileExists(atPath: reportFolder),
            let problem = writeProblem(reportFolder + "/index.html")
        {
            throw ValidationError("--report \(reportFolder): \(problem)")
        }
        guard (1...1_000_000).contains(epochs) else { throw ValidationError("--epochs must be from 1 to 1000000") }
        guard (1...1_000_000).contains(batchSize) else {
            throw ValidationError("--batch-size must be from 1 to 1000000")
        }
        if !["simple", "deep"].contains(model) {
            do { _ = try LayerSpec.parseList(model) } catch { throw ValidationError("--model: \(error)") }
        }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) {
            throw ValidationError("--learning-rate must be positive")
        }
        if let evalSample, evalSample <= 0 { throw ValidationError("--eval-sample must be positive") }
        if let output, !force, FileManager.default.fileExists(atPath: output) {
            throw ValidationError("\(output) exists (use --force to replace it)")
        }
        // Checked before training, so that a bad path does not throw the run away.
        if let output, let problem = writeProblem(output) { throw ValidationError("--output \(output): \(problem)") }
        if reportFolder != nil && output == nil {
            throw ValidationError("--report draws the file --output writes: give both")
        }
    }

    func run() throws {
        try reportingErrors {
            let dataset = try data.load(fallback: model == "simple" ? "mnist5k" : "fashion-mnist")
            let spec = try ModelSpec.named(model, weightInit: weightInit, inputShape: dataset.imageShape)
            guard spec.classes == dataset.classes else {
                throw ModelError.badSpec(
                    "the model ends in \(spec.classes) classes, \(dataset.name) has \(dataset.classes)")
            }
            var config = TrainingConfig()
            config.epochs = epochs
            config.batchSize = batchSize
            config.optimizer = optimizer
            config.learningRate = learningRate
            config.schedule = lrSchedule
            config.seed = seed
            config.evaluationSample = evalSample
            config.augmentation = augment
            if let refusal = augment?.refusal(for: dataset.name) { throw ValidationError(refusal) }
            try spec.checkMemory(batch: batchSize, training: true)
            if output == nil && !json {
                FileHandle.standardError.write(
                    Data("precis: warning: no --output, so the trained weights will not be saved\n".utf8))
            }
            let net = try Network<Float>(spec: spec, seed: seed)
            let log = !quiet && !json
            if log {
                print(
                    "training \(spec.name) on \(dataset.name) "
                        + "(\(dataset.trainCount) train / \(dataset.testCount) test), \(optimizer.rawValue) "
                        + "lr \(config.learningRate ?? config.optimizer.defaultLearningRate), batch \(batchSize), "
                        + "seed \(seed)" + (augment.map { ", augment \($0)" } ?? "")
                )
            }
            let progress = ProgressLine(quiet: quiet)
            let history = try Trainer(config).run(net, on: dataset) { event in
                switch event {
                case let .iteration(epoch, index, perEpoch, loss):
                    progress.update(
                        "epoch \(epoch)/\(epochs)", done: (epoch - 1) * perEpoch + index, total: epochs * perEpoch,
                        unit: "it",
                        suffix: String(format: "loss %.4f", loss))
                case let .epochEnd(epoch, loss, train, test, seconds):
                    progress.clear()
                    if log {
                        print(
                            String(
                                format: "epoch %2d/%d  loss %.4f  train %@  test %@  %.1f s", epoch, epochs, loss,
                                percentText(train), percentText(test), seconds))
                        fflush(stdout)
                    }
                }
            }
            if let output {
                let record = TrainingRecord(dataset: dataset, config: config, history: history)
                try WeightFile(spec: spec, dataset: dataset.name, training: record, tensors: net.tensorValues()).write(
                    to: output, overwrite: force)
            }
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
                        seed: seed, history: history, output: output))
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
}

/// `precis train --json`: the run's summary and history.
struct TrainingSummary: Encodable {
    var schema = ReportSchema.train
    let model: String, layers: String, dataset: String
    let epochs: Int, seed: UInt64
    let history: TrainingHistory
    let output: String?

    private enum CodingKeys: String, CodingKey {
        case schema, model, layers, dataset, epochs, seed, output, loss, trainAccuracy = "train_accuracy"
        case testAccuracy = "test_accuracy", seconds, trainingSeconds = "training_seconds"
        case secondsPerIteration = "seconds_per_iteration", secondsPerEpoch = "seconds_per_epoch", iterations
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
    }
}
