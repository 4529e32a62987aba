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
    var weightInit: String?

    @OptionGroup var data: DataOptions

    @Option(help: "Passes over the training set.")
    var epochs = 20

    @Option(help: "Images per mini-batch.")
    var batchSize = 100

    @Option(help: "sgd, momentum, nesterov, adagrad, rmsprop or adam.")
    var optimizer = "adam"

    @Option(help: "Learning rate (default: the optimizer's book default).")
    var learningRate: Double?

    @Option(help: "constant, or step:EVERY:FACTOR (multiply the rate by FACTOR every EVERY epochs).")
    var lrSchedule = "constant"

    @Option(help: "Seed for the initial weights, the batch order and dropout.")
    var seed: UInt64 = 0

    @Option(help: "Per-epoch accuracy on this many images of each split (the last epoch uses all).")
    var evalSample: Int?

    @Option(help: "Where to write the trained weights (HDF5, e.g. Weights/deep-fashion.h5).")
    var output: String?

    @Flag(help: "Replace an existing output file.")
    var force = false

    @Flag(help: "No progress line and no per-epoch lines.")
    var quiet = false

    @Flag(help: "Print the run's summary and history as JSON.")
    var json = false

    func validate() throws {
        guard epochs > 0 else { throw ValidationError("--epochs must be positive") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard OptimizerKind(rawValue: optimizer) != nil else {
            throw ValidationError("unknown optimizer '\(optimizer)' (\(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) { throw ValidationError("--learning-rate must be positive") }
        if let evalSample, evalSample <= 0 { throw ValidationError("--eval-sample must be positive") }
        _ = try schedule()
        if let output, !force, FileManager.default.fileExists(atPath: output) {
            throw ValidationError("\(output) exists (use --force to replace it)")
        }
    }

    func schedule() throws -> LearningRateSchedule {
        if lrSchedule == "constant" { return .constant }
        let parts = lrSchedule.split(separator: ":")
        if parts.count == 3, parts[0] == "step", let every = Int(parts[1]), every > 0, let factor = Double(parts[2]), factor > 0 {
            return .stepDecay(every: every, factor: factor)
        }
        throw ValidationError("--lr-schedule must be constant or step:EVERY:FACTOR, got '\(lrSchedule)'")
    }

    func run() throws {
        try reportingErrors {
            let dataset = try data.load(fallback: model == "simple" ? "mnist5k" : "fashion-mnist")
            let spec = try ModelSpec.named(model, weightInit: try weightInit.map(WeightInit.init(parsing:)), inputShape: dataset.imageShape)
            guard spec.classes == dataset.classes else {
                throw ModelError.badSpec("the model ends in \(spec.classes) classes, \(dataset.name) has \(dataset.classes)")
            }
            var config = TrainingConfig()
            config.epochs = epochs
            config.batchSize = batchSize
            config.optimizer = OptimizerKind(rawValue: optimizer)!
            config.learningRate = learningRate
            config.schedule = try schedule()
            config.seed = seed
            config.evaluationSample = evalSample
            let net = try Network<Float>(spec: spec, seed: seed)
            let log = !quiet && !json
            if log {
                print("training \(spec.name) on \(dataset.name) (\(dataset.trainCount) train / \(dataset.testCount) test), "
                      + "\(optimizer) lr \(config.learningRate ?? config.optimizer.defaultLearningRate), batch \(batchSize), seed \(seed)")
            }
            let progress = ProgressLine(quiet: quiet)
            let history = Trainer(config).run(net, on: dataset) { event in
                switch event {
                case let .iteration(epoch, index, perEpoch, loss):
                    progress.update("epoch \(epoch)/\(epochs)", done: (epoch - 1) * perEpoch + index, total: epochs * perEpoch, unit: "it",
                                    suffix: String(format: "loss %.4f", loss))
                case let .epochEnd(epoch, loss, train, test, seconds):
                    progress.clear()
                    if log {
                        print(String(format: "epoch %2d/%d  loss %.4f  train %@  test %@  %.1f s", epoch, epochs, loss, percent(train), percent(test), seconds))
                        fflush(stdout)
                    }
                }
            }
            if let output {
                let record = TrainingRecord(dataset: dataset, config: config, history: history)
                try WeightFile(spec: spec, dataset: dataset.name, training: record, tensors: net.tensorValues()).write(to: output, overwrite: force)
            }
            let perIteration = history.trainingSeconds / Double(history.iterations)
            if json {
                try printJSON([
                    "model": spec.name, "layers": spec.layerText, "dataset": dataset.name, "epochs": epochs, "seed": seed,
                    "loss": history.loss, "train_accuracy": history.trainAccuracy, "test_accuracy": history.testAccuracy,
                    "seconds": history.seconds, "training_seconds": history.trainingSeconds, "seconds_per_iteration": perIteration,
                    "seconds_per_epoch": history.epochSeconds, "iterations": history.iterations, "output": output ?? NSNull(),
                ] as [String: Any])
            } else {
                print(String(format: "test accuracy %@ after %d epochs; %.1f s wall, %d iterations at %.4f s each (evaluation excluded)",
                             percent(history.testAccuracy.last ?? 0), epochs, history.seconds, history.iterations, perIteration)
                      + (output.map { "; wrote \($0)" } ?? ""))
            }
        }
    }
}
