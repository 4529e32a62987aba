import Foundation

/// Colours that stay distinct with the common forms of colour blindness (Okabe and Ito's palette).
public enum Palette {
    public static let series = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000"]
    /// The colour of series `i`.
    public static func colour(_ i: Int) -> String { series[i % series.count] }
}

/// A small SVG document written as text: elements are appended in drawing order.
public struct SVG {
    public let width: Int, height: Int
    private var body: [String] = []

    public init(width: Int, height: Int) {
        (self.width, self.height) = (width, height)
    }

    /// `text` with the five XML special characters escaped.
    public static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&apos;")
    }

    /// A number as SVG coordinates take it: at most two decimals.
    static func n(_ x: Double) -> String {
        let r = (x * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    /// An element `<name a="v" ...>content</name>` (or `<name .../>` without content); attribute
    /// values and content are escaped.
    static func tag(_ name: String, _ attributes: [(String, String)], content: String? = nil) -> String {
        let list = attributes.map { " \($0.0)=\"\(escaped($0.1))\"" }.joined()
        return content.map { "<\(name)\(list)>\(escaped($0))</\(name)>" } ?? "<\(name)\(list)/>"
    }

    /// Appends an element (see `tag`).
    mutating func append(_ name: String, _ attributes: [(String, String)], content: String? = nil) {
        body.append(Self.tag(name, attributes, content: content))
    }

    public mutating func line(
        _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String = "#000", width: Double = 1,
        dashed: Bool = false
    ) {
        let dash = dashed ? [("stroke-dasharray", "4 3")] : []
        append(
            "line",
            [
                ("x1", Self.n(x1)), ("y1", Self.n(y1)), ("x2", Self.n(x2)), ("y2", Self.n(y2)), ("stroke", stroke),
                ("stroke-width", Self.n(width)),
            ] + dash)
    }

    public mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil) {
        append(
            "rect",
            [("x", Self.n(x)), ("y", Self.n(y)), ("width", Self.n(w)), ("height", Self.n(h)), ("fill", fill)]
                + (stroke.map { [("stroke", $0)] } ?? []))
    }

    /// A polyline through `points` (already in SVG coordinates).
    public mutating func polyline(
        _ points: [(Double, Double)], stroke: String, width: Double = 1.5, dashed: Bool = false
    ) {
        let list = points.map { "\(Self.n($0.0)),\(Self.n($0.1))" }.joined(separator: " ")
        append(
            "polyline",
            [("points", list), ("fill", "none"), ("stroke", stroke), ("stroke-width", Self.n(width))]
                + (dashed ? [("stroke-dasharray", "5 3")] : []))
    }

    /// A path `d` (SVG path commands), stroked and not filled.
    public mutating func path(_ d: String, stroke: String, width: Double = 1.2) {
        append("path", [("d", d), ("fill", "none"), ("stroke", stroke), ("stroke-width", Self.n(width))])
    }

    /// Text at (x, y); `anchor` is start, middle or end; `rotate` turns it about its anchor.
    public mutating func text(
        _ s: String, _ x: Double, _ y: Double, size: Double = 12, anchor: String = "start", rotate: Double = 0,
        weight: String = "normal", fill: String = "#000"
    ) {
        let turn = rotate == 0 ? [] : [("transform", "rotate(\(Self.n(rotate)) \(Self.n(x)) \(Self.n(y)))")]
        append(
            "text",
            [
                ("x", Self.n(x)), ("y", Self.n(y)), ("font-size", Self.n(size)), ("text-anchor", anchor),
                ("font-weight", weight), ("font-family", "sans-serif"), ("fill", fill),
            ] + turn, content: s)
    }

    /// The document: an `<svg>` element with a title for screen readers.
    public func document(title: String) -> String {
        let open = Self.tag(
            "svg",
            [
                ("xmlns", "http://www.w3.org/2000/svg"), ("width", "\(width)"), ("height", "\(height)"),
                ("viewBox", "0 0 \(width) \(height)"), ("role", "img"),
            ])
        return open.dropLast(2) + ">" + Self.tag("title", [], content: title) + "\n" + body.joined(separator: "\n")
            + "\n</svg>\n"
    }
}
