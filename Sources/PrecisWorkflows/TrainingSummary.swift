import PrecisCore

/// `precis train --json`: the run's summary and history.
public struct TrainingSummary: Encodable {
    public var schema = ReportSchema.train
    public let model: String, layers: String, dataset: String
    public let epochs: Int, seed: UInt64
    public let precision: String
    public let history: TrainingHistory
    public let output: String?

    public init(run: TrainingRun, history: TrainingHistory) {
        (model, layers, dataset) = (run.spec.name, run.spec.layerText, run.dataset.name)
        (epochs, seed, precision) = (run.config.epochs, run.config.seed, run.config.precision.rawValue)
        (self.history, output) = (history, run.output)
    }

    /// One line: the test accuracy, the time taken and what was written.
    public var text: String {
        String(
            format: "test accuracy %@ after %d %@; %.1f s wall, %d iterations at %.4f s each (evaluation excluded)",
            percentText(history.testAccuracy.last ?? 0), epochs, epochs == 1 ? "epoch" : "epochs", history.seconds,
            history.iterations, history.trainingSeconds / Double(history.iterations))
            + (output.map { "; wrote \($0)" } ?? "")
    }

    private enum CodingKeys: String, CodingKey {
        case schema, model, layers, dataset, epochs, seed, output, loss, trainAccuracy = "train_accuracy"
        case testAccuracy = "test_accuracy", seconds, trainingSeconds = "training_seconds"
        case secondsPerIteration = "seconds_per_iteration", secondsPerEpoch = "seconds_per_epoch", iterations
        case precision, skippedSteps = "skipped_steps", unchangedFraction = "unchanged_fraction"
        case gradientUnderflow = "gradient_underflow"
    }

    public func encode(to encoder: Encoder) throws {
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
