import ArgumentParser
import PrecisCore
import PrecisWorkflows

/// What `train` trains and how: the network, the optimizer and its schedule, the seed, the
/// augmentation and the precision.
struct TrainingOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "simple (the default), deep, resnet20, mobilenetv2, or a layer list.",
            discussion: "resnet20: He et al.'s CIFAR ResNet-20 (16, 32 and 64 channels, 0.27M weights). mobilenetv2: "
                + "inverted residual blocks sized for 28x28 images (a 16-channel stem at full resolution, then "
                + "16, 24, 32, 64 and 96 channels at 28, 14, 7, 4 and 4 pixels; 0.24M weights)."))
    var model: String?

    @Option(
        name: .customLong("init"),
        help: "Weight init: he, xavier or normal:STD, STD in (0, 10] (default: the model's).",
        transform: { try parsedOption(WeightInit.init(parsing:), $0) })
    var weightInit: WeightInit?

    @Option(
        help: ArgumentHelp(
            "Normalize the input per channel inside the network: auto (the training images' own mean and standard "
                + "deviation) or MEAN/STD (comma-separated, one per channel or one for all). The weight file keeps "
                + "it, and every command applies it.", valueName: "auto|mean/std"))
    var normalize: String?

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

    func validate() throws {
        guard (1...1_000_000).contains(epochs ?? 1) else { throw ValidationError("--epochs must be from 1 to 1000000") }
        guard (1...1_000_000).contains(batchSize ?? 1) else {
            throw ValidationError("--batch-size must be from 1 to 1000000")
        }
        if let lossScale {
            guard precision?.isMixed == true else {
                throw ValidationError("--loss-scale goes with --precision mixed-float16 or mixed-bfloat16")
            }
            guard lossScale == "dynamic" || (Double(lossScale).map { $0 >= 1 && $0 <= 0x1p60 } ?? false) else {
                throw ValidationError("--loss-scale must be dynamic or a number from 1 to 2^60")
            }
        }
        if let model, !["simple", "deep", "resnet20", "mobilenetv2"].contains(model) {
            do { _ = try LayerSpec.parseGraph(model) } catch { throw ValidationError("--model: \(error)") }
        }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) {
            throw ValidationError("--learning-rate must be positive")
        }
        if let evalSample, evalSample <= 0 { throw ValidationError("--eval-sample must be positive") }
        do { _ = try normalization } catch { throw ValidationError("--normalize: \(error)") }
    }

    /// `--normalize` as statistics: nil for `auto` (the training images' own) or when not given.
    var normalization: ChannelStatistics? {
        get throws { try normalize.flatMap { $0 == "auto" ? nil : try ChannelStatistics(parsing: $0) } }
    }

    /// Whether any setting of the run was given (a resumed run keeps its own).
    var anySetting: Bool {
        let settings: [Any?] = [
            model, weightInit, normalize, epochs, batchSize, optimizer, learningRate, lrSchedule, seed, precision,
            lossScale,
            evalSample, augment,
        ]
        return settings.contains { $0 != nil }
    }

    /// The run's settings, with the defaults of a fresh run or, `fineTuning`, of fine-tuning.
    func config(fineTuning: Bool, startedFrom: String, quantizationAware: String) -> TrainingConfig {
        var config = TrainingConfig()
        config.epochs = epochs ?? (fineTuning ? 2 : 20)
        config.batchSize = batchSize ?? 100
        config.optimizer = optimizer ?? (precision == .float16 ? .momentum : .adam)
        config.learningRate = learningRate ?? (fineTuning ? QATRun.fineTuningLearningRate : nil)
        (config.startedFrom, config.quantizationAware) = (startedFrom, quantizationAware)
        config.schedule = lrSchedule ?? .constant
        config.seed = seed ?? 0
        config.evaluationSample = evalSample
        config.augmentation = augment
        config.precision = precision ?? .float32
        if let fixed = lossScale.flatMap(Double.init) {
            config.lossScaler = LossScaler(scale: fixed, growthInterval: 0)
        }
        return config
    }
}
