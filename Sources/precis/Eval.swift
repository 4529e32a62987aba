import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights
import PrecisWorkflows

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The precision report: a trained network in several precisions, side by side, layer by layer.",
        discussion: """
            Every mode runs the full test set against float64 (per-layer errors) and float32 (accuracy change, \
            disagreements). The same stored parameters are rounded into Network<Double>, Network<Float> and \
            Network<Float16>; a stored variant (precis export) is used for the modes it serves.
            """)

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Option(
        help: ArgumentHelp(
            "Comma-separated precisions: \(PrecisionSelection.valueList). int8 runs every stored int8 variant or, "
                + "without one, the default scheme calibrated now; int8-<scheme> one stored variant; "
                + "bfloat16 names bfloat16-acc32. Default: all (with --explain, float32 and the explained one).",
            valueName: "precision"), transform: { try parsedOption(PrecisionSelection.init(parsing:), $0) })
    var precision: PrecisionSelection?

    @OptionGroup var data: DataOptions

    @OptionGroup var sample: SampleOptions

    @Option(parsing: .unconditional, help: "Seed of the --limit sample.", transform: seedValue)
    var seed: UInt64?

    @Option(
        help: ArgumentHelp(
            "Rank the layers by what computing each alone in this precision costs.", valueName: "precision"),
        transform: explainedPrecision)
    var explain: Precision?

    @Option(help: ArgumentHelp("Multiply the inputs by K (stress beyond the trained range).", valueName: "K"))
    var inputScale: Float = 1

    @Option(
        help: ArgumentHelp(
            "Write each precision's logits to PREFIX-<precision>.f64 (little-endian float64, images × classes).",
            valueName: "prefix"))
    var saveLogits: String?

    @Flag(help: "Store the results in the file under /evaluations/<precision>.")
    var record = false

    @Flag(help: "Print the results as JSON (schema \(ReportSchema.eval)).")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    @Option(
        name: .customLong("report"),
        help: ArgumentHelp(
            "Then draw the file's picture report into this folder (after --record, with these results).",
            valueName: "dir"))
    var reportFolder: String?

    @Flag(
        help: ArgumentHelp(
            "Replace existing outputs (--save-logits files, the --report folder) and, with --record, records of "
                + "more images than this run's."))
    var force = false

    /// The precisions to run: `--precision`, else float32 and the `--explain` one, else all.
    var precisions: PrecisionSelection {
        get throws { try precision ?? PrecisionSelection(parsing: explain.map { "float32,\($0.name)" } ?? "all") }
    }

    func validate() throws {
        if seed != nil && sample.limit == nil { throw ValidationError("--seed draws the --limit sample: give --limit") }
        // Checked before evaluating, so that a bad path does not throw the run away.
        if let reportFolder, let problem = folderRefusal(reportFolder, force: force) {
            throw ValidationError("--report \(reportFolder): \(problem)")
        }
        if record, let problem = editProblem(file) { throw ValidationError("--record into \(file): \(problem)") }
        if let saveLogits, let problem = outputRefusal(saveLogits + "-float32.f64", force: true) {
            throw ValidationError("--save-logits \(saveLogits): \(problem)")
        }
        guard inputScale.isFinite && inputScale > 0 else {
            throw ValidationError("--input-scale must be a positive number")
        }
    }

    func run() throws {
        try reportingErrors(file: file) {
            let store = try WeightStore(file), spec = store.spec
            try spec.checkMemory(batch: 100, training: false)
            let evaluator = try Evaluator(store: store, dataset: try data.load(fallback: store.master.dataset))
            let dataset = evaluator.dataset, selection = sample.selection(seed: seed ?? 0)
            let test = dataset.testImages(selection, inputScale: inputScale), n = test.count
            let (entries, notes) = try evaluator.entries(try precisions)
            if record && !force, let larger = try store.largerRecords(entries.map { ($0.name, n) }).first {
                throw DataError(file: file, problem: larger + forceHint)
            }
            for name in entries.map(\.name) {
                if let saveLogits, let problem = outputRefusal("\(saveLogits)-\(name).f64", force: force) {
                    throw ValidationError("--save-logits \(saveLogits)-\(name).f64: \(problem)")
                }
            }
            let progress = ProgressLine(quiet: quiet || json)
            let evaluation = try PrecisionEvaluation(
                spec: spec, master: store.master.tensors, entries: entries, test: test, keepLogits: saveLogits != nil
            ) { progress.update("eval", done: $0, total: n, unit: "img") }
            progress.clear()
            if let saveLogits { try Evaluator.writeLogits(evaluation, prefix: saveLogits) }
            let explanation = try explain.map { p in
                defer { progress.clear() }
                return try evaluator.explanation(p, test: test, float32Predicted: evaluation.float32Predicted) {
                    progress.update("explain \(p)", done: $0, total: $1, unit: "img")
                }
            }
            let report = PrecisionReport(
                file: file, dataset: dataset.name, model: spec.name, images: n,
                sample: selection.text(of: dataset.testCount), inputScale: Double(inputScale),
                layerNames: spec.layerNames, results: evaluation.results, explain: explanation, notes: notes)
            // The report is printed first: a failed record loses nothing that was measured.
            if json { try printJSON(report) } else { print(report.text) }
            if record {
                try evaluator.record(
                    report, evaluation, selection: selection, inputScale: Double(inputScale), replacingLarger: force)
                if !json { print("recorded under /evaluations in \(file)") }
            }
            if let reportFolder {
                let line = try PictureReportWriter(store: store, dataset: dataset, folder: reportFolder).write()
                if !json { print(line) }
            }
        }
    }
}
