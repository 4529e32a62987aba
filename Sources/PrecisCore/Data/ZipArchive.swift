import CSystem
import Foundation

/// Zip archives (numpy's `.npz`, Keras's `.keras`), stored or deflated, ZIP64 sizes included; every
/// entry's CRC-32 is checked.
public enum ZipArchive {
    /// The entries of a zip archive, decompressed and checked, from its central directory.
    public static func entries(_ d: [UInt8], file: String) throws -> [(String, [UInt8])] {
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
        else { throw fail("is truncated or not a zip archive (no zip directory at its end)") }
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
}
