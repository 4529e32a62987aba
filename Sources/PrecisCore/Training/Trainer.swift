import Foundation
import RealModule

/// How the learning rate changes between epochs.
public enum LearningRateSchedule: Equatable, Sendable, CustomStringConvertible {
    case constant
    /// Multiply by `factor` every `every` epochs.
    case stepDecay(every: Int, factor: Double)

    /// The rate for `epoch` (0-based) starting from `base`.
    public func rate(base: Double, epoch: Int) -> Double {
        switch self {
        case .constant: return base
        case let .stepDecay(every, factor): return base * Double.pow(factor, Double(epoch / every))
        }
    }

    public var description: String {
        switch self {
        case .constant: return "constant"
        case let .stepDecay(every, factor): return "step:\(every):\(factor)"
        }
    }

    /// Parses `constant` or `step:EVERY:FACTOR` (EVERY a positive whole number, FACTOR positive).
    public init(parsing text: String) throws {
        if text == "constant" {
            self = .constant
            return
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "step" else {
            throw ModelError.badSpec("a schedule is constant or step:EVERY:FACTOR")
        }
        guard let every = Int(parts[1]), every > 0 else {
            throw ModelError.badSpec("step:EVERY:FACTOR takes EVERY, a whole number of epochs from 1")
        }
        guard let factor = Double(parts[2]), factor > 0, factor.isFinite else {
            throw ModelError.badSpec("step:EVERY:FACTOR takes FACTOR, a positive number")
        }
        self = .stepDecay(every: every, factor: factor)
    }
}

/// The recipe of a training run.
public struct TrainingConfig: Sendable {
    public var epochs = 20
    public var batchSize = 100
    public var optimizer = OptimizerKind.adam
    /// nil: the optimizer's book default.
    public var learningRate: Double?
    public var schedule = LearningRateSchedule.constant
    public var seed: UInt64 = 0
    /// Measure every epoch but the last on a sample of this many images of each split, stratified
    /// by class and drawn with the run's seed (the book's `evaluate_sample_num_per_epoch`).
    public var evaluationSample: Int?
    /// Random transforms of each training batch, drawn from the seed, the epoch and the batch.
    public var augmentation: Augmentation?
    /// The precision of the forward and backward passes; the network must store values in its format.
    public var precision = TrainingPrecision.float32
    /// The loss scaling of the mixed precisions (dynamic from 2^15 by default).
    public var lossScaler = LossScaler()
    /// The weight file the run fine-tunes, or empty when it starts from weights drawn from the seed.
    public var startedFrom = ""
    /// The format quantization-aware training simulates, or empty.
    public var quantizationAware = ""

    public init() {}
}

/// What a run produced, epoch by epoch.
public struct TrainingHistory: Sendable, Equatable {
    /// Loss of every iteration.
    public var loss: [Double] = []
    public var trainAccuracy: [Double] = []
    public var testAccuracy: [Double] = []
    public var epochSeconds: [Double] = []
    /// Wall time of the whole run, evaluation included.
    public var seconds = 0.0
    /// Wall time of the training iterations alone (forward, backward, update), without evaluation.
    public var trainingSeconds = 0.0
    public var iterations = 0
    /// Mixed precision: the loss scale of every iteration, and the iterations (1-based) whose update
    /// was skipped because a gradient overflowed.
    public var lossScale: [Double] = []
    public var skippedSteps: [Int] = []
    /// Per epoch, the fraction of learnable values that the epoch's applied updates left exactly as
    /// they were: the change rounded away (the fate of small updates to half-precision weights).
    public var unchangedFraction: [Double] = []
    /// Per layer with learnable tensors, its parameter gradients that half would flush to zero or
    /// hold as subnormals, over the whole run.
    public var gradientUnderflow: [GradientUnderflow] = []

    public init() {}
}

/// Everything a run needs to continue after `epochsDone` epochs exactly as if it had not stopped
/// (the network's tensors aside): its history, the batch-order generator, the optimizer's state and
/// the dropout layers' generators.
public struct TrainingCheckpoint: Sendable, Equatable {
    public var epochsDone: Int
    public var history: TrainingHistory
    public var order: RandomSource
    public var optimizerIteration: Int
    /// The optimizer's two state tensors per learnable tensor, in parameter order (empty before
    /// the first update).
    public var moments: [[Double]], secondMoments: [[Double]]
    public var dropout: [RandomSource]
    /// The loss scaler's state (mixed precision).
    public var lossScaler: LossScaler

    public init(
        epochsDone: Int, history: TrainingHistory, order: RandomSource, optimizerIteration: Int,
        moments: [[Double]], secondMoments: [[Double]], dropout: [RandomSource], lossScaler: LossScaler = LossScaler()
    ) {
        (self.epochsDone, self.history, self.order, self.optimizerIteration) = (
            epochsDone, history, order, optimizerIteration
        )
        (self.moments, self.secondMoments, self.dropout, self.lossScaler) = (
            moments, secondMoments, dropout, lossScaler
        )
    }
}

/// Progress of a run, for a progress line.
public enum TrainingEvent: Sendable {
    /// After each iteration: epoch (1-based), iteration within the epoch, iterations per epoch, loss.
    case iteration(epoch: Int, index: Int, perEpoch: Int, loss: Double)
    /// After each epoch's evaluation.
    case epochEnd(epoch: Int, loss: Double, trainAccuracy: Double, testAccuracy: Double, seconds: Double)
}

/// Trains a network on a data set: each epoch visits a fresh permutation of the training set in
/// mini-batches (the last one may be smaller), then measures accuracy. A loss or weight that is no
/// longer finite stops the run with `TrainingError.diverged`. The seed fixes the
/// permutations (and dropout masks through the network), so the same seed gives the same weights.
public struct Trainer {
    public var config: TrainingConfig

    public init(_ config: TrainingConfig) {
        self.config = config
    }

    /// Trains `net` (from `resume`, with `net` holding the checkpoint's tensors, when given),
    /// calling `checkpoint` after every epoch with the state to continue from. `around(x, body)`, when
    /// given, runs `body`: the forward and backward pass of batch `x`, or with `x` nil the epoch's
    /// evaluation, and may change the network around it (`QuantizationAwareTraining.around` does).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    public func run<T: NetworkScalar>(
        _ net: Network<T>, on data: Dataset, resume: TrainingCheckpoint? = nil,
        checkpoint: (TrainingCheckpoint) throws -> Void = { _ in },
        around: ((Tensor<T>?, () -> Void) throws -> Void)? = nil, events: (TrainingEvent) -> Void = { _ in }
    ) throws -> TrainingHistory {
        func wrapped(_ x: Tensor<T>?, _ body: () -> Void) throws {
            if let around { try around(x, body) } else { body() }
        }
        let optimizer = Optimizer<T>(config.optimizer, learningRate: config.learningRate)
        let base = optimizer.learningRate
        var rng = resume?.order ?? RandomSource(seed: config.seed ^ 0x7261_696E)
        var history = resume?.history ?? TrainingHistory()
        var scaler = resume?.lossScaler ?? config.lossScaler
        if let resume {
            optimizer.state = (resume.optimizerIteration, resume.moments, resume.secondMoments)
            net.dropoutGenerators = resume.dropout
        }
        precondition(net.storage == config.precision.storage, "the network must store values as it trains")
        precondition(
            (T.precisionName == "float16") == (config.precision == .float16), "float16 trains a Network<Float16>")
        let mixed = config.precision.isMixed
        let start = Date().addingTimeInterval(-history.seconds)
        let perEpoch = (data.trainCount + config.batchSize - 1) / config.batchSize
        let params = net.parameters.map(\.parameter)
        var counter = UpdateCounter(net.parameters, underflow: history.gradientUnderflow)
        let sample = config.evaluationSample.map { ImageSelection.stratified(count: $0, seed: config.seed) }
        let (trainSample, testSample) = (sample?.indices(data.trainLabels), sample?.indices(data.testLabels))
        for epoch in (resume?.epochsDone ?? 0)..<config.epochs {
            let epochStart = Date()
            optimizer.learningRate = config.schedule.rate(base: base, epoch: epoch)
            let order = rng.permutation(data.trainCount)
            var epochLoss = 0.0
            let loopStart = Date()
            for i in 0..<perEpoch {
                let idx = order[i * config.batchSize..<min((i + 1) * config.batchSize, data.trainCount)]
                let x: Tensor<T> = batch(data, idx, epoch: epoch, index: i)
                let labels = idx.map { data.trainLabels[$0] }
                var loss = 0.0, apply = true
                if mixed {
                    let (l, finite) = net.mixedGradient(x, labels, scale: scaler.scale)
                    (loss, apply) = (Double(l), finite)
                    history.lossScale.append(scaler.scale)
                } else {
                    var l: T = 0
                    try wrapped(x) { l = net.gradient(x, labels, inputGradient: false).loss }
                    loss = Double(l)
                }
                guard loss.isFinite else {
                    // In half, the usual cause is measured: squared-gradient averages flushed to 0.
                    let zeros = T.precisionName == "float16" ? optimizer.zeroSquaredAverages : nil
                    // Before any update, only the initial weights can be to blame.
                    let initial = history.loss.isEmpty && resume == nil && config.startedFrom.isEmpty
                    throw TrainingError.diverged(
                        iteration: epoch * perEpoch + i + 1, epoch: epoch + 1,
                        what: "the loss is \(loss)" + (initial ? " with the initial weights, before any update" : "")
                            + (zeros.map {
                                String(
                                    format: "; %.1f%% of the optimizer's squared-gradient averages are 0 in float16, "
                                        + "so those weights moved by lr·m/eps", 100 * $0)
                            } ?? ""),
                        hint: zeros != nil
                            ? "train with momentum instead, or in a mixed precision"
                            : initial ? "try a smaller weight-init scale" : nil)
                }
                if mixed && !scaler.step(finite: apply) {
                    history.skippedSteps.append(epoch * perEpoch + i + 1)
                } else {
                    counter.beforeUpdate()
                    optimizer.update(params)
                    counter.afterUpdate()
                }
                history.loss.append(loss)
                epochLoss += loss
                events(.iteration(epoch: epoch + 1, index: i + 1, perEpoch: perEpoch, loss: loss))
            }
            history.trainingSeconds += Date().timeIntervalSince(loopStart)
            history.unchangedFraction.append(counter.unchangedFraction())
            history.gradientUnderflow = counter.underflow
            if let bad = params.first(where: { !$0.value.data.allSatisfy(\.isFinite) }) {
                throw TrainingError.diverged(
                    iteration: (epoch + 1) * perEpoch, epoch: epoch + 1,
                    what: "weight \(bad.name) holds a non-finite value")
            }
            // Every epoch but the last is measured on the same stratified samples (when asked).
            let last = epoch == config.epochs - 1
            var (train, test) = (0.0, 0.0)
            try wrapped(nil) {
                train = accuracy(
                    net, data.trainImages, data.trainLabels, shape: data.imageShape, on: last ? nil : trainSample)
                test = accuracy(
                    net, data.testImages, data.testLabels, shape: data.imageShape, on: last ? nil : testSample)
            }
            history.trainAccuracy.append(train)
            history.testAccuracy.append(test)
            history.epochSeconds.append(Date().timeIntervalSince(epochStart))
            events(
                .epochEnd(
                    epoch: epoch + 1, loss: epochLoss / Double(perEpoch), trainAccuracy: train, testAccuracy: test,
                    seconds: history.epochSeconds.last!))
            history.iterations = perEpoch * (epoch + 1)
            history.seconds = Date().timeIntervalSince(start)
            let state = optimizer.state
            try checkpoint(
                TrainingCheckpoint(
                    epochsDone: epoch + 1, history: history, order: rng, optimizerIteration: state.iteration,
                    moments: state.first, secondMoments: state.second, dropout: net.dropoutGenerators,
                    lossScaler: scaler))
        }
        return history
    }
}

extension Trainer {
    /// Training batch `index` of `epoch`: the images at `idx`, transformed by the augmentation when
    /// there is one, with a generator seeded by the run's seed, the epoch and the batch alone (so a
    /// batch is the same however the run got there).
    func batch<T: NetworkScalar>(_ data: Dataset, _ idx: ArraySlice<Int>, epoch: Int, index: Int) -> Tensor<T> {
        guard let augmentation = config.augmentation else { return data.batch(data.trainImages, idx) }
        var images = data.batch(data.trainImages, idx, as: Float.self).data
        var rng = RandomSource(
            seed: (config.seed &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(epoch) << 32 | UInt64(index)) ^ 0x6175_676D)
        augmentation.apply(&images, count: idx.count, shape: data.imageShape, rng: &rng)
        return Tensor(shape: [idx.count] + data.imageShape, data: images.map { T($0) })
    }
}

/// The fraction of the images at `indices` (all when nil) that `net` classifies correctly.
public func accuracy<T: NetworkScalar>(
    _ net: Network<T>, _ images: [Float], _ labels: [Int], shape: [Int], on indices: [Int]? = nil
) -> Double {
    let per = shape.reduce(1, *), picked = indices ?? Array(labels.indices)
    let predicted = net.classify(picked.flatMap { images[$0 * per..<($0 + 1) * per] }, count: picked.count)
    return Double(zip(predicted, picked.map { labels[$0] }).filter { $0 == $1 }.count) / Double(max(picked.count, 1))
}

/// Training that cannot go on.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// The loss or a weight became infinite or NaN.
    /// `hint`: what to try instead (nil: a smaller learning rate).
    case diverged(iteration: Int, epoch: Int, what: String, hint: String? = nil)

    public var description: String {
        switch self {
        case let .diverged(iteration, epoch, what, hint):
            return "training diverged at iteration \(iteration) (epoch \(epoch)): \(what); "
                + (hint ?? "try a smaller learning rate") + " (nothing was written)"
        }
    }
}
