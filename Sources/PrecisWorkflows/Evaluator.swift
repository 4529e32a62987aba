import Foundation
import PrecisCore
import PrecisWeights

/// The precision report of one weight file on one data set: which networks to run, running them,
/// explaining one precision layer by layer, and recording the results in the file.
public final class Evaluator {
    public let store: WeightStore, dataset: Dataset
    /// The input calibration of the number formats and int8 rounded now, shared by every row.
    public let calibration: FormatCalibration

    /// Refuses a data set whose images or classes do not fit the network.
    public init(store: WeightStore, dataset: Dataset) throws {
        if let problem = dataset.problem(for: store.spec) { throw DataError(file: store.path, problem: problem) }
        (self.store, self.dataset) = (store, dataset)
        calibration = FormatCalibration(store: store, dataset: dataset)
    }

    /// The networks `selection` names, in order, and notes on those made now: `all` adds every stored
    /// variant; `int8` every stored int8 variant, or without one the default scheme calibrated now.
    public func entries(_ selection: PrecisionSelection) throws -> (entries: [EvaluationEntry], notes: [String]) {
        let int8Stored = store.int8VariantNames, formatStored = store.formatVariantNames
        let named = selection.precisions.map(\.name)
        var floating: [String] = [], int8: [String] = [], formats: [String] = []
        for precision in selection.precisions {
            switch precision {
            case .floating: floating.append(precision.name)
            case .int8: int8.append(precision.name)
            case .format, .searched: formats.append(precision.name)
            }
        }
        let wantsInt8 = selection.all || selection.items.contains(.anyInt8)
        int8 = (wantsInt8 ? int8Stored : []) + int8.filter { !(wantsInt8 && int8Stored.contains($0)) }
        if selection.all { formats += (formatStored + store.searchedVariantNames).filter { !named.contains($0) } }
        var entries = try (floating + int8).map {
            try store.evaluationEntry(Precision(name: $0)!, formats: calibration)
        }
        var notes: [String] = []
        if selection.items.contains(.anyInt8) && int8Stored.isEmpty {
            let (entry, note) = try calibration.int8Now()
            entries.append(entry)
            notes.append(note)
        }
        entries += try formats.map { try store.evaluationEntry(Precision(name: $0)!, formats: calibration) }
        return (entries, notes)
    }

    /// `precision` explained: float32 with one layer at a time in it, on `test`.
    public func explanation(
        _ precision: Precision, test: TestImages, float32Predicted: [Int],
        progress: @escaping (Int, Int) -> Void = { _, _ in }
    ) throws -> Explanation {
        let spec = store.spec, master = store.master.tensors, name = precision.name
        func explain<Model: QuantizedLayers>(_ model: Model, _ tensors: [String: Tensor<Double>]) throws
            -> Explanation
        {
            try explainQuantized(
                model, name: name, spec: spec, master: master, tensors: tensors, test: test,
                float32Predicted: float32Predicted, progress: progress)
        }
        switch precision {
        case .floating(let mode):
            return try explainPrecision(
                mode, spec: spec, master: master, tensors: try store.tensors(for: mode), test: test,
                float32Predicted: float32Predicted
            ) { progress($0, test.count) }
        case .int8:
            let v = try store.variant(name, of: QuantizedModel.self)
            return try explain(v.model, v.tensors)
        case .format(let mode, let mixed):
            let run = try store.formatRun(mode, mixed: mixed, formats: calibration)
            return try explain(run.network.model, run.tensors)
        case .searched:
            throw ModelError.badSpec("--explain takes one format at a time; \(name) mixes them by layer")
        }
    }

    /// Stores `report`'s rows under `/evaluations`, with each row's predictions on the images of
    /// `selection`; `replacingLarger` lets a row of fewer images replace one of more.
    public func record(
        _ report: PrecisionReport, _ evaluation: PrecisionEvaluation, selection: ImageSelection, inputScale: Double,
        replacingLarger: Bool
    ) throws {
        let recordedAt = ISO8601DateFormatter().string(from: Date())
        let indices = selection.indices(dataset.testLabels)
        try store.record(
            report.results.map {
                RecordedEvaluation(
                    result: $0, dataset: dataset.name, inputScale: inputScale, recordedAt: recordedAt,
                    predictions: evaluation.predicted[$0.precision],
                    testIndices: indices.count == dataset.testCount ? nil : indices)
            }, replacingLarger: replacingLarger)
    }

    /// Writes each row's logits to `<prefix>-<precision>.f64` (little-endian float64, images × classes).
    public static func writeLogits(_ evaluation: PrecisionEvaluation, prefix: String) throws {
        for r in evaluation.results {
            let logits = evaluation.logits[r.precision, default: []]
            try logits.withUnsafeBytes { try AtomicFiles.write(Data($0), to: "\(prefix)-\(r.precision).f64") }
        }
    }
}
