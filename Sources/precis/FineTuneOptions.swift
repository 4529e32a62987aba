import ArgumentParser
import PrecisCore

/// `train --from` and `--qat`: fine-tuning a trained network, quantization-aware if asked.
struct FineTuneOptions: ParsableArguments {
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

    @Flag(
        help: "With --qat: learn the weight scales and int8 input ranges too (LSQ); int8 and int4 weights only.")
    var learnScales = false

    /// The quantization-aware target, if any.
    var target: QATTarget? { get throws { try qat.map { try QATTarget(parsing: $0, calibration: calibration) } } }

    /// Refuses fine-tuning options that do not go together, or with `training`'s settings.
    func check(_ training: TrainingOptions, checkpoint: String?, resume: String?) throws {
        if qat != nil {
            guard from != nil else { throw ValidationError("--qat fine-tunes a trained network: give --from FILE") }
            let others: [Any?] = [training.model, training.weightInit, training.precision, training.lossScale]
            if (others + [checkpoint, resume]).contains(where: { $0 != nil }) {
                throw ValidationError(
                    "--qat fine-tunes the --from network in float32: no --model, --init, --precision, --loss-scale, "
                        + "--checkpoint or --resume")
            }
            do { _ = try target } catch { throw ValidationError("--qat: \(error)") }
            if learnScales, let target = try target, !target.learnsSteps {
                throw ValidationError(
                    "--learn-scales: \(target) takes its scales from the values; it learns int8 and int4 scales")
            }
            guard (qatWarmup ?? 0) >= 0 else { throw ValidationError("--qat-warmup must be 0 or more") }
        } else if calibration != nil {
            throw ValidationError("--calibration chooses the int8 input ranges of --qat")
        } else if qatWarmup != nil || learnScales {
            throw ValidationError("--qat-warmup and --learn-scales go with --qat")
        }
        if from != nil
            && (training.model != nil || training.weightInit != nil || training.normalize != nil || resume != nil)
        {
            throw ValidationError("--from starts from a trained network: no --model, --init, --normalize or --resume")
        }
    }
}
