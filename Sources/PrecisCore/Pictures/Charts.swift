import Foundation

/// Round tick values covering `low...high`: steps of 1, 2 or 5 times a power of ten, about `count`.
func niceTicks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
    guard high > low, low.isFinite, high.isFinite else { return [low] }
    let raw = (high - low) / Double(count), magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    let first = (low / step).rounded(.up) * step
    return stride(from: first, through: high + step * 1e-9, by: step).map { ($0 / step).rounded() * step }
}

/// A tick label with as many decimals as the tick step needs.
func tickText(_ x: Double, step: Double) -> String {
    let decimals = max(0, min(6, Int(-floor(log10(step)))))
    return String(format: "%.\(decimals)f", x)
}

/// A line chart: one or more series over a shared x axis, with labelled axes, ticks and a legend.
public struct LineChart {
    /// One line: its name in the legend and its points (x, y).
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var dashed: Bool
        /// The line's colour; by default the palette's colour of its position.
        public var colour: String?
        /// Draw a square at each point instead of a line through them.
        public var markers = false
        /// A name written beside each point (none when empty).
        public var labels: [String] = []

        public init(_ name: String, _ points: [(x: Double, y: Double)], dashed: Bool = false, colour: String? = nil) {
            (self.name, self.points, self.dashed, self.colour) = (name, points, dashed, colour)
        }
    }

    public var title: String, xLabel: String, yLabel: String
    public var series: [Series]
    /// Names of the x values 0, 1, 2, ..., written slanted at each in place of numbers (layers).
    public var xNames: [String]?
    public var width = 640, height = 320
    /// The y range; by default the data's, widened to round ticks.
    public var yRange: ClosedRange<Double>?

    public init(title: String, xLabel: String, yLabel: String, series: [Series], yRange: ClosedRange<Double>? = nil) {
        (self.title, self.xLabel, self.yLabel, self.series, self.yRange) = (title, xLabel, yLabel, series, yRange)
    }

    /// The chart as an SVG document. Non-finite points are left out; a chart with no points says so.
    public var svg: String {
        // The legend sits in rows between the title and the plot, where it hides no data.
        let names = xNames ?? []
        let (left, right) = (64.0, 16.0), bottom = 48.0 + 5.5 * Double(names.map(\.count).max() ?? 0)
        var legend: [(x: Double, row: Int)] = [], x = left, row = 0
        for line in series {
            let span = 40 + Double(line.name.count) * 7
            if x + span > Double(width) - right && x > left { (x, row) = (left, row + 1) }
            legend.append((x, row))
            x += span
        }
        let top = 50.0 + 16 * Double(row), height = self.height + 16 * row + Int(bottom - 48)
        var s = SVG(width: width, height: height)
        let (w, h) = (Double(width) - left - right, Double(height) - top - bottom)
        s.text(title, Double(width) / 2, 20, size: 14, anchor: "middle", weight: "bold")
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        guard let minX = points.map(\.x).min(), let maxX = points.map(\.x).max() else {
            s.text("nothing recorded to draw", Double(width) / 2, Double(height) / 2, size: 13, anchor: "middle")
            return s.document(title: title)
        }
        let dataY = points.map(\.y)
        var (y0, y1) = (yRange?.lowerBound ?? dataY.min()!, yRange?.upperBound ?? dataY.max()!)
        if y1 <= y0 { (y0, y1) = (y0 - 1, y1 + 1) }
        let x1 = maxX > minX ? maxX : minX + 1
        func px(_ x: Double) -> Double { left + (x - minX) / (x1 - minX) * w }
        func py(_ y: Double) -> Double { top + h - (min(max(y, y0), y1) - y0) / (y1 - y0) * h }
        // Axes, grid and ticks.
        let yTicks = niceTicks(y0, y1), xTicks = niceTicks(minX, x1)
        let yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1, xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        for t in yTicks {
            s.line(left, py(t), left + w, py(t), stroke: "#ddd")
            s.text(tickText(t, step: yStep), left - 6, py(t) + 4, size: 11, anchor: "end")
        }
        if names.isEmpty {
            for t in xTicks {
                s.line(px(t), top + h, px(t), top + h + 4)
                s.text(tickText(t, step: xStep), px(t), top + h + 17, size: 11, anchor: "middle")
            }
        } else {
            for (i, name) in names.enumerated() where Double(i) >= minX && Double(i) <= x1 {
                s.line(px(Double(i)), top + h, px(Double(i)), top + h + 4)
                s.text(name, px(Double(i)) + 4, top + h + 12, size: 10, anchor: "end", rotate: -40)
            }
        }
        s.line(left, top, left, top + h)
        s.line(left, top + h, left + w, top + h)
        s.text(xLabel, left + w / 2, Double(height) - 8, size: 12, anchor: "middle")
        s.text(yLabel, 16, top + h / 2, size: 12, anchor: "middle", rotate: -90)
        // Lines, then the legend.
        for (i, line) in series.enumerated() {
            let shown = line.points.indices.filter { line.points[$0].x.isFinite && line.points[$0].y.isFinite }
            let kept = shown.map { (px(line.points[$0].x), py(line.points[$0].y)) }
            let colour = line.colour ?? Palette.colour(i)
            if kept.count == 1 || line.markers { for p in kept { s.rect(p.0 - 3, p.1 - 3, 6, 6, fill: colour) } }
            if kept.count > 1 && !line.markers { s.polyline(kept, stroke: colour, dashed: line.dashed) }
            for (k, p) in zip(shown, kept) where k < line.labels.count {
                let end = p.0 > left + 0.85 * w
                s.text(line.labels[k], p.0 + (end ? -5 : 5), p.1 - 5, size: 9, anchor: end ? "end" : "start")
            }
        }
        for (i, (line, at)) in zip(series, legend).enumerated() {
            let y = 34 + 16 * Double(at.row)
            s.line(at.x, y, at.x + 20, y, stroke: line.colour ?? Palette.colour(i), width: 2, dashed: line.dashed)
            s.text(line.name, at.x + 26, y + 4, size: 11)
        }
        return s.document(title: title)
    }
}

/// Grey-scale images as a grid of tiles, each scaled to its own range (dark high, white low, as the
/// thumbnails draw strokes and the feature maps strong responses), with
/// a caption per tile: first-layer filters, input images.
public struct TileGrid {
    public var title: String
    /// The tiles, each `rows × columns` values in row order.
    public var tiles: [[Double]]
    public var captions: [String]
    public var rows: Int, columns: Int
    /// Pixels per value, and tiles per row of the grid.
    public var scale = 8, perRow = 10

    public init(title: String, tiles: [[Double]], rows: Int, columns: Int, captions: [String] = []) {
        (self.title, self.tiles, self.rows, self.columns, self.captions) = (title, tiles, rows, columns, captions)
    }

    public var svg: String {
        let tileW = columns * scale, tileH = rows * scale, gap = 8, caption = captions.isEmpty ? 0 : 14
        let across = max(1, min(perRow, tiles.count)), down = (tiles.count + across - 1) / across
        var s = SVG(
            width: max(240, across * (tileW + gap) + gap), height: 28 + max(1, down) * (tileH + gap + caption) + gap)
        s.text(title, Double(s.width) / 2, 18, size: 14, anchor: "middle", weight: "bold")
        guard !tiles.isEmpty else {
            s.text("nothing to draw", Double(s.width) / 2, 44, size: 13, anchor: "middle")
            return s.document(title: title)
        }
        for (k, tile) in tiles.enumerated() {
            let x0 = Double(gap + (k % across) * (tileW + gap)),
                y0 = Double(28 + (k / across) * (tileH + gap + caption))
            let finite = tile.filter(\.isFinite)
            let (lo, hi) = (finite.min() ?? 0, finite.max() ?? 1)
            for r in 0..<rows {
                for c in 0..<columns {
                    let v = tile[r * columns + c],
                        g = hi > lo && v.isFinite ? Int(((hi - v) / (hi - lo) * 255).rounded()) : 128
                    let grey = String(format: "#%02x%02x%02x", g, g, g)
                    s.rect(x0 + Double(c * scale), y0 + Double(r * scale), Double(scale), Double(scale), fill: grey)
                }
            }
            if k < captions.count {
                s.text(captions[k], x0 + Double(tileW) / 2, y0 + Double(tileH) + 11, size: 10, anchor: "middle")
            }
        }
        return s.document(title: title)
    }
}

/// Test images as thumbnails (dark strokes on white, one PNG per row of the grid), each with a
/// short label beneath in its own colour: misclassified images, changed predictions.
public struct ThumbnailGrid {
    /// One image (`side × side` values in [0, 1]), its label and the label's colour.
    public struct Item {
        public let pixels: ArraySlice<Float>, label: String, colour: String

        public init(pixels: ArraySlice<Float>, label: String, colour: String = "#000") {
            (self.pixels, self.label, self.colour) = (pixels, label, colour)
        }
    }

    public var title: String, side: Int, items: [Item]
    /// What an empty grid says.
    public var empty: String
    public var perRow = 16, zoom = 2

    public init(title: String, side: Int, items: [Item], empty: String) {
        (self.title, self.side, self.items, self.empty) = (title, side, items, empty)
    }

    public var svg: String {
        // A label may take two lines (class names: the true one, then the answer).
        let lines = items.map { $0.label.split(separator: "\n").count }.max() ?? 1
        let tile = side * zoom, gap = 7 + 11 * lines, rows = (items.count + perRow - 1) / perRow
        var s = SVG(width: max(300, perRow * (tile + 6) + 10), height: 40 + max(1, rows) * (tile + gap))
        s.text(title, Double(s.width) / 2, 20, size: 14, anchor: "middle", weight: "bold")
        if items.isEmpty { s.text(empty, Double(s.width) / 2, 44, size: 13, anchor: "middle") }
        for row in 0..<rows {
            let band = items[(row * perRow)..<min(items.count, (row + 1) * perRow)]
            let width = band.count * (side + 3)
            var pixels = [UInt8](repeating: 255, count: width * side)
            for (k, item) in band.enumerated() {
                for (p, v) in item.pixels.enumerated() {
                    pixels[(p / side) * width + k * (side + 3) + p % side] = UInt8(
                        max(0, min(255, (255 * (1 - v)).rounded())))
                }
            }
            let y = Double(32 + row * (tile + gap))
            s.image(greyPNG(width: width, height: side, pixels: pixels), 5, y, Double(width * zoom), Double(tile))
            for (k, item) in band.enumerated() {
                for (j, line) in item.label.split(separator: "\n").enumerated() {
                    s.text(
                        String(line), 5 + Double(k * (side + 3) * zoom + tile / 2), y + Double(tile + 12 + 11 * j),
                        size: lines > 1 ? 9 : 10, anchor: "middle", fill: item.colour)
                }
            }
        }
        return s.document(title: title)
    }
}
