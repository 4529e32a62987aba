/// The geometry of a sliding window over `(N, C, H, W)` input: `OH = (H + 2·pad - FH) / stride + 1`.
public struct Window: Equatable, Sendable {
    public var n, c, h, w: Int
    public var fh, fw, stride, pad: Int

    public init(input shape: [Int], fh: Int, fw: Int, stride: Int, pad: Int) {
        precondition(shape.count == 4, "window input must be (N, C, H, W), got \(shapeText(shape))")
        (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        (self.fh, self.fw, self.stride, self.pad) = (fh, fw, stride, pad)
    }

    public var oh: Int { (h + 2 * pad - fh) / stride + 1 }
    public var ow: Int { (w + 2 * pad - fw) / stride + 1 }
    /// Output pixels per image, `OH·OW`.
    public var pixels: Int { oh * ow }
    /// Rows of the im2col matrix: one per output pixel, `N·OH·OW`.
    public var rows: Int { n * oh * ow }
    /// Columns of the im2col matrix: one per window element, `C·FH·FW`.
    public var cols: Int { c * fh * fw }

    /// For window element `r = (ch, ky, kx)`: its channel and offsets, and the output columns
    /// `lo..<hi` whose tap lies inside the input horizontally (the rest read padding).
    @inline(__always)
    func tap(_ r: Int) -> (ch: Int, ky: Int, kx: Int, lo: Int, hi: Int) {
        let (ch, ky, kx) = (r / (fh * fw), r / fw % fh, r % fw)
        let lo = min(ow, max(0, (pad - kx + stride - 1) / stride))
        let hi = min(ow, max(lo, (w - 1 + pad - kx) / stride + 1))
        return (ch, ky, kx, lo, hi)
    }
}

/// Unfolds `images` of `x: (N, C, H, W)` into `col: (C·FH·FW, images·OH·OW)` with row stride `ld`,
/// the transpose of the book's im2col: one row per window element, one column per output pixel
/// of these images; padding reads as 0. Each row is filled by contiguous runs of shifted input rows.
func im2colT<T: NetworkScalar>(
    _ x: UnsafePointer<T>, _ g: Window, images: Range<Int>, _ col: UnsafeMutablePointer<T>, _ ld: Int
) {
    let (oh, ow) = (g.oh, g.ow)
    for r in 0..<g.cols {
        let t = g.tap(r)
        // Output rows whose tap lies inside the input vertically: oy0..<oy1.
        let oy0 = min(oh, max(0, (g.pad - t.ky + g.stride - 1) / g.stride)),
            oy1 = min(oh, max(oy0, (g.h - 1 + g.pad - t.ky) / g.stride + 1))
        for (j, n) in images.enumerated() {
            let dst = col + r * ld + j * oh * ow,
                src = x + (n * g.c + t.ch) * g.h * g.w + (t.ky - g.pad) * g.w + t.kx - g.pad
            dst.update(repeating: 0, count: oy0 * ow)
            (dst + oy1 * ow).update(repeating: 0, count: (oh - oy1) * ow)
            guard oy0 < oy1 else { continue }
            if g.stride == 1 && ow == g.w {
                // A "same" window: the rows are the input plane shifted; copy it in one run, then
                // clear the entries that wrapped around a row edge.
                let first = oy0 * ow + t.lo, last = (oy1 - 1) * ow + t.hi
                (dst + first).update(from: src + first, count: last - first)
                for oy in oy0..<oy1 {
                    for ox in 0..<t.lo { dst[oy * ow + ox] = 0 }
                    for ox in t.hi..<ow { dst[oy * ow + ox] = 0 }
                }
                continue
            }
            for oy in oy0..<oy1 {
                let d = dst + oy * ow, s = src + oy * g.stride * g.w
                for ox in 0..<t.lo { d[ox] = 0 }
                if g.stride == 1 {
                    (d + t.lo).update(from: s + t.lo, count: t.hi - t.lo)
                } else {
                    for ox in t.lo..<t.hi { d[ox] = s[ox * g.stride] }
                }
                for ox in t.hi..<ow { d[ox] = 0 }
            }
        }
    }
}

/// Folds `col: (C·FH·FW, images·OH·OW)` (row stride `ld`) back onto `images` of `x`, adding each
/// entry to the input element its tap reads; taps on padding are dropped. Window elements are
/// visited in reverse `(FH, FW)` order per channel, so every input element sums its windows in
/// the order of the book's col2im (ascending output row, then column) and results are identical.
func col2imT<T: NetworkScalar>(
    _ col: UnsafePointer<T>, _ ld: Int, _ g: Window, images: Range<Int>, _ x: UnsafeMutablePointer<T>
) {
    let (oh, ow) = (g.oh, g.ow)
    for ch in 0..<g.c {
        for ky in (0..<g.fh).reversed() {
            for kx in (0..<g.fw).reversed() {
                let r = (ch * g.fh + ky) * g.fw + kx, t = g.tap(r)
                for (j, n) in images.enumerated() {
                    let plane = (n * g.c + ch) * g.h
                    for oy in 0..<oh {
                        let y = oy * g.stride + ky - g.pad
                        guard y >= 0 && y < g.h else { continue }
                        let src = col + r * ld + (j * oh + oy) * ow
                        let dst = x + (plane + y) * g.w + kx - g.pad
                        if g.stride == 1 {
                            for ox in t.lo..<t.hi { dst[ox] += src[ox] }
                        } else {
                            for ox in t.lo..<t.hi { dst[ox * g.stride] += src[ox] }
                        }
                    }
                }
            }
        }
    }
}
