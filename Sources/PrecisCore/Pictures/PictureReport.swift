import Foundation

/// A chart of the picture report: its file name (without `.svg`), the SVG and a caption.
public struct Chart: Sendable {
    public let name: String, svg: String, caption: String

    public init(name: String, svg: String, caption: String) {
        (self.name, self.svg, self.caption) = (name, svg, caption)
    }
}

/// A self-contained HTML page of charts in sections: inline SVG, no scripts, nothing fetched.
public struct PictureReport: Sendable {
    /// A section: a heading, a paragraph, its charts.
    public struct Section: Sendable {
        public let heading: String, text: String, charts: [Chart]

        public init(heading: String, text: String, charts: [Chart]) {
            (self.heading, self.text, self.charts) = (heading, text, charts)
        }
    }

    public var title: String
    public var sections: [Section]

    public init(title: String, sections: [Section]) {
        (self.title, self.sections) = (title, sections)
    }

    /// Every chart, in page order.
    public var charts: [Chart] { sections.flatMap(\.charts) }

    /// The page: a table of contents, then the sections, each with an anchor. The grids of images
    /// (mistakes, changed answers) after the first of a section are folded away (`<details>`), so the
    /// page opens short.
    public var html: String {
        var out = [
            "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
            "<title>\(SVG.escaped(title))</title>",
            "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
                + "figure{margin:1em 0}figcaption{font-size:0.9em;color:#444}svg{max-width:100%;height:auto}"
                + "summary{cursor:pointer;color:#0b4f8a}</style>",
            "</head><body>", "<h1>\(SVG.escaped(title))</h1>",
            "<nav><h2>Contents</h2><ol>"
                + sections.map { "<li><a href=\"#\(Self.anchor($0.heading))\">\(SVG.escaped($0.heading))</a></li>" }
                .joined() + "</ol></nav>",
        ]
        for section in sections {
            out.append("<h2 id=\"\(Self.anchor(section.heading))\">\(SVG.escaped(section.heading))</h2>")
            out.append("<p>\(SVG.escaped(section.text))</p>")
            var grids = 0
            for chart in section.charts {
                let figure = "<figure>\(chart.svg)<figcaption>\(SVG.escaped(chart.caption))</figcaption></figure>"
                guard chart.name.hasPrefix("changed-") || chart.name == "mistakes" else {
                    out.append(figure)
                    continue
                }
                grids += 1
                out.append(
                    grids == 1
                        ? figure
                        : "<details><summary>\(SVG.escaped(Self.title(of: chart)))</summary>\(figure)</details>")
            }
        }
        out.append("</body></html>")
        return out.joined(separator: "\n") + "\n"
    }
}

extension PictureReport {
    /// The anchor of a section: its heading in lower case, words joined by hyphens.
    static func anchor(_ heading: String) -> String {
        heading.lowercased().split { !$0.isLetter && !$0.isNumber }.joined(separator: "-")
    }

    /// A chart's title, from its SVG's `<title>`.
    static func title(of chart: Chart) -> String {
        guard let start = chart.svg.range(of: "<title>"), let end = chart.svg.range(of: "</title>") else {
            return chart.name
        }
        return String(chart.svg[start.upperBound..<end.lowerBound])
    }
}

/// The moving average of `xs` over `window` values (fewer at the start).
func movingAverage(_ xs: [Double], window: Int) -> [Double] {
    var out: [Double] = [], sum = 0.0
    for (i, x) in xs.enumerated() {
        sum += x
        if i >= window { sum -= xs[i - window] }
        out.append(sum / Double(min(i + 1, window)))
    }
    return out
}

/// The training section: the loss of every iteration (raw and smoothed) and the accuracy of every
/// epoch on the training and the test data.
public func trainingCharts(loss: [Double], trainAccuracy: [Double], testAccuracy: [Double]) -> [Chart] {
    let window = max(1, loss.count / 50)
    let lossChart = LineChart(
        title: "Loss of every mini-batch", xLabel: "iteration", yLabel: "cross-entropy loss",
        series: [
            .init("raw", loss.enumerated().map { (Double($0.offset + 1), $0.element) }),
            .init(
                "mean of \(window)",
                movingAverage(loss, window: window).enumerated().map { (Double($0.offset + 1), $0.element) }),
        ])
    let accuracyChart = LineChart(
        title: "Accuracy after every epoch", xLabel: "epoch", yLabel: "accuracy (%)",
        series: [
            .init("train", trainAccuracy.enumerated().map { (Double($0.offset + 1), 100 * $0.element) }),
            .init("test", testAccuracy.enumerated().map { (Double($0.offset + 1), 100 * $0.element) }, dashed: true),
        ])
    return [
        Chart(name: "loss", svg: lossChart.svg, caption: "The training loss of each of \(loss.count) iterations."),
        Chart(
            name: "accuracy", svg: accuracyChart.svg,
            caption: "Train and test accuracy after each of \(testAccuracy.count) epochs."),
    ]
}

/// The filters of every convolution as grey-scale tiles (a filter's mean over its input channels),
/// and the first convolution's filters before training too when `initial` holds them.
public func filterCharts(spec: ModelSpec, trained: [String: Tensor<Double>], initial: [String: Tensor<Double>]?) throws
    -> [Chart]
{
    var charts: [Chart] = []
    let convolutions = try spec.geometry().filter { if case .convolution = $0.spec { true } else { false } }
    for (k, layer) in convolutions.enumerated() {
        let key = layer.key("W")
        func tiles(_ w: Tensor<Double>) -> [[Double]] {
            let (fn, c, fh, fw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
            return (0..<fn).map { f in
                (0..<(fh * fw)).map { p in (0..<c).reduce(0.0) { $0 + w.data[(f * c + $1) * fh * fw + p] } / Double(c) }
            }
        }
        guard let w = trained[key] else { continue }
        let (fh, fw) = (w.shape[2], w.shape[3])
        /// The tiles of `weights` as a chart.
        func grid(_ weights: Tensor<Double>, title: String, name: String, caption: String) -> Chart {
            var g = TileGrid(title: title, tiles: tiles(weights), rows: fh, columns: fw)
            g.scale = max(4, 48 / max(fh, fw))
            return Chart(name: name, svg: g.svg, caption: caption)
        }
        charts.append(
            grid(
                w, title: "\(layer.name): \(w.shape[0]) filters after training", name: "filters-\(layer.name)",
                caption: "\(layer.name), \(w.shape[0]) filters of \(fh)×\(fw)"
                    + (w.shape[1] > 1 ? ", each the mean over its \(w.shape[1]) input channels" : "")
                    + "; each tile scaled to its own range, dark high, white low."))
        if k == 0, let w0 = initial?[key] {
            charts.append(
                grid(
                    w0, title: "\(layer.name): the same filters before training", name: "filters-\(layer.name)-initial",
                    caption:
                        "The initial filters, drawn again from the file's seed and weight init (\(spec.weightInit))."))
        }
    }
    return charts
}

/// A class as a thumbnail names it: its name when the data set has names, else its number; `none`
/// for no answer (logits that are not all finite).
func answerText(_ predicted: Int, _ names: [String]? = nil) -> String {
    predicted < 0 ? "none" : names.map { predicted < $0.count ? $0[predicted] : "\(predicted)" } ?? "\(predicted)"
}

/// A thumbnail's label for `from` → `to`: on one line with class numbers, on two with names.
func changeText(_ from: Int, _ to: Int, _ names: [String]?) -> String {
    "\(answerText(from, names))\(names == nil ? "" : "\n")→\(answerText(to, names))"
}

/// A colour from white (0) to dark blue (1), readable with every common colour blindness.
func blueScale(_ t: Double) -> String {
    let t = min(max(t, 0), 1)
    let (r, g, b) = (255 - t * (255 - 8), 255 - t * (255 - 48), 255 - t * (255 - 107))
    return String(format: "#%02x%02x%02x", Int(r.rounded()), Int(g.rounded()), Int(b.rounded()))
}

/// The mistakes section: the confusion matrix of `predicted` against `labels` (`classes` × `classes`
/// cells, each row shaded by its share of the true class), and every misclassified image as a
/// thumbnail with its true and predicted class. `images` holds the test images (row-major, values
/// in [0, 1]) of one channel of `side × side` pixels. `names` label the matrix's rows when given.
public func mistakeCharts(
    images: [Float], labels: [Int], predicted: [Int], classes: Int, side: Int, names: [String]? = nil
) -> [Chart] {
    var counts = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    for (t, p) in zip(labels, predicted) where (0..<classes).contains(t) && (0..<classes).contains(p) {
        counts[t][p] += 1
    }
    let cell = 40.0, left = names == nil ? 70.0 : 150.0, top = 60.0
    var m = SVG(width: Int(left + cell * Double(classes) + 20), height: Int(top + cell * Double(classes) + 50))
    m.text("Confusion matrix (float32)", Double(m.width) / 2, 20, size: 14, anchor: "middle", weight: "bold")
    m.text("predicted class", left + cell * Double(classes) / 2, 42, size: 12, anchor: "middle")
    m.text("true class", 18, top + cell * Double(classes) / 2, size: 12, anchor: "middle", rotate: -90)
    for t in 0..<classes {
        let total = max(1, counts[t].reduce(0, +))
        let name = names.map { t < $0.count ? "\(t) \($0[t])" : "\(t)" } ?? "\(t)"
        m.text(name, left - 10, top + cell * (Double(t) + 0.5) + 4, size: 11, anchor: "end")
        m.text("\(t)", left + cell * (Double(t) + 0.5), top + cell * Double(classes) + 16, size: 11, anchor: "middle")
        for p in 0..<classes {
            let share = Double(counts[t][p]) / Double(total)
            m.rect(left + cell * Double(p), top + cell * Double(t), cell, cell, fill: blueScale(share), stroke: "#fff")
            // Dark cells get white numbers.
            m.text(
                "\(counts[t][p])", left + cell * (Double(p) + 0.5), top + cell * (Double(t) + 0.5) + 4, size: 10,
                anchor: "middle", fill: share > 0.5 ? "#fff" : "#000")
        }
    }
    let wrong = labels.indices.filter { labels[$0] != predicted[$0] }
    let thumbnails = ThumbnailGrid(
        title: "\(wrong.count) misclassified test images (true → predicted)", side: side,
        items: wrong.map { i in
            let pixels = images[(i * side * side)..<((i + 1) * side * side)]
            return ThumbnailGrid.Item(pixels: pixels, label: changeText(labels[i], predicted[i], names))
        }, empty: "no image is misclassified")
    return [
        Chart(
            name: "confusion", svg: m.document(title: "Confusion matrix"),
            caption: "Rows are the true classes, columns the predicted ones; "
                + "each row is shaded by its share of the true class."),
        Chart(
            name: "mistakes", svg: thumbnails.svg,
            caption: "Every misclassified test image (dark strokes on white), its true class, an arrow, "
                + "and float32's answer."),
    ]
}

/// Feature maps: `images` (one per class, `(count, C, H, W)` row-major) through the network, shown
/// as a grid, one row per image and one column for each of the layer's first `channels` output
/// channels, each map scaled to its own range: after every convolution and pooling layer of a
/// chain, and per block of a graph (after its first layer and after each merge, the block's output).
public func featureMapCharts(network: Network<Float>, images: [Float], labels: [Int], channels: Int = 8) -> [Chart] {
    let spec = network.spec, count = labels.count
    guard count > 0 else { return [] }
    let outputs = network.forwardAll(Tensor(shape: [count] + spec.inputShape, data: images))
    var charts: [Chart] = []
    let shown = ((try? spec.geometry()) ?? []).filter { layer in
        guard !spec.wiring.isEmpty else { return layer.window != nil }
        if case .merge = layer.spec { return outputs[layer.index + 1].shape.count == 4 }
        return layer.index == 0 && outputs[1].shape.count == 4
    }
    for layer in shown {
        let y = outputs[layer.index + 1], (c, h, w) = (y.shape[1], y.shape[2], y.shape[3]), shown = min(c, channels)
        let zoom = max(1, 56 / max(h, w)), gap = 2
        let (tileW, tileH) = (w * zoom + gap, h * zoom + gap)
        let (width, height) = (shown * tileW, count * tileH)
        var pixels = [UInt8](repeating: 255, count: width * height)
        for n in 0..<count {
            for ch in 0..<shown {
                let plane = Array(y.data[((n * c + ch) * h * w)..<((n * c + ch + 1) * h * w)]).map(Double.init)
                let (lo, hi) = (plane.min() ?? 0, plane.max() ?? 0)
                for py in 0..<(h * zoom) {
                    for px in 0..<(w * zoom) {
                        let v = plane[(py / zoom) * w + px / zoom], t = hi > lo ? (v - lo) / (hi - lo) : 0
                        pixels[(n * tileH + py) * width + ch * tileW + px] = UInt8((255 * (1 - t)).rounded())
                    }
                }
            }
        }
        let left = 60.0, top = 46.0
        var s = SVG(width: max(480, Int(left) + width + 10), height: Int(top) + height + 10)
        s.text(
            "\(layer.name): \(shown) of \(c) maps of \(h)×\(w), one row per class", Double(s.width) / 2, 18, size: 14,
            anchor: "middle", weight: "bold")
        for ch in 0..<shown {
            s.text("map \(ch)", left + Double(ch * tileW + tileW / 2), 38, size: 10, anchor: "middle")
        }
        for n in 0..<count {
            s.text("class \(labels[n])", left - 6, top + Double(n * tileH + tileH / 2 + 4), size: 10, anchor: "end")
        }
        s.image(greyPNG(width: width, height: height, pixels: pixels), left, top, Double(width), Double(height))
        charts.append(
            Chart(
                name: "maps-\(layer.name)", svg: s.document(title: "Feature maps after \(layer.name)"),
                caption: "What \(layer.name) passes on: dark is a strong response, each map scaled to its own range."))
    }
    return charts
}
