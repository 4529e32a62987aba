import Foundation

/// Random transforms of training images (the book's data augmentation), drawn image by image: a
/// shift of up to `shift` pixels each way, a rotation of up to `rotation` degrees, a scale within
/// `1 ± scale`, a crop of the image padded by `crop` zero pixels, and a horizontal flip with
/// probability 1/2. Rotation and scale sample bilinearly; pixels from outside the image are 0.
/// `precis train --augment shift:2,rotate:10,scale:0.1,crop:2,flip`.
public struct Augmentation: Sendable, Equatable, CustomStringConvertible {
    public var shift = 0
    public var rotation = 0.0
    public var scale = 0.0
    public var crop = 0
    public var flip = false

    public init(shift: Int = 0, rotation: Double = 0, scale: Double = 0, crop: Int = 0, flip: Bool = false) {
        (self.shift, self.rotation, self.scale, self.crop, self.flip) = (shift, rotation, scale, crop, flip)
    }

    /// Parses a comma-separated list of `shift:K`, `rotate:DEGREES`, `scale:FRACTION`, `crop:K` and
    /// `flip`, each at most once.
    public init(parsing text: String) throws {
        func bad(_ why: String) -> ModelError { .badSpec(why) }
        var seen = Set<String>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard let name = parts.first, !name.isEmpty else { throw bad("an empty transform") }
            guard seen.insert(name).inserted else { throw bad("'\(name)' is given twice") }
            if name == "flip" {
                guard parts.count == 1 else { throw bad("flip takes no value") }
                flip = true
                continue
            }
            guard parts.count == 2 else { throw bad("'\(name)' needs a value, as \(name):VALUE") }
            switch name {
            case "shift", "crop":
                guard let k = Int(parts[1]), (1...8).contains(k) else { throw bad("\(name) takes 1 to 8 pixels") }
                if name == "shift" { shift = k } else { crop = k }
            case "rotate":
                guard let d = Double(parts[1]), d > 0, d <= 180 else { throw bad("rotate takes 0 to 180 degrees") }
                rotation = d
            case "scale":
                guard let s = Double(parts[1]), s > 0, s < 1 else { throw bad("scale takes a fraction in (0, 1)") }
                scale = s
            default:
                throw bad("unknown transform '\(name)' (shift:K, rotate:DEGREES, scale:FRACTION, crop:K, flip)")
            }
        }
    }

    public var description: String {
        var parts: [String] = []
        if shift > 0 { parts.append("shift:\(shift)") }
        if rotation > 0 { parts.append("rotate:\(rotation.formatted())") }
        if scale > 0 { parts.append("scale:\(scale.formatted())") }
        if crop > 0 { parts.append("crop:\(crop)") }
        if flip { parts.append("flip") }
        return parts.joined(separator: ",")
    }

    /// One image's draw: a translation in pixels, an angle in radians, a scale factor, a mirror.
    struct Draw: Equatable {
        var dx = 0.0, dy = 0.0, angle = 0.0, factor = 1.0, mirror = false
    }

    /// The next image's transform from `rng`: every parameter is drawn, in a fixed order, whether or
    /// not it is used, so that one transform's setting does not change another's draws.
    func draw(_ rng: inout RandomSource) -> Draw {
        func integer(_ k: Int) -> Double { Double(Int(rng.uniform() * Double(2 * k + 1)) - k) }
        func symmetric(_ a: Double) -> Double { (2 * rng.uniform() - 1) * a }
        var d = Draw()
        d.dx = integer(shift) + integer(crop)
        d.dy = integer(shift) + integer(crop)
        d.angle = symmetric(rotation) * .pi / 180
        d.factor = 1 + symmetric(scale)
        d.mirror = rng.uniform() < 0.5 && flip
        return d
    }

    /// Transforms `count` images of `shape` `(C, H, W)` in place, each with its own draw from `rng`
    /// (drawn in order, then applied on all cores).
    public func apply(_ images: inout [Float], count: Int, shape: [Int], rng: inout RandomSource) {
        let (c, h, w) = (shape[0], shape[1], shape[2]), per = c * h * w
        let draws = (0..<count).map { _ in draw(&rng) }
        images.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            parallelChunks(count, work: count * per * 16) { range in
                var source = [Float](repeating: 0, count: per)
                for n in range {
                    Self.transform(base + n * per, channels: c, height: h, width: w, draws[n], scratch: &source)
                }
            }
        }
    }

    /// One image under draw `d`: output pixel `(x, y)` takes the input at the point that maps onto it
    /// (rotate and scale about the centre, then translate, then mirror), bilinearly, 0 outside.
    /// `scratch` holds a copy of the image.
    static func transform(
        _ image: UnsafeMutablePointer<Float>, channels c: Int, height h: Int, width w: Int, _ d: Draw,
        scratch: inout [Float]
    ) {
        let plane = h * w
        scratch.withUnsafeMutableBufferPointer { src in
            src.baseAddress!.update(from: image, count: c * plane)
            let (cx, cy) = (Double(w - 1) / 2, Double(h - 1) / 2)
            let (cosA, sinA) = (cos(d.angle) / d.factor, sin(d.angle) / d.factor)
            for y in 0..<h {
                for x0 in 0..<w {
                    // Undo the mirror, the translation, then the rotation and scale.
                    let x = d.mirror ? w - 1 - x0 : x0
                    let (u, v) = (Double(x) - d.dx - cx, Double(y) - d.dy - cy)
                    let sx = cosA * u + sinA * v + cx, sy = -sinA * u + cosA * v + cy
                    let (fx, fy) = (sx.rounded(.down), sy.rounded(.down))
                    let (ax, ay) = (Float(sx - fx), Float(sy - fy))
                    // The four neighbours' weights, 0 for those outside the image.
                    let (ix, iy) = (Int(max(-2, min(Double(w), fx))), Int(max(-2, min(Double(h), fy))))
                    let inX0 = ix >= 0 && ix < w, inX1 = ix + 1 >= 0 && ix + 1 < w
                    let inY0 = iy >= 0 && iy < h, inY1 = iy + 1 >= 0 && iy + 1 < h
                    let (w00, w10, w01, w11) = ((1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay)
                    for ch in 0..<c {
                        let at = src.baseAddress! + ch * plane
                        var value: Float = 0
                        if inY0 && inX0 { value += at[iy * w + ix] * w00 }
                        if inY0 && inX1 { value += at[iy * w + ix + 1] * w10 }
                        if inY1 && inX0 { value += at[(iy + 1) * w + ix] * w01 }
                        if inY1 && inX1 { value += at[(iy + 1) * w + ix + 1] * w11 }
                        image[ch * plane + y * w + x0] = value
                    }
                }
            }
        }
    }

    /// Why `flip` does not suit `dataset`, or nil: mirrored digits are other shapes (a mirrored 2
    /// is not a 2), so flips are refused for the MNIST digit sets.
    public func refusal(for dataset: String) -> String? {
        guard flip else { return nil }
        let name = dataset.lowercased()
        return name.contains("mnist") && !name.contains("fashion")
            ? "flip mirrors images, and a mirrored digit is not the same digit; \(dataset) holds digits"
            : nil
    }
}
