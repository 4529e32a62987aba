import PrecisCore
import PrecisWeights
import PrecisWorkflows

extension Quantize {
    /// Every scheme × calibration method (with bias correction if asked, and dynamic quantization
    /// with min-max): the comparison table, or its JSON.
    func runCompare(_ study: QuantizationStudy, _ store: WeightStore, dataset: String) throws {
        let progress = ProgressLine(quiet: quiet || json)
        let report = try compareSchemes(
            study, file: file, dataset: dataset, schemes: scheme.values, methods: calibration.values,
            percentile: percentile, seed: seed, biasCorrection: biasCorrection, bootstrap: bootstrap ?? 0
        ) { stage, done, total in
            let unit = stage == "calibrate" ? "runs" : stage == "bootstrap" ? "resamples" : "img"
            progress.update(stage, done: done, total: total, unit: unit)
        }
        progress.clear()
        // The table is printed first: a failed record loses nothing that was measured.
        if json { try printJSON(report) } else { print(report.text) }
        if record {
            try store.recordComparison(report)
            if !json { print("recorded under /comparisons/int8 in \(file)") }
        }
    }
}
