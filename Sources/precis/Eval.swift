import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

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
            "Comma-separated precisions: \(PrecisionChoice.valueList), or all. int8 runs every stored int8 variant or, "
                + "without one, the default scheme calibrated now; int8-<scheme> one stored variant; "
                + "bfloat16 names bfloat16-acc32. Default: all (with --explain, float32 and the explained one).",
            valueName: "precision"), transform: PrecisionList.init(parsing:))
    var precision: PrecisionList?

    @OptionGroup var data: DataOptions

    @OptionGroup var sample: SampleOptions

    @Option(parsing: .unconditional, help: "Seed of the --limit sample.", transform: seedValue)
    var seed: UInt64?

    @Option(
        help: ArgumentHelp(
            "Rank the layers by what computing each alone in this precision costs.", valueName: "precision"),
        transform: ExplainChoice.init(parsing:))
    var explain: ExplainChoice?

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
    var precisions: PrecisionList {
        if let precision { return precision }
        guard let explain else { return PrecisionList(argument: "all")! }
        return PrecisionList(argument: "float32," + explain.name)!
    }

    /// What `--precision int8` calibrates when the file stores no int8 variant: on the shipped
    /// network, the scheme and method that change the fewest predictions (`quantize --compare`).
    static let defaultInt8Scheme = QuantScheme(weights: .perChannel, activations: .uint8Asymmetric)
    static let defaultInt8Calibration = CalibrationMethod.mse

    func validate() throws {
        if seed != nil && sample.limit == nil { throw ValidationError("--seed draws the --limit sample: give --limit") }
        // Checked before evaluating, so that a bad path does not throw the run away.
        if let reportFolder, let problem = folderOutputProblem(reportFolder, force: force) {
            throw ValidationError("--report \(reportFolder): \(problem)")
        }
        if record, let problem = editProblem(file) { throw ValidationError("--record into \(file): \(problem)") }
        if let saveLogits, let problem = outputProblem(saveLogits + "-float32.f64", force: true) {
            throw ValidationError("--save-logits \(saveLogits): \(problem)")
        }
        guard inputScale.isFinite && inputScale > 0 else {
            throw ValidationError("--input-scale must be a positive number")
        }
    }

    func run() throws {
        try reportingErrors {
            let store = try WeightStore(file), spec = store.spec
            try store.spec.checkMemory(batch: 100, training: false)
            let dataset = try data.load(fallback: store.master.dataset)
            if let problem = dataset.problem(for: spec) { throw DataError(file: file, problem: problem) }
            let selection = sample.selection(seed: seed ?? 0)
            let test = dataset.testImages(selection, inputScale: inputScale), n = test.count
            let calibration = FormatCalibration(store: store, dataset: dataset)
            let precision = precisions
            var entries = try (precision.modes.map(\.rawValue) + int8Names(store)).map {
                try store.evaluationEntry($0, formats: calibration)
            }
            var notes: [String] = []
            if precision.choices.contains(.int8) && store.int8VariantNames.isEmpty {
                let (entry, note) = try calibratedNow(store, calibration)
                entries.append(entry)
                notes.append(note)
            }
            entries += try formatNames(store).map { try store.evaluationEntry($0, formats: calibration) }
            if record && !force, let larger = try store.largerRecords(entries.map { ($0.name, n) }).first {
                throw DataError(file: file, problem: larger)
            }
            if let saveLogits {
                for name in entries.map(\.name) {
                    if let problem = outputProblem("\(saveLogits)-\(name).f64", force: force) {
                        throw ValidationError("--save-logits \(saveLogits)-\(name).f64: \(problem)")
                    }
                }
            }
            let progress = ProgressLine(quiet: quiet || json)
            let evaluation = try PrecisionEvaluation(
                spec: spec, master: store.master.tensors, entries: entries, test: test,
                keepLogits: saveLogits != nil
            ) { done in
                progress.update("eval", done: done, total: n, unit: "img")
            }
            progress.clear()
            if let saveLogits { try writeLogits(evaluation, prefix: saveLogits) }
            let explanation = try explain.map {
                try self.explanation($0, store, calibration, test, evaluation.float32Predicted)
            }
            let report = PrecisionReport(
                file: file, dataset: dataset.name, model: spec.name, images: n,
                sample: selection.text(of: dataset.testCount), inputScale: Double(inputScale),
                layerNames: spec.layerNames, results: evaluation.results, explain: explanation, notes: notes)
            // The report is printed first: a failed record loses nothing that was measured.
            if json { try printJSON(report) } else { print(report.text) }
            if record {
                let recordedAt = ISO8601DateFormatter().string(from: Date())
                let indices = selection.indices(dataset.testLabels)
                try store.record(
                    report.results.map {
                        RecordedEvaluation(
                            result: $0, dataset: dataset.name, inputScale: Double(inputScale), recordedAt: recordedAt,
                            predictions: evaluation.predicted[$0.precision],
                            testIndices: indices.count == dataset.testCount ? nil : indices)
                    }, replacingLarger: force)
                if !json { print("recorded under /evaluations in \(file)") }
            }
            if let reportFolder {
                let line = try PictureReportWriter(store: store, dataset: dataset, folder: reportFolder).write()
                if !json { print(line) }
            }
        }
    }

    /// The stored int8 variants to run: every one for `all`, and for `int8` when the file has any,
    /// then those named.
    func int8Names(_ store: WeightStore) -> [String] {
        let precision = precisions, stored = store.int8VariantNames
        var names = precision.all || (precision.choices.contains(.int8) && !stored.isEmpty) ? stored : []
        for case .int8Variant(let name) in precision.choices where !names.contains(name) { names.append(name) }
        return names
    }

    /// The number formats to run: those named, and for `all` every stored format variant too.
    func formatNames(_ store: WeightStore) -> [String] {
        let precision = precisions, named = precision.formats
        return named + (precision.all ? store.formatVariantNames.filter { !named.contains($0) } : [])
    }

    /// The default int8 scheme calibrated on the spot (not stored), as `precis quantize` would, and
    /// a note saying how to store it.
    func calibratedNow(_ store: WeightStore, _ calibration: FormatCalibration) throws -> (EvaluationEntry, String) {
        let spec = store.spec, tensors = store.master.tensors
        let scheme = Self.defaultInt8Scheme, method = Self.defaultInt8Calibration
        let model = try QuantizedModel(
            spec: spec, tensors: tensors, scheme: scheme, observers: try calibration.observers, method: method)
        let count = try calibration.imageCount
        let name = WeightFile.int8VariantName(scheme),
            how = "calibrated now: \(method.rawValue), \(count) training images, seed 0; not stored"
        let entry = EvaluationEntry(
            .integer(name, try IntegerNetwork(spec: spec, model: model, tensors: tensors)), weights: how)
        return (
            entry,
            "\(name): \(how) (precis quantize \(file) --scheme \(scheme) --calibration \(method.rawValue) stores it)"
        )
    }

    /// `--explain`: one layer at a time in the chosen precision.
    func explanation(
        _ choice: ExplainChoice, _ store: WeightStore, _ calibration: FormatCalibration, _ test: TestImages,
        _ float32Predicted: [Int]
    ) throws -> Explanation {
        let progress = ProgressLine(quiet: quiet || json)
        defer { progress.clear() }
        switch choice {
        case .mode(let mode):
            return try explainPrecision(
                mode, spec: store.spec, master: store.master.tensors, tensors: try store.tensors(for: mode),
                test: test, float32Predicted: float32Predicted
            ) { done in
                progress.update("explain \(mode.rawValue)", done: done, total: test.count, unit: "img")
            }
        case .int8Variant(let name):
            let v = try store.int8Variant(name)
            return try explainInt8(
                name, spec: store.spec, model: v.model, master: store.master.tensors,
                tensors: store.floatTensors(of: v), dynamic: v.dynamic, test: test,
                float32Predicted: float32Predicted
            ) { done, total in
                progress.update("explain \(name)", done: done, total: total, unit: "img")
            }
        case .format(let name):
            guard case .format(let network) = try store.evaluationEntry(name, formats: calibration).network else {
                throw ValidationError("--explain \(name) is not a number format")
            }
            return try explainFormat(
                network, spec: store.spec, master: store.master.tensors, test: test, float32Predicted: float32Predicted
            ) { done in
                progress.update("explain \(name)", done: done, total: test.count, unit: "img")
            }
        }
    }

    func writeLogits(_ evaluation: PrecisionEvaluation, prefix: String) throws {
        for r in evaluation.results {
            let logits = evaluation.logits[r.precision, default: []]
            try logits.withUnsafeBytes { try AtomicFiles.write(Data($0), to: "\(prefix)-\(r.precision).f64") }
        }
    }
}

/// The calibration of everything `eval` quantizes now: the inputs of every convolution and affine
/// layer observed once, on the same 500 training images as `precis quantize` (stratified, seed 0),
/// for the default int8 scheme and the number formats that scale their inputs.
final class FormatCalibration {
    let store: WeightStore, dataset: Dataset
    static let images = 500
    private var cached: (observers: [Int: Observer], count: Int)?

    init(store: WeightStore, dataset: Dataset) { (self.store, self.dataset) = (store, dataset) }

    /// Observers of every convolution and affine layer's input, and how many images they saw,
    /// computed on first use.
    private var observed: (observers: [Int: Observer], count: Int) {
        get throws {
            if let cached { return cached }
            let (images, count) = drawCalibrationImages(dataset, count: Self.images, seed: 0)
            let observers = observeActivations(
                try Network<Float>(spec: store.spec, parameters: store.master.tensors), images: images, count: count)
            cached = (observers, count)
            return (observers, count)
        }
    }

    var observers: [Int: Observer] { get throws { try observed.observers } }
    var imageCount: Int { get throws { try observed.count } }

    func network(_ mode: FormatMode) throws -> FormatNetwork {
        try FormatNetwork(
            spec: store.spec, tensors: store.master.tensors, mode: mode,
            observers: mode.needsCalibration ? try observers : [:])
    }

    /// Where the row's weights came from.
    func describe(_ mode: FormatMode) -> String {
        "/model rounded now" + (mode.needsCalibration ? "; input scales from \(Self.images) training images" : "")
    }
}

extension WeightStore {
    /// The network `eval` runs for `name`: a floating precision mode with its weights (a stored
    /// variant's, or the master's), a number format rounded now, or a stored int8 variant on the
    /// integer path.
    func evaluationEntry(_ name: String, formats: FormatCalibration) throws -> EvaluationEntry {
        if let mode = PrecisionMode(rawValue: name) {
            return EvaluationEntry(.floating(mode, tensors: try tensors(for: mode)), weights: source(for: mode))
        }
        if variantNames.contains(name), WeightFile.formatMode(ofVariant: name) != nil {
            return EvaluationEntry(.format(try formatVariant(name).network), weights: "/variants/\(name)")
        }
        if let f = FormatMode(name: name) {
            return EvaluationEntry(.format(try formats.network(f)), weights: formats.describe(f))
        }
        let v = try int8Variant(name)
        let network = try IntegerNetwork(
            spec: spec, model: v.model, tensors: floatTensors(of: v), floatBytesPerValue: v.floatBytesPerValue,
            dynamic: v.dynamic)
        return EvaluationEntry(.integer(name, network), weights: "/variants/\(name)")
    }
}
