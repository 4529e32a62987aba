import Foundation
import PrecisCore

/// A training checkpoint: a weight file of the network after `epochsDone` epochs (readable by every
/// command) whose `/checkpoint` group holds the rest of the run's state: the batch-order and dropout
/// generators, the optimizer's update count and moments, the evaluation sample and the training
/// seconds. `precis train --resume` continues from it to exactly the weights an uninterrupted run
/// ends with.
public struct Checkpoint {
    public let file: WeightFile
    public let state: TrainingCheckpoint
    /// The run's settings, as `--resume` continues them.
    public let config: TrainingConfig

    public init(file: WeightFile, state: TrainingCheckpoint, config: TrainingConfig) {
        (self.file, self.state, self.config) = (file, state, config)
    }

    /// Writes the checkpoint to `path`, replacing it, safely (a whole new file renamed over it).
    public func write(to path: String) throws {
        try file.write(
            to: path, overwrite: true,
            more: { root in
                let g = try root.createGroup("checkpoint")
                try g.setAttribute("epochs_done", .int(state.epochsDone))
                try g.setAttribute("optimizer_iteration", .int(state.optimizerIteration))
                try g.setAttribute("training_seconds", .double(state.history.trainingSeconds))
                try g.setAttribute("evaluation_sample", .int(config.evaluationSample ?? 0))
                try g.setAttribute("loss_scale", .double(state.lossScaler.scale))
                try g.setAttribute("loss_scale_clean_steps", .int(state.lossScaler.cleanSteps))
                try g.setAttribute("loss_scale_growth_interval", .int(state.lossScaler.growthInterval))
                try g.write("order_rng", shape: [6], state.order.state.map { Int64(bitPattern: $0) })
                if !state.dropout.isEmpty {
                    try g.write(
                        "dropout_rng", shape: [state.dropout.count, 6],
                        state.dropout.flatMap { $0.state.map { Int64(bitPattern: $0) } })
                }
                for (name, tensors) in [("moment1", state.moments), ("moment2", state.secondMoments)] {
                    let m = try g.createGroup(name)
                    for (i, t) in tensors.enumerated() { try m.write(String(format: "%03d", i), shape: [t.count], t) }
                }
            })
    }

    /// The checkpoint at `path`, validated as a weight file, and its state: generators that can be,
    /// one per dropout layer, one pair of moments per learnable tensor with its size.
    public static func read(_ path: String) throws -> Checkpoint {
        let root = try HDF5File.open(path).root, file = try WeightFile.read(root: root)
        func fail(_ message: String) -> HDF5Error { HDF5Error(file: path, path: "/checkpoint", message: message) }
        guard root.contains("checkpoint"), let t = file.training else {
            throw fail("is missing: not a checkpoint (a training run writes one after every epoch when asked)")
        }
        let g = try root.group("checkpoint")
        func generator(_ words: ArraySlice<Int64>) throws -> RandomSource {
            guard let r = RandomSource(state: words.map { UInt64(bitPattern: $0) }) else {
                throw fail("holds a generator state no generator can be in")
            }
            return r
        }
        let order = try generator(try g.read("order_rng", as: Int64.self).values[...])
        let net = try Network<Float>(spec: file.spec, parameters: file.tensors)
        let dropouts = net.dropoutGenerators.count
        var dropout: [RandomSource] = []
        if dropouts > 0 {
            let (shape, words) = try g.read("dropout_rng", as: Int64.self)
            guard shape == [dropouts, 6] else { throw fail("dropout_rng must hold 6 words per dropout layer") }
            dropout = try (0..<dropouts).map { try generator(words[($0 * 6)..<($0 * 6 + 6)]) }
        }
        let sizes = net.parameters.map(\.parameter).filter(\.learnable).map(\.value.count)
        func moments(_ name: String) throws -> [[Double]] {
            let m = try g.group(name), names = try m.children()
            guard names.isEmpty || names.count == sizes.count else { throw fail("\(name) must hold one tensor each") }
            return try names.enumerated().map { i, n in
                let v = try m.read(n, as: Double.self).values
                guard v.count == sizes[i], v.allSatisfy(\.isFinite) else {
                    throw fail("\(name)/\(n) must hold \(sizes[i]) finite values")
                }
                return v
            }
        }
        let epochsDone = Int(try WeightFile.number(g, "epochs_done"))
        guard (1...t.epochs).contains(epochsDone), t.trainAccuracy.count == epochsDone else {
            throw fail("epochs_done does not match the training record")
        }
        var history = TrainingHistory()
        (history.loss, history.trainAccuracy, history.testAccuracy) = (t.loss, t.trainAccuracy, t.testAccuracy)
        (history.epochSeconds, history.seconds, history.iterations) = (t.epochSeconds, t.seconds, t.iterations)
        history.trainingSeconds = try WeightFile.number(g, "training_seconds")
        (history.lossScale, history.skippedSteps) = (t.lossScale, t.skippedSteps)
        (history.unchangedFraction, history.gradientUnderflow) = (t.unchangedFraction, t.gradientUnderflow)
        var config = TrainingConfig()
        (config.epochs, config.batchSize, config.seed) = (t.epochs, t.batchSize, UInt64(bitPattern: Int64(t.seed)))
        guard let optimizer = OptimizerKind(rawValue: t.optimizer) else { throw fail("unknown optimizer") }
        (config.optimizer, config.learningRate) = (optimizer, t.learningRate)
        config.schedule = try LearningRateSchedule(parsing: t.schedule)
        config.augmentation = t.augmentation.isEmpty ? nil : try Augmentation(parsing: t.augmentation)
        config.precision = TrainingPrecision(rawValue: t.precision) ?? .float32
        (config.startedFrom, config.quantizationAware) = (t.startedFrom, t.quantizationAware)
        let scale = try WeightFile.number(g, "loss_scale")
        guard scale.isFinite && scale >= 1 else { throw fail("loss_scale must be 1 or more") }
        config.lossScaler = LossScaler(
            scale: scale, growthInterval: Int(try WeightFile.number(g, "loss_scale_growth_interval")),
            cleanSteps: Int(try WeightFile.number(g, "loss_scale_clean_steps")))
        let sample = Int(try WeightFile.number(g, "evaluation_sample"))
        config.evaluationSample = sample > 0 ? sample : nil
        let state = TrainingCheckpoint(
            epochsDone: epochsDone, history: history, order: order,
            optimizerIteration: Int(try WeightFile.number(g, "optimizer_iteration")), moments: try moments("moment1"),
            secondMoments: try moments("moment2"), dropout: dropout, lossScaler: config.lossScaler)
        return Checkpoint(file: file, state: state, config: config)
    }
}
