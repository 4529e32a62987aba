import CSystem
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
        for (name, bytes) in try entries(Array(data), file: path) {
            guard name.hasSuffix(".npy") else { throw DataError(file: path, problem: "\(name) is not a .npy file") }
            let key = String(name.dropLast(4))
            arrays[key] = try parseNPY(bytes, file: path, name: key)
        }
        return arrays
    }

    /// The entries of a zip archive, decompressed and checked, from its central directory.
    static func entries(_ d: [UInt8], file: String) throws -> [(String, [UInt8])] {
        func fail(_ problem: String) -> DataError { DataError(file: file, problem: problem) }
        func u16(_ at: Int) throws -> Int {
            guard at >= 0, at + 2 <= d.count else { throw fail("is truncated (not a complete zip archive)") }
            return Int(d[at]) | Int(d[at + 1]) << 8
        }
        func u32(_ at: Int) throws -> Int { try u16(at) | (u16(at + 2) << 16) }
        func u64(_ at: Int) throws -> Int {
            let value = try UInt64(u32(at)) | (UInt64(u32(at + 4)) << 32)
            guard value < UInt64(Int32.max) else { throw fail("holds an entry too large to read") }
            return Int(value)
        }
        // The end-of-central-directory record: the last "PK\5\6" within the final 64 KiB.
        guard d.count >= 22,
            let end = stride(from: d.count - 22, through: max(0, d.count - 22 - 65_535), by: -1).first(where: {
                d[$0] == 0x50 && d[$0 + 1] == 0x4B && d[$0 + 2] == 5 && d[$0 + 3] == 6
            })
        else { throw fail("is truncated or not an npz file (no zip directory at its end)") }
        let count = try u16(end + 10)
        var at = try u32(end + 16)
        var out: [(String, [UInt8])] = []
        for _ in 0..<count {
            guard try u32(at) == 0x0201_4B50 else { throw fail("has a damaged zip directory") }
            let flags = try u16(at + 8), method = try u16(at + 10), crc = try u32(at + 16)
            var (packed, size, local) = (try u32(at + 20), try u32(at + 24), try u32(at + 42))
            let nameLength = try u16(at + 28), extraLength = try u16(at + 30), commentLength = try u16(at + 32)
            guard at + 46 + nameLength <= d.count else { throw fail("is truncated (not a complete zip archive)") }
            let name = String(decoding: d[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            // ZIP64 sizes and offset, in that order, for the fields set to 0xFFFFFFFF.
            var extra = at + 46 + nameLength
            while extra + 4 <= at + 46 + nameLength + extraLength {
                let id = try u16(extra), length = try u16(extra + 2)
                if id == 1 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { (size, field) = (try u64(field), field + 8) }
                    if packed == 0xFFFF_FFFF { (packed, field) = (try u64(field), field + 8) }
                    if local == 0xFFFF_FFFF { local = try u64(field) }
                }
                extra += 4 + length
            }
            guard flags & 1 == 0 else { throw fail("\(name) is encrypted") }
            guard try u32(local) == 0x0403_4B50 else { throw fail("\(name): damaged zip entry") }
            let start = try local + 30 + u16(local + 26) + u16(local + 28)
            guard start + packed <= d.count else { throw fail("is truncated (\(name) is incomplete)") }
            let stored = Array(d[start..<(start + packed)])
            let bytes: [UInt8]
            switch method {
            case 0: bytes = stored
            case 8: bytes = try inflateRaw(stored, size: size, file: file, name: name)
            default: throw fail("\(name) is compressed with zip method \(method); only stored and deflated are read")
            }
            guard bytes.count == size else {
                throw fail("\(name) has \(bytes.count) bytes, its directory says \(size)")
            }
            let check = bytes.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, uInt($0.count))) }
            guard check == crc else { throw fail("\(name) is damaged (CRC-32 mismatch)") }
            out.append((name, bytes))
            at += 46 + nameLength + extraLength + commentLength
        }
        return out
    }

    /// Raw deflate data (no zlib or gzip header) inflated to `size` bytes.
    static func inflateRaw(_ input: [UInt8], size: Int, file: String, name: String) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError(file: file, problem: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: size)
        var input = input
        let status = input.withUnsafeMutableBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                stream.next_in = i.baseAddress
                stream.avail_in = uInt(i.count)
                stream.next_out = o.baseAddress
                stream.avail_out = uInt(o.count)
                return inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, stream.total_out == size else {
            throw DataError(file: file, problem: "\(name) is damaged (its deflate data does not decompress)")
        }
        return output
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
