import Foundation

/// The precision section, from recorded report rows: each mode's accuracy change against float32
/// with its 95% interval and its number of images (float64 included), and each mode's per-layer
/// SQNR against float64 as a line over the layers, named: the floating modes and int8 in one chart,
/// the number formats in one small chart per family.
public func precisionCharts(_ results: [ModeResult]) -> [Chart] {
    let rows = results.filter { $0.precision != PrecisionMode.float32.rawValue }
    // Changes with their intervals: a dot and a whisker per mode, zero marked.
    let rowHeight = 26.0, left = 170.0, top = 50.0, plot = 420.0
    var s = SVG(width: Int(left + plot + 30), height: Int(top + rowHeight * Double(max(rows.count, 1)) + 50))
    let sizes = Set(rows.map(\.images))
    s.text(
        "Accuracy change against float32, with 95% intervals"
            + (sizes.count == 1 ? " (n = \(sizes.first!) images)" : ""), Double(s.width) / 2, 20, size: 14,
        anchor: "middle", weight: "bold")
    if rows.isEmpty {
        s.text("no evaluation recorded (precis eval --record)", Double(s.width) / 2, 50, size: 13, anchor: "middle")
    } else {
        let extent = max(0.1, rows.map { max(abs($0.vsFloat32.ci95LowPP), abs($0.vsFloat32.ci95HighPP)) }.max() ?? 0.1)
        func px(_ v: Double) -> Double { left + (v + extent) / (2 * extent) * plot }
        let ticks = niceTicks(-extent, extent), step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        for t in ticks {
            s.line(px(t), top - 6, px(t), top + rowHeight * Double(rows.count), stroke: t == 0 ? "#888" : "#e4e4e4")
            s.text(
                tickText(t, step: step), px(t), top + rowHeight * Double(rows.count) + 16, size: 11, anchor: "middle")
        }
        s.text(
            "change in accuracy (percentage points)", left + plot / 2, top + rowHeight * Double(rows.count) + 36,
            size: 12, anchor: "middle")
        for (i, r) in rows.enumerated() {
            let y = top + rowHeight * (Double(i) + 0.5), c = r.vsFloat32
            s.text(
                r.precision + (sizes.count > 1 ? " (n = \(r.images))" : ""), left - 8, y + 4, size: 11, anchor: "end")
            s.line(px(c.ci95LowPP), y, px(c.ci95HighPP), y, stroke: Palette.colour(i), width: 2)
            s.rect(px(c.changePP) - 4, y - 4, 8, 8, fill: Palette.colour(i))
        }
    }
    // Per-layer SQNR: the floating modes and int8 in one chart, the number formats in another, so
    // that each has few enough lines to tell apart (colours repeat after seven, then dashed).
    func sqnrChart(_ title: String, _ rows: [ModeResult], width: Int = 760) -> LineChart {
        let counts = Set(rows.map(\.images)).sorted().map(String.init).joined(separator: " or ")
        var chart = LineChart(
            title: title + (rows.isEmpty ? "" : " (n = \(counts) images)"), xLabel: "layer", yLabel: "SQNR (dB)",
            series: rows.enumerated().map { k, r in
                LineChart.Series(
                    r.precision,
                    r.layers.enumerated().compactMap { i, l in l.errors.map { (Double(i), $0.sqnrDB) } }.filter {
                        $0.1.isFinite
                    },
                    dashed: r.integer || k >= Palette.series.count, colour: Palette.colour(k))
            })
        chart.width = width
        chart.xNames = rows.first?.layers.map(\.layer)
        return chart
    }
    let lines = rows.filter { $0.precision != PrecisionMode.float64.rawValue }
    let formats = lines.filter(\.isFormat)
    var charts = [
        Chart(
            name: "precision-change", svg: s.document(title: "Accuracy change per precision"),
            caption:
                "A dot is the change against float32, the whisker its 95% interval: a whisker across 0 may be noise."),
        Chart(
            name: "precision-sqnr",
            svg: sqnrChart("SQNR of every layer's output against float64", lines.filter { !$0.isFormat }).svg,
            caption: "Higher is closer to float64; 6 dB is about one significand bit. Integer modes are dashed and "
                + "show only the layers that have values of their own."),
    ]
    // The number formats in small multiples, one family a chart, so that no colour repeats.
    let families: [(name: String, title: String, prefixes: [String])] = [
        ("fp8", "FP8 with a tensor scale", ["float8-"]), ("mx", "OCP MX (32-value blocks)", ["mx"]),
        ("nvfp4", "NVFP4", ["nvfp4"]), ("int4", "int4 weights", ["int4-"]),
    ]
    for family in families {
        let members = formats.filter { f in family.prefixes.contains { f.precision.hasPrefix($0) } }
        guard !members.isEmpty else { continue }
        charts.append(
            Chart(
                name: "precision-sqnr-\(family.name)",
                svg: sqnrChart("SQNR against float64: \(family.title)", members, width: 520).svg,
                caption: "\(family.title), simulated in float32: each layer's output against float64."))
    }
    return charts
}

/// One mode's changed answers: the images whose prediction differs from float32's, labelled
/// "float32's answer → the mode's", in vermillion where the change breaks a right answer, in blue
/// where it mends a wrong one, in grey where one wrong answer becomes another. `predicted[i]` is nil
/// for an image the mode's record does not cover. At most `limit` images are drawn.
public func changedChart(
    mode: String, images: [Float], side: Int, labels: [Int], float32: [Int], predicted: [Int?], limit: Int = 200,
    names: [String]? = nil
) -> Chart {
    let per = side * side
    let changed = labels.indices.filter { i in predicted[i].map { $0 != float32[i] || $0 < 0 } ?? false }
    let covered = predicted.compactMap { $0 }.count
    guard !changed.isEmpty else {
        var s = SVG(width: 520, height: 34)
        let text =
            covered == 0
            ? "\(mode): no prediction recorded for these images" : "\(mode): all \(covered) answers are float32's"
        s.text(text, 8, 22, size: 13, weight: "bold")
        return Chart(name: "changed-\(mode)", svg: s.document(title: text), caption: "No image to show.")
    }
    let items = changed.prefix(limit).map { i in
        let p = predicted[i]!,
            colour = float32[i] == labels[i] ? Palette.colour(3) : p == labels[i] ? Palette.colour(0) : "#777"
        return ThumbnailGrid.Item(
            pixels: images[(i * per)..<((i + 1) * per)], label: changeText(float32[i], p, names),
            colour: colour)
    }
    let shown = changed.count > limit ? " (the first \(limit) drawn)" : ""
    let grid = ThumbnailGrid(
        title: "\(mode): \(changed.count) of \(covered) answers differ from float32\(shown)", side: side, items: items,
        empty: covered == 0 ? "no prediction recorded for these images" : "every answer is float32's")
    return Chart(
        name: "changed-\(mode)", svg: grid.svg,
        caption: "float32's answer → \(mode)'s: vermillion where \(mode) breaks a right answer, blue where it mends "
            + "a wrong one, grey where one wrong answer becomes another.")
}

/// The values of one layer and the int8 ranges they are clipped to: one for a tensor or an input,
/// one per output channel for per-channel weights.
public struct RangePanel {
    public let title: String, values: [Double], ranges: [ClosedRange<Double>]

    public init(title: String, values: [Double], ranges: [ClosedRange<Double>]) {
        (self.title, self.values, self.ranges) = (title, values, ranges)
    }

    /// The values outside every range (for per-channel ranges, the widest).
    var clipped: Int {
        guard let lo = ranges.map(\.lowerBound).min(), let hi = ranges.map(\.upperBound).max() else { return 0 }
        return values.filter { $0 < lo || $0 > hi }.count
    }
}

/// Histograms of layer values (counts on a log scale) with the int8 ranges drawn over them, as small
/// multiples three to a row: one range as vermillion lines with the clipped tails shaded; per-channel
/// ranges as a strip of blue bars under the histogram, one per channel, narrowest at the top.
public func rangeChart(title: String, panels: [RangePanel], steps: Int) -> String {
    let (pw, ph, across) = (310.0, 190.0, 3)
    let down = (panels.count + across - 1) / across
    var s = SVG(width: Int(pw) * across + 10, height: 36 + Int(ph) * max(down, 1))
    s.text(title, Double(s.width) / 2, 20, size: 14, anchor: "middle", weight: "bold")
    if panels.isEmpty { s.text("no quantized layer", Double(s.width) / 2, 50, size: 13, anchor: "middle") }
    for (k, panel) in panels.enumerated() {
        let x0 = 10 + Double(k % across) * pw, y0 = 36 + Double(k / across) * ph
        let (plotW, plotH, stripH) = (pw - 30, 90.0, panel.ranges.count > 1 ? 40.0 : 0)
        let lo = min(panel.values.min() ?? 0, panel.ranges.map(\.lowerBound).min() ?? 0)
        let hi = max(panel.values.max() ?? 0, panel.ranges.map(\.upperBound).max() ?? 0)
        let span = hi > lo ? hi - lo : 1
        func px(_ v: Double) -> Double { x0 + (v - lo) / span * plotW }
        s.text(panel.title, x0 + plotW / 2, y0 + 10, size: 12, anchor: "middle", weight: "bold")
        let bins = 60
        var counts = [Int](repeating: 0, count: bins)
        for v in panel.values { counts[min(bins - 1, max(0, Int((v - lo) / span * Double(bins))))] += 1 }
        let top = log10(1 + Double(counts.max() ?? 0)), base = y0 + 18 + plotH
        for (b, c) in counts.enumerated() where c > 0 {
            let h = plotH * log10(1 + Double(c)) / max(top, 1e-9)
            s.rect(x0 + Double(b) * plotW / Double(bins), base - h, plotW / Double(bins), h, fill: "#9ab")
        }
        s.line(x0, base, x0 + plotW, base)
        let ticks = [(lo, "start"), (hi, "end")] + (lo < 0 && hi > 0 ? [(0, "middle")] : [])
        for (t, anchor) in ticks {
            s.text(String(format: "%.3g", t), px(t), base + 13, size: 10, anchor: anchor)
        }
        if panel.ranges.count == 1, let r = panel.ranges.first {
            for (a, b) in [(lo, r.lowerBound), (r.upperBound, hi)] where b > a {
                s.rect(px(a), y0 + 18, px(b) - px(a), plotH, fill: "#D55E0033")
            }
            for v in [r.lowerBound, r.upperBound] {
                s.line(px(v), y0 + 16, px(v), base, stroke: Palette.colour(3), width: 2)
            }
        } else {
            let sorted = panel.ranges.sorted { $0.upperBound - $0.lowerBound < $1.upperBound - $1.lowerBound }
            let row = stripH / Double(max(sorted.count, 1))
            for (c, r) in sorted.enumerated() {
                s.rect(
                    px(r.lowerBound), base + 18 + Double(c) * row, px(r.upperBound) - px(r.lowerBound),
                    max(row - 0.3, 0.6),
                    fill: Palette.colour(0))
            }
        }
        let widths = panel.ranges.map { ($0.upperBound - $0.lowerBound) / Double(steps) }
        let note =
            widths.count == 1
            ? String(
                format: "step %.3g; %d of %d values clipped", widths[0], panel.clipped, panel.values.count)
            : String(
                format: "%d channels, steps %.3g to %.3g", widths.count, widths.min() ?? 0, widths.max() ?? 0)
        s.text(note, x0 + plotW / 2, base + 30 + stripH, size: 11, anchor: "middle")
    }
    return s.document(title: title)
}

/// The `quantize --compare` table as two heat maps, scheme by calibration: the accuracy change
/// against float32 (blue for a gain, vermillion for a loss, white for none) and the predictions
/// that differ from float32 (white to dark blue).
public func compareCharts(_ report: CompareReport) -> [Chart] {
    // Schemes and calibrations in a fixed order: methods as CalibrationMethod lists them, each
    // followed by its bias-corrected run, then dynamic.
    let order = CalibrationMethod.allCases.flatMap { [$0.rawValue, $0.rawValue + "+bc"] } + ["dynamic"]
    let schemes = Set(report.runs.map(\.scheme)).sorted()
    let methods = Set(report.runs.map(\.calibration)).sorted {
        (order.firstIndex(of: $0) ?? order.count, $0) < (order.firstIndex(of: $1) ?? order.count, $1)
    }
    let run = Dictionary(report.runs.map { ("\($0.scheme) \($0.calibration)", $0) }) { a, _ in a }
    let worstChange = max(0.05, report.runs.map { abs($0.vsFloat32.changePP) }.max() ?? 0)
    let mostDiffers = max(1, report.runs.map(\.vsFloat32.differs).max() ?? 0)
    func map(_ title: String, value: (CompareRun) -> String, colour: (CompareRun) -> (fill: String, dark: Bool))
        -> String
    {
        let (cellW, cellH, left, top) = (92.0, 30.0, 170.0, 74.0)
        var s = SVG(
            width: max(420, Int(left + cellW * Double(methods.count) + 20)),
            height: Int(top + cellH * Double(schemes.count) + 20))
        s.text(title, Double(s.width) / 2, 20, size: 14, anchor: "middle", weight: "bold")
        s.text("calibration", left + cellW * Double(methods.count) / 2, 44, size: 12, anchor: "middle")
        for (j, m) in methods.enumerated() {
            s.text(m, left + cellW * (Double(j) + 0.5), top - 8, size: 11, anchor: "middle")
        }
        for (i, scheme) in schemes.enumerated() {
            let y = top + cellH * Double(i)
            s.text(scheme, left - 8, y + cellH / 2 + 4, size: 11, anchor: "end")
            for (j, m) in methods.enumerated() {
                let x = left + cellW * Double(j)
                guard let r = run["\(scheme) \(m)"] else {
                    s.rect(x, y, cellW, cellH, fill: "#f4f4f4", stroke: "#fff")
                    continue
                }
                let c = colour(r)
                s.rect(x, y, cellW, cellH, fill: c.fill, stroke: "#fff")
                s.text(
                    value(r), x + cellW / 2, y + cellH / 2 + 4, size: 11, anchor: "middle",
                    fill: c.dark ? "#fff" : "#000")
            }
        }
        return s.document(title: title)
    }
    let change = map(
        "Accuracy change against float32 (percentage points)",
        value: { String(format: "%+.2f", $0.vsFloat32.changePP) },
        colour: { r in
            let t = min(1, abs(r.vsFloat32.changePP) / worstChange)
            return (r.vsFloat32.changePP < 0 ? vermillionScale(t) : blueScale(t), t > 0.6)
        })
    let differs = map(
        "Predictions that differ from float32", value: { "\($0.vsFloat32.differs)" },
        colour: { r in
            let t = Double(r.vsFloat32.differs) / Double(mostDiffers)
            return (blueScale(t), t > 0.6)
        })
    let recommended = report.recommended.map { " The recommended run is \($0.scheme) with \($0.calibration)." } ?? ""
    return [
        Chart(
            name: "compare-change", svg: change,
            caption: "precis quantize --compare on \(report.sample) of \(report.dataset): every weight and activation "
                + "scheme (rows) with every calibration (columns); blue a gain, vermillion a loss, darker for more."
                + recommended),
        Chart(
            name: "compare-differs", svg: differs,
            caption: "The same runs: how many test images get a different answer from float32, "
                + "darker for more."),
    ]
}

/// A colour from white (0) to dark vermillion (1).
func vermillionScale(_ t: Double) -> String {
    let t = min(max(t, 0), 1)
    let (r, g, b) = (255 - t * (255 - 160), 255 - t * (255 - 50), 255 - t * 255)
    return String(format: "#%02x%02x%02x", Int(r.rounded()), Int(g.rounded()), Int(b.rounded()))
}

/// The indices of the points no other point beats: none has as few bits or fewer and a higher
/// accuracy change, or fewer bits and as high a change. Ordered by bits.
public func paretoFront(_ points: [(bits: Double, change: Double)]) -> [Int] {
    let order = points.indices.sorted { (points[$0].bits, -points[$0].change) < (points[$1].bits, -points[$1].change) }
    var front: [Int] = [], best = -Double.infinity
    for i in order where points[i].change > best {
        front.append(i)
        best = points[i].change
    }
    return front
}

/// Accuracy against size: each result's change against float32 over its bits per value as
/// `precis inspect` counts them (scales, biases and float layers included), one colour per way of
/// rounding (to nearest, GPTQ, AdaRound, equalized, int8, float, a format per layer by the search),
/// and the Pareto front dashed.
public func paretoChart(_ results: [ModeResult]) -> Chart {
    func family(_ name: String) -> String {
        if PrecisionMode(rawValue: name) != nil || name == "bfloat16" { return "float" }
        if name.hasPrefix("int8-") { return "int8" }
        if case .searched? = Precision(name: name) { return "searched per layer" }
        for (suffix, text) in [("-adaround", "AdaRound"), ("-gptq", "GPTQ"), ("-cle", "equalized")]
        where name.contains(suffix) {
            return text
        }
        return "to nearest"
    }
    let bits = results.map { 32 * $0.modelRatioToFloat32 }, change = results.map(\.vsFloat32.changePP)
    let families = ["float", "int8", "to nearest", "GPTQ", "AdaRound", "equalized", "searched per layer"]
    var series = families.compactMap { f -> LineChart.Series? in
        let members = results.indices.filter { family(results[$0].precision) == f }
        guard !members.isEmpty else { return nil }
        var line = LineChart.Series(f, members.map { (bits[$0], change[$0]) })
        (line.markers, line.labels) = (true, members.map { results[$0].precision })
        return line
    }
    let front = paretoFront(results.indices.map { (bits[$0], change[$0]) })
    series.append(LineChart.Series("Pareto front", front.map { (bits[$0], change[$0]) }, dashed: true, colour: "#888"))
    var chart = LineChart(
        title: "Accuracy change against bits per value", xLabel: "bits per value (scales, biases included)",
        yLabel: "change vs float32 (points)", series: series)
    chart.width = 760
    chart.height = 420
    return Chart(
        name: "pareto", svg: chart.svg,
        caption: "Each precision's accuracy change against float32 over its size in bits per value; the dashed "
            + "line joins those no other precision beats with as few bits.")
}
