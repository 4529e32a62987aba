import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights
import PrecisWorkflows

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network, or fine-tune one (quantization-aware if asked), and save its weights.",
        discussion: """
            --model takes simple (the book's SimpleConvNet), deep (DeepConvNet), or a layer list such as
            "conv(6,5,pad=2) relu maxpool(2) conv(16,5) relu maxpool(2) affine(120) relu affine(84) relu affine(10)".
            """)

    @OptionGroup var training: TrainingOptions

    @OptionGroup var data: DataOptions

    @OptionGroup var fineTune: FineTuneOptions

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
        if let output, let problem = outputRefusal(output, force: force) {
            throw ValidationError("--output \(output): \(problem)")
        }
        if let checkpoint, let problem = outputRefusal(checkpoint, force: force || checkpoint == resume) {
            throw ValidationError("--checkpoint \(checkpoint): \(problem)")
        }
        if let checkpoint, let output, samePath(checkpoint, output) {
            throw ValidationError("--checkpoint and --output name the same file, \(output): give each its own")
        }
        if let reportFolder, let problem = folderRefusal(reportFolder, force: force) {
            throw ValidationError("--report \(reportFolder): \(problem)")
        }
        if resume != nil && training.anySetting {
            throw ValidationError(
                "--resume continues the checkpoint's run with its own settings: give only the data, outputs and "
                    + "--checkpoint")
        }
        try fineTune.check(training, checkpoint: checkpoint, resume: resume)
        if reportFolder != nil && output == nil {
            throw ValidationError("--report draws the file --output writes: give both")
        }
    }

    func run() throws {
        try reportingErrors {
            let resumed = try resume.map(Checkpoint.read), from = fineTune.from
            let source = try from.map { try WeightStore($0).master }, start = resumed?.file ?? source
            let model = start?.spec.name ?? training.model ?? "simple"
            let dataset = try data.load(fallback: start?.dataset ?? (model == "simple" ? "mnist5k" : "fashion-mnist"))
            let target = try fineTune.target
            let config =
                resumed?.config
                ?? training.config(
                    fineTuning: source != nil,
                    startedFrom: from.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "",
                    quantizationAware: target?.description ?? "")
            if let refusal = config.augmentation?.refusal(for: dataset.name) {
                throw ValidationError("--augment \(refusal)")
            }
            var run = try TrainingRun(
                spec: try start?.spec ?? typedModel(model, dataset: dataset), dataset: dataset, config: config)
            (run.start, run.resumed, run.checkpoint, run.output, run.overwrite) = (
                start, resumed, checkpoint, output, force
            )
            do {
                run.normalization = try training.normalization?.spread(over: dataset.imageShape[0])
            } catch { throw ValidationError("--normalize: \(error)") }
            let log = !quiet && !json, progress = ProgressLine(quiet: quiet || (json && target != nil))
            if let target, let from, let source {
                progress.update("calibrate", done: 0, total: 1, unit: "runs")
                try run.spec.checkMemory(batch: config.batchSize, training: true)
                let summary = try QATRun(
                    target: target, warmup: fineTune.qatWarmup ?? 100, learnSteps: fineTune.learnScales
                ).run(
                    from: from, source: source, dataset: dataset, config: config, output: output, overwrite: force,
                    log: { line in
                        progress.clear()
                        if log { print(line) }
                    },
                    events: progressEvents(progress, epochs: config.epochs, log: log, test: "test (quantized)"))
                return json ? try printJSON(summary) : print(summary.text)
            }
            if log { print(run.opening) }
            let history = try run.run(events: progressEvents(progress, epochs: config.epochs, log: log))
            if let reportFolder, let output {
                let line = try PictureReportWriter(
                    store: try WeightStore(output), dataset: dataset, folder: reportFolder
                )
                .write()
                if !json { print(line) }
            }
            let summary = TrainingSummary(run: run, history: history)
            if json { try printJSON(summary) } else { print(summary.text) }
        }
    }

    /// The network `--model` names (a layer list checked against the data set's images): a mistake in
    /// it is a command-line mistake, exit code 64.
    func typedModel(_ model: String, dataset: Dataset) throws -> ModelSpec {
        do {
            let spec = try ModelSpec.named(model, weightInit: training.weightInit, inputShape: dataset.imageShape)
            _ = try spec.shapes()
            return training.normalize == nil ? spec : spec.normalizingInput()
        } catch let error as ModelError {
            throw ValidationError("--model: \(error)")
        }
    }
}
