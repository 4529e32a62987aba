import CSystem
import Foundation

/// An 8-bit grey-scale PNG of `width × height` pixels (`pixels` row by row, 0 black, 255 white),
/// compressed with zlib: for pictures with too many pixels to draw as SVG shapes.
public func greyPNG(width: Int, height: Int, pixels: [UInt8]) -> Data {
    precondition(pixels.count == width * height, "\(pixels.count) pixels for \(width)×\(height)")
    func chunk(_ kind: String, _ body: Data) -> Data {
        var out = Data()
        withUnsafeBytes(of: UInt32(body.count).bigEndian) { out.append(contentsOf: $0) }
        let typed = Data(kind.utf8) + body
        out.append(typed)
        let crc = typed.withUnsafeBytes { UInt32(crc32(0, $0.bindMemory(to: UInt8.self).baseAddress, uInt($0.count))) }
        withUnsafeBytes(of: crc.bigEndian) { out.append(contentsOf: $0) }
        return out
    }
    var header = Data()
    for v in [UInt32(width), UInt32(height)] { withUnsafeBytes(of: v.bigEndian) { header.append(contentsOf: $0) } }
    header.append(contentsOf: [8, 0, 0, 0, 0])  // 8-bit grey, deflate, no filter method, no interlace
    // Each row starts with filter type 0 (none).
    var raw = [UInt8](repeating: 0, count: height * (width + 1))
    for y in 0..<height {
        raw.replaceSubrange(
            (y * (width + 1) + 1)..<((y + 1) * (width + 1)), with: pixels[(y * width)..<((y + 1) * width)])
    }
    var size = compressBound(uLong(raw.count))
    var packed = [UInt8](repeating: 0, count: Int(size))
    let status = compress2(&packed, &size, raw, uLong(raw.count), 9)
    precondition(status == Z_OK, "zlib failed to compress (\(status))")
    return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + chunk("IHDR", header)
        + chunk("IDAT", Data(packed.prefix(Int(size)))) + chunk("IEND", Data())
}

extension SVG {
    /// A PNG placed at (x, y) with size (w, h), embedded as a data URI (nothing is fetched), its
    /// pixels drawn sharp.
    public mutating func image(_ png: Data, _ x: Double, _ y: Double, _ w: Double, _ h: Double) {
        append(
            "image",
            [
                ("x", Self.n(x)), ("y", Self.n(y)), ("width", Self.n(w)), ("height", Self.n(h)),
                ("style", "image-rendering:pixelated"), ("href", "data:image/png;base64,\(png.base64EncodedString())"),
            ])
    }
}
