/// The network drawn as its graph: one box per layer, top to bottom in layer order, with the
/// layer's text form and output shape. A layer that starts a branch (it reads an earlier layer than
/// the one above it) moves one lane to the right of what it reads; a merge returns to the leftmost
/// lane of its inputs. Edges between neighbours are straight; an edge that skips rows is drawn as
/// an arc: on the left for a lane's own skip connection, else from the side of its source.
/// Each of `assignments` (a searched variant's name and its candidate per layer index) is a column
/// beside the network: a cell on each of its layers' rows naming the candidate, one colour each.
public func networkChart(spec: ModelSpec, assignments: [(name: String, layers: [Int: String])] = []) throws -> Chart {
    let shapes = try spec.shapes(), count = spec.layers.count, sources = (0..<count).map(spec.inputs(of:))
    var lanes = [Int](repeating: 0, count: count)
    for i in 0..<count {
        let from = sources[i].map { $0 < 0 ? 0 : lanes[$0] }
        if case .merge = spec.layers[i] {
            lanes[i] = from.min() ?? 0
        } else {
            lanes[i] = sources[i] == [i - 1] ? from[0] : from[0] + 1
        }
    }
    let (rowHeight, boxWidth, boxHeight, laneWidth) = (26.0, 380.0, 20.0, 410.0)
    let (left, top) = (70.0, 56.0)
    let columnWidth = 120.0, columns = left + Double(lanes.max()! + 1) * laneWidth
    let width = Int(columns + Double(assignments.count) * columnWidth + 20)
    var s = SVG(width: max(480, width), height: Int(top + Double(count + 1) * rowHeight + 10))
    s.text(
        "\(spec.name): \(count) layers", Double(s.width) / 2, 20, size: 14,
        anchor: "middle", weight: "bold")
    s.text(
        "each box: the layer, then its output shape (C×H×W, or features)", Double(s.width) / 2, 38, size: 11,
        anchor: "middle", fill: "#444")
    /// Layer `i`'s lane, and its box's left edge and top (`-1`: the input).
    func lane(_ i: Int) -> Int { i < 0 ? 0 : lanes[i] }
    func box(_ i: Int) -> (x: Double, y: Double) {
        (left + Double(lane(i)) * laneWidth, top + Double(i + 1) * rowHeight)
    }
    for (i, from) in sources.enumerated() {
        let (x, y) = box(i)
        for j in from {
            let (fx, fy) = box(j)
            if j == i - 1 && lane(j) == lanes[i] {
                s.line(x + boxWidth / 2, fy + boxHeight, x + boxWidth / 2, y, stroke: "#666")
            } else if lane(j) == lanes[i] {
                // A skip along one lane: an arc out to the left, wider the more rows it skips.
                let reach = min(left - 8, 14 + 4 * Double(i - j))
                s.path(
                    "M \(SVG.n(x)) \(SVG.n(fy + boxHeight / 2)) C \(SVG.n(x - reach)) \(SVG.n(fy + boxHeight / 2)) "
                        + "\(SVG.n(x - reach)) \(SVG.n(y + boxHeight / 2)) \(SVG.n(x)) \(SVG.n(y + boxHeight / 2))",
                    stroke: "#0072B2")
            } else {
                let (sx, tx) = lane(j) < lanes[i] ? (fx + boxWidth, x + boxWidth / 2) : (fx, x + boxWidth / 2)
                s.path(
                    "M \(SVG.n(sx)) \(SVG.n(fy + boxHeight / 2)) C \(SVG.n(tx)) \(SVG.n(fy + boxHeight / 2)) "
                        + "\(SVG.n(tx)) \(SVG.n(y - 4)) \(SVG.n(tx)) \(SVG.n(y))",
                    stroke: "#D55E00")
            }
        }
    }
    func dims(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "×") }
    let input = box(-1)
    s.rect(input.x, input.y, boxWidth, boxHeight, fill: "#fff", stroke: "#999")
    s.text("input \(dims(spec.inputShape))", input.x + 6, input.y + 14, size: 11)
    let names = spec.layerNames
    for i in 0..<count {
        let (x, y) = box(i)
        s.rect(x, y, boxWidth, boxHeight, fill: layerColour(spec.layers[i]), stroke: "#999")
        s.text("\(names[i])  \(spec.layers[i])", x + 6, y + 14, size: 11)
        s.text(dims(shapes[i]), x + boxWidth - 6, y + 14, size: 11, anchor: "end", fill: "#444")
    }
    var colours: [String: String] = [:]
    for (k, a) in assignments.enumerated() {
        let x = columns + Double(k) * columnWidth
        s.text(a.name, x + (columnWidth - 10) / 2, input.y + 14, size: 10, anchor: "middle", weight: "bold")
        for (i, candidate) in a.layers.sorted(by: { $0.key < $1.key }) {
            let fill = colours[candidate] ?? candidateFills[colours.count % candidateFills.count]
            colours[candidate] = fill
            s.rect(x, box(i).y, columnWidth - 10, boxHeight, fill: fill, stroke: "#999")
            s.text(candidate, x + (columnWidth - 10) / 2, box(i).y + 14, size: 11, anchor: "middle")
        }
    }
    return Chart(
        name: "network", svg: s.document(title: "The network of \(spec.name)"),
        caption: "Every layer in the order it runs, with its output shape; blue arcs are skip connections, "
            + "orange edges branches and what joins them."
            + (assignments.isEmpty
                ? "" : " The columns on the right give each stored searched assignment's format per layer."))
}

/// Pale fills for the candidates of searched assignments, in order of first appearance.
let candidateFills = ["#cfe3f3", "#fde2b8", "#cdebe0", "#f3d2e4", "#fbf3b5", "#f2cdbd", "#dcdcdc", "#e3d9ef"]

/// A pale fill per family of layer: convolutions, normalization, activations, pooling, merges, affine.
func layerColour(_ layer: LayerSpec) -> String {
    switch layer {
    case .convolution: return "#dbeaf7"
    case .batchNormalization, .inputNormalization: return "#eeeeee"
    case .relu, .activation: return "#fbeccc"
    case .maxPooling, .averagePooling, .globalAveragePooling: return "#e8dff0"
    case .merge: return "#d5f0e5"
    case .affine: return "#f6dccf"
    case .dropout: return "#ffffff"
    }
}
