/// A plain-text table whose columns are as wide as their widest cell or header, two spaces apart.
/// Text columns align left, numbers right, and a header aligns like its values, so every value
/// sits under its header.
public struct TextTable {
    /// How a column's header and values align.
    public enum Alignment: Sendable { case left, right }

    public let headers: [String]
    public let alignments: [Alignment]
    public private(set) var rows: [[String]] = []

    /// A table with `columns` (header and alignment), in order.
    public init(_ columns: [(String, Alignment)]) {
        headers = columns.map(\.0)
        alignments = columns.map(\.1)
    }

    /// Adds a row of one cell per column.
    public mutating func add(_ cells: [String]) {
        precondition(cells.count == headers.count, "a row needs \(headers.count) cells, got \(cells.count)")
        rows.append(cells)
    }

    /// The width of each column.
    public var widths: [Int] {
        headers.indices.map { c in rows.reduce(headers[c].count) { max($0, $1[c].count) } }
    }

    /// The header line, then one line per row, each with `indent` spaces first.
    public func lines(indent: Int = 0) -> [String] {
        let widths = widths, lead = String(repeating: " ", count: indent)
        func line(_ cells: [String]) -> String {
            let padded = cells.indices.map { c in
                let gap = String(repeating: " ", count: widths[c] - cells[c].count)
                return alignments[c] == .left ? cells[c] + gap : gap + cells[c]
            }
            return lead + String(padded.joined(separator: "  ").reversed().drop { $0 == " " }.reversed())
        }
        return [line(headers)] + rows.map(line)
    }
}
