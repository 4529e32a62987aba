import Foundation

/// A numeric array read from a `.npy` file: its shape, its values widened to Double (row-major,
/// C order), and numpy's name for its element type (`<f8`).
public struct NumpyArray: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Double]
    public var dtype: String
}

/// numpy's `.npz` archives: a zip of `.npy` files, stored or deflated. Only numeric arrays are
/// accepted; an object array (which numpy would unpickle) is refused, and so is anything damaged:
/// every entry's CRC-32 is checked.
public enum NumpyArchive {
    /// The arrays of the archive at `path`, by name (without `.npy`).
    public static func read(_ path: String) throws -> [String: NumpyArray] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, problem: "no such file, or it cannot be read")
        }
        var arrays: [String: NumpyArray] = [:]
        for (name, bytes) in try ZipArchive.entries(Array(data), file: path) {
            guard name.hasSuffix(".npy") else { throw DataError(file: path, problem: "\(name) is not a .npy file") }
            let key = String(name.dropLast(4))
            arrays[key] = try parseNPY(bytes, file: path, name: key)
        }
        return arrays
    }

    /// A `.npy` file: the magic `\x93NUMPY`, a version, a header (a Python dict literal with
    /// `descr`, `fortran_order` and `shape`), then the values.
    public static func parseNPY(_ b: [UInt8], file: String, name: String) throws -> NumpyArray {
        func fail(_ problem: String) -> DataError { DataError(file: file, problem: "\(name): \(problem)") }
        guard b.count >= 10, b.prefix(6) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else { throw fail("not a .npy array") }
        let major = b[6]
        guard (1...3).contains(major) else { throw fail(".npy version \(major) is not known") }
        let lengthBytes = major == 1 ? 2 : 4
        guard b.count >= 8 + lengthBytes else { throw fail("truncated header") }
        let headerLength = (0..<lengthBytes).reduce(0) { $0 | Int(b[8 + $1]) << (8 * $1) }
        let start = 8 + lengthBytes + headerLength
        guard start <= b.count else { throw fail("truncated header") }
        let header = String(decoding: b[(8 + lengthBytes)..<start], as: UTF8.self)
        /// The quoted string value of `key`; nil when it is missing or not a string (a structured
        /// array's `descr` is a list).
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            let value = header[r.upperBound...].trimmingCharacters(in: .whitespaces)
            return value.hasPrefix("'") ? value.components(separatedBy: "'").dropFirst().first : nil
        }
        guard let descr = field("descr") else {
            throw fail(
                "a structured or unreadable array (header \(header.trimmingCharacters(in: .whitespacesAndNewlines)))")
        }
        guard let shapeText = header.range(of: "'shape':").map({ header[$0.upperBound...] }),
            let open = shapeText.firstIndex(of: "("), let close = shapeText.firstIndex(of: ")")
        else { throw fail("no shape in its header") }
        let parts = shapeText[shapeText.index(after: open)..<close].split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        let shape = try parts.map { part -> Int in
            guard let n = Int(part), n >= 0, n < Int(Int32.max) else {
                throw fail("bad shape (\(shapeText[open...close]))")
            }
            return n
        }
        let fortran = header.range(of: "'fortran_order': True") != nil
        let kind = descr.dropFirst(), order = descr.first
        let (size, read): (Int, (UnsafeRawBufferPointer, Int) -> Double)
        switch kind {
        case "f8": (size, read) = (8, { Double(bitPattern: $0.loadUnaligned(fromByteOffset: $1, as: UInt64.self)) })
        case "f4":
            (size, read) = (4, { Double(Float(bitPattern: $0.loadUnaligned(fromByteOffset: $1, as: UInt32.self))) })
        case "i8":
            (size, read) = (8, { Double(Int64(bitPattern: $0.loadUnaligned(fromByteOffset: $1, as: UInt64.self))) })
        case "i4":
            (size, read) = (4, { Double(Int32(bitPattern: $0.loadUnaligned(fromByteOffset: $1, as: UInt32.self))) })
        case "i1": (size, read) = (1, { Double(Int8(bitPattern: $0[$1])) })
        case "u1": (size, read) = (1, { Double($0[$1]) })
        default:
            let what = kind.hasPrefix("O") ? "an object array (Python objects, not numbers)" : "element type \(descr)"
            throw fail("\(what) is not read: only float64, float32, int64, int32, int8 and uint8")
        }
        guard order == "<" || order == "|" || (size == 1 && order == "=") else {
            throw fail("big-endian element type \(descr) is not read")
        }
        let count = shape.reduce(1, *)
        guard b.count - start == count * size else {
            throw fail("holds \(b.count - start) bytes of values, its shape \(shape) needs \(count * size)")
        }
        var values = b[start...].withUnsafeBytes { raw in (0..<count).map { read(raw, $0 * size) } }
        if fortran && shape.count > 1 {
            // Column-major to row-major: the element at C index i sits at its Fortran index.
            let c = values
            var strides = [Int](repeating: 1, count: shape.count)
            for k in 1..<shape.count { strides[k] = strides[k - 1] * shape[k - 1] }
            for i in 0..<count {
                var rest = i, f = 0
                for k in stride(from: shape.count - 1, through: 0, by: -1) {
                    f += (rest % shape[k]) * strides[k]
                    rest /= shape[k]
                }
                values[i] = c[f]
            }
        }
        return NumpyArray(shape: shape, values: values, dtype: String(descr))
    }
}
