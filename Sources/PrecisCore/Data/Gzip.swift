import CSystem
import Foundation

/// Decompresses gzip data (several concatenated members allowed) with zlib.
func gunzip(_ data: Data, file: String) throws -> Data {
    var stream = z_stream()
    guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw DataError(file: file, problem: "zlib could not start")
    }
    defer { inflateEnd(&stream) }
    var out = Data()
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
        guard let base = input.bindMemory(to: UInt8.self).baseAddress else {
            throw DataError(file: file, problem: "empty file")
        }
        stream.next_in = UnsafeMutablePointer(mutating: base)
        stream.avail_in = uInt(input.count)
        while true {
            let status = chunk.withUnsafeMutableBufferPointer { buf -> Int32 in
                stream.next_out = buf.baseAddress
                stream.avail_out = uInt(buf.count)
                return inflate(&stream, Z_NO_FLUSH)
            }
            out.append(contentsOf: chunk[0..<(chunk.count - Int(stream.avail_out))])
            if status == Z_STREAM_END {
                if stream.avail_in == 0 { return }
                inflateReset(&stream)
            } else if status == Z_BUF_ERROR && stream.avail_in == 0 {
                throw DataError(file: file, problem: "truncated gzip data")
            } else if status != Z_OK {
                let reason = stream.msg.map { String(cString: $0) } ?? "code \(status)"
                throw DataError(file: file, problem: "corrupt gzip data (\(reason))")
            }
        }
    }
    return out
}

/// Reads a file, decompressing it when it starts with the gzip magic bytes.
func readMaybeGzip(_ path: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw DataError(
            file: path, problem: FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file")
    }
    if data.count >= 2 && data[data.startIndex] == 0x1f && data[data.startIndex + 1] == 0x8b {
        return try gunzip(data, file: path)
    }
    return data
}
