import Foundation

/// An unsigned-byte IDX array (the MNIST file format): big-endian magic `00 00 08 D`, D sizes, data.
public struct IDXArray: Equatable {
    public var dims: [Int]
    public var bytes: [UInt8]

    /// Reads `path` (raw or gzip) and checks the magic number, the rank and the data length.
    public init(path: String, rank: Int) throws {
        try self.init(data: try readMaybeGzip(path), file: path, rank: rank)
    }

    /// Parses IDX data; `file` names the source in errors.
    public init(data: Data, file: String, rank: Int) throws {
        let b = [UInt8](data)
        guard b.count >= 4 else { throw DataError(file: file, problem: "truncated IDX header (\(b.count) bytes)") }
        guard b[0] == 0, b[1] == 0 else {
            throw DataError(
                file: file, problem: String(format: "not an IDX file (magic %02x%02x%02x%02x)", b[0], b[1], b[2], b[3]))
        }
        guard b[2] == 0x08 else {
            throw DataError(
                file: file, problem: String(format: "IDX element type 0x%02x, expected 0x08 (unsigned byte)", b[2]))
        }
        guard Int(b[3]) == rank else { throw DataError(file: file, problem: "IDX rank \(b[3]), expected \(rank)") }
        let header = 4 + 4 * rank
        guard b.count >= header else { throw DataError(file: file, problem: "truncated IDX header (\(b.count) bytes)") }
        dims = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(b[4 + 4 * d + $1]) } }
        let expected = dims.reduce(1, *)
        guard b.count - header == expected else {
            let what = b.count - header < expected ? "truncated" : "too long"
            throw DataError(
                file: file,
                problem: "\(what): dims \(shapeText(dims)) need \(expected) bytes of data, found \(b.count - header)")
        }
        bytes = Array(b[header...])
    }
}
