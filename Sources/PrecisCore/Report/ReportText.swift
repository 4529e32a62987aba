import Foundation

/// `99.50%` for a fraction, `n/a` for one that is not a number (a NaN a file holds).
public func percentText(_ x: Double) -> String { x.isFinite ? String(format: "%.2f%%", 100 * x) : "n/a" }

/// An SQNR cell: `exact` when there is no error, `-inf` when a value is infinite or NaN.
public func decibelText(_ x: Double) -> String {
    x.isInfinite ? (x > 0 ? "exact" : "-inf") : String(format: "%.1f", x)
}

/// A general number cell, with three significant digits.
func numberText(_ x: Double) -> String { String(format: "%.3g", x) }

extension PrecisionReport {
    /// The report as a person reads it: the summary table, the per-layer table of the floating
    /// mode and of the number format with the lowest logit SQNR and of every integer network, the
    /// explanation, the notes.
    public var text: String {
        let scale = inputScale == 1 ? "" : String(format: ", inputs x%g", inputScale)
        var out = ["\(file): \(layerNames.count) layers on \(dataset), \(sample)\(scale)"]
        // Images without an answer get a column of their own, where a run has any.
        let unanswered = results.contains { $0.vsFloat32.unanswered > 0 }
        var table = TextTable(
            [
                ("precision", .left), ("accuracy", .right), ("change vs float32 [95% CI]", .left),
                ("differs", .right),
            ] + (unanswered ? [("no answer", .right)] : []) + [
                ("agree", .right), ("logit max err", .right), ("logit SQNR dB", .right),
                ("inf+NaN", .right), ("model KiB", .right), ("ratio", .right), ("images/s", .right),
            ])
        for r in results {
            table.add(
                [r.precision, percentText(r.accuracy), r.vsFloat32.text, "\(r.vsFloat32.differs)"]
                    + (unanswered ? ["\(r.vsFloat32.unanswered)"] : []) + [
                        String(format: "%.3f%%", 100 * r.vsFloat32.agreement), numberText(r.logits.maxAbsError),
                        decibelText(r.logits.sqnrDB), "\(r.nonfinite)",
                        String(format: "%.1f", Double(r.modelBytes) / 1024),
                        String(format: "%.2fx", r.modelRatioToFloat32), String(format: "%.0f", r.imagesPerSecond),
                    ])
        }
        out += table.lines()
        if unanswered {
            out.append(
                "no answer: images whose logits are not all finite; each counts as wrong and as differing from float32")
        }
        func worst(_ rows: [ModeResult]) -> [ModeResult] {
            rows.min { $0.logits.sqnrDB < $1.logits.sqnrDB }.map { [$0] } ?? []
        }
        let floating = worst(
            results.filter { !$0.integer && !$0.isFormat && $0.precision != PrecisionMode.float64.rawValue })
        for r in floating + worst(results.filter(\.isFormat)) + results.filter(\.integer) {
            out.append("")
            out.append(
                r.integer
                    ? "per layer, \(r.precision) (integer-only inference, dequantized) against float64:"
                    : r.isFormat
                        ? "per layer, \(r.precision) against float64 (the number format with the lowest logit SQNR):"
                        : "per layer, \(r.precision) against float64 (the floating mode with the lowest logit SQNR):")
            out += Self.layerTable(r.layers).lines()
            if r.layers.contains(where: { $0.errors == nil }) {
                out.append("fused: computed inside the int8 requantization, no values of its own")
            }
        }
        if let explain { out += [""] + explain.lines }
        for note in notes { out += ["", note] }
        return out.joined(separator: "\n")
    }

    /// One row per layer: relative L2, max abs error, SQNR, inf, NaN, subnormal and flushed counts.
    static func layerTable(_ layers: [LayerError]) -> TextTable {
        var table = TextTable([
            ("layer", .left), ("relative L2", .right), ("max abs error", .right), ("SQNR dB", .right),
            ("inf", .right), ("NaN", .right), ("subnormal", .right), ("flushed", .right),
        ])
        for l in layers {
            guard let e = l.errors else {
                table.add([l.layer, "fused", "-", "-", "-", "-", "-", "-"])
                continue
            }
            table.add([
                l.layer, numberText(e.relativeL2), numberText(e.maxAbsError), decibelText(e.sqnrDB), "\(e.infinities)",
                "\(e.nans)", "\(e.subnormals)", "\(e.flushedToZero)",
            ])
        }
        return table
    }
}

extension Explanation {
    /// The ranked table and a one-line verdict.
    public var lines: [String] {
        var out = [
            "explain \(precision): float32 with one layer at a time in \(precision)"
                + (simulated ? " (simulated in Float)" : "") + "; layers that lower accuracy beyond noise first,",
            "then the rest by the error they put into the logits (lowest SQNR first):",
        ]
        var table = TextTable([
            ("layer", .left), ("change vs float32 [95% CI]", .left), ("differs", .right),
            ("logit SQNR dB", .right),
        ])
        for e in layers {
            table.add([e.layer, e.vsFloat32.text, "\(e.vsFloat32.differs)", decibelText(e.logits.sqnrDB)])
        }
        out += table.lines()
        let hurting = layers.filter(\.vsFloat32.isLossBeyondNoise)
        out.append(
            hurting.isEmpty
                ? "no single layer lowers accuracy beyond noise (every 95% interval holds 0)"
                : "layers that lower accuracy beyond noise: " + hurting.map(\.layer).joined(separator: ", "))
        return out
    }
}
