import PrecisCore
import PrecisWeights

/// One training run: a network of `spec` (fresh from the seed, or from `start`'s tensors) trained on
/// `dataset` as `config` says, in the config's precision, with checkpoints and the output file.
public struct TrainingRun {
    public let spec: ModelSpec, dataset: Dataset, config: TrainingConfig
    /// The weights to start from (a trained file, or the checkpoint being resumed).
    public var start: WeightFile?
    /// The checkpoint being resumed.
    public var resumed: Checkpoint?
    /// Where to write the run's state after every epoch.
    public var checkpoint: String?
    /// Where to write the trained weights, replacing a file there with `overwrite`.
    public var output: String?, overwrite = false
    /// The statistics a fresh network's input normalization gets (nil: the training images' own).
    public var normalization: ChannelStatistics?

    public init(spec: ModelSpec, dataset: Dataset, config: TrainingConfig) throws {
        guard spec.classes == dataset.classes, spec.inputShape == dataset.imageShape else {
            throw ModelError.badSpec(
                "the model takes \(shapeText(spec.inputShape)) images in \(spec.classes) classes, \(dataset.name) "
                    + "has \(shapeText(dataset.imageShape)) in \(dataset.classes)")
        }
        if let refusal = config.augmentation?.refusal(for: dataset.name) { throw ModelError.badSpec(refusal) }
        (self.spec, self.dataset, self.config) = (spec, dataset, config)
    }

    /// Trains in the config's precision: IEEE half throughout for float16, else Float with values
    /// stored as the precision says; returns the history.
    public func run(events: @escaping (TrainingEvent) -> Void = { _ in }) throws -> TrainingHistory {
        try spec.checkMemory(batch: config.batchSize, training: true)
        if let resumed, resumed.file.dataset != dataset.name {
            throw ModelError.badSpec("the checkpoint trains on \(resumed.file.dataset), not \(dataset.name)")
        }
        func network<T: NetworkScalar>(_: T.Type) throws -> Network<T> {
            if let start { return try Network<T>(spec: spec, parameters: start.tensors, seed: config.seed) }
            let net = try Network<T>(spec: spec, seed: config.seed)
            if spec.normalizesInput {
                try net.setInputNormalization(normalization ?? dataset.channelStatistics)
            }
            return net
        }
        return config.precision == .float16
            ? try train(network(Float16.self), events)
            : try train(network(Float.self).storing(config.precision.storage, seed: config.seed), events)
    }

    func train<T: NetworkScalar>(_ net: Network<T>, _ events: @escaping (TrainingEvent) -> Void) throws
        -> TrainingHistory
    {
        let history = try Trainer(config).run(
            net, on: dataset, resume: resumed?.state,
            checkpoint: { state in
                guard let checkpoint else { return }
                let record = TrainingRecord(dataset: dataset, config: config, history: state.history)
                try Checkpoint(
                    file: WeightFile(spec: spec, dataset: dataset.name, training: record, tensors: net.tensorValues()),
                    state: state, config: config
                ).write(to: checkpoint)
            }, events: events)
        if let output {
            let record = TrainingRecord(dataset: dataset, config: config, history: history)
            try WeightFile(spec: spec, dataset: dataset.name, training: record, tensors: net.tensorValues()).write(
                to: output, overwrite: overwrite)
        }
        return history
    }

    /// The line a person reads before the run starts.
    public var opening: String {
        (resumed.map { "resuming after epoch \($0.state.epochsDone): " } ?? "")
            + "training \(spec.name) on \(dataset.name) (\(dataset.trainCount) train / \(dataset.testCount) test), "
            + "\(config.optimizer.rawValue) lr \(config.learningRate ?? config.optimizer.defaultLearningRate), "
            + "batch \(config.batchSize), seed \(config.seed)" + (config.augmentation.map { ", augment \($0)" } ?? "")
    }
}
