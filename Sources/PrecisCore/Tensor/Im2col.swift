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
    /// Rows of the im2col matrix: one per output pixel, `N·OH·OW`.
    public var rows: Int { n * oh * ow }
    /// Columns of the im2col matrix: one per window element, `C·FH·FW`.
    public var cols: Int { c * fh * fw }
}

/// Unfolds `x: (N, C, H, W)` into `col: (N·OH·OW, C·FH·FW)`, the book's layout; padding reads as 0.
func im2col<T: NetworkScalar>(_ x: [T], _ g: Window) -> [T] {
    var col = [T](repeating: 0, count: g.rows * g.cols)
    x.withUnsafeBufferPointer { xs in
        col.withUnsafeMutableBufferPointer { cs in
            parallelChunks(g.n, work: g.rows * g.cols * 4) { images in
                forEachTap(g, images) { c, i in cs[c] = xs[i] }
            }
        }
    }
    return col
}

/// Folds `col: (N·OH·OW, C·FH·FW)` back into `(N, C, H, W)`, summing overlapping windows (the adjoint
/// of `im2col`); entries that fall on padding are dropped.
func col2im<T: NetworkScalar>(_ col: [T], _ g: Window) -> [T] {
    var x = [T](repeating: 0, count: g.n * g.c * g.h * g.w)
    col.withUnsafeBufferPointer { cs in
        x.withUnsafeMutableBufferPointer { xs in
            parallelChunks(g.n, work: g.rows * g.cols * 4) { images in
                forEachTap(g, images) { c, i in xs[i] += cs[c] }
            }
        }
    }
    return x
}

/// Calls `body(col index, input index)` for every window element of `images` that lies inside the
/// input (not on padding), in `col` order. Each image touches only its own part of both arrays.
/// Window rows that lie wholly inside the input are visited without per-element bounds checks.
@inline(__always)
private func forEachTap(_ g: Window, _ images: Range<Int>, _ body: (Int, Int) -> Void) {
    let (oh, ow) = (g.oh, g.ow)
    for n in images {
        for oy in 0..<oh {
            for ox in 0..<ow {
                var c = ((n * oh + oy) * ow + ox) * g.cols
                let x0 = ox * g.stride - g.pad
                let inside = x0 >= 0 && x0 + g.fw <= g.w
                for ch in 0..<g.c {
                    let plane = (n * g.c + ch) * g.h
                    for ky in 0..<g.fh {
                        let y = oy * g.stride + ky - g.pad
                        if y >= 0 && y < g.h {
                            let row = (plane + y) * g.w + x0
                            if inside {
                                for kx in 0..<g.fw { body(c + kx, row + kx) }
                            } else {
                                for kx in 0..<g.fw where x0 + kx >= 0 && x0 + kx < g.w { body(c + kx, row + kx) }
                            }
                        }
                        c += g.fw
                    }
                }
            }
        }
    }
}

/// The transpose of `im2col`: `colT: (C·FH·FW, N·OH·OW)`, one row per window element. Each row is
/// filled by contiguous runs copied from shifted input rows, which is much cheaper than the
/// book's layout; the GEMMs read it as `colᵀ` and sum in the same order, so results are identical.
func im2colT<T: NetworkScalar>(_ x: [T], _ g: Window) -> [T] {
    let (oh, ow, m) = (g.oh, g.ow, g.rows)
    return filledArray(g.cols * m) { cs in
        x.withUnsafeBufferPointer { xs in
            parallelChunks(g.cols, work: g.cols * m * 4) { rows in
                for r in rows {
                    let (ch, ky, kx) = (r / (g.fh * g.fw), r / g.fw % g.fh, r % g.fw)
                    // Output columns whose tap lies inside the input: lo..<hi; the rest read padding.
                    let lo = min(ow, max(0, (g.pad - kx + g.stride - 1) / g.stride))
                    let hi = min(ow, max(lo, (g.w - 1 + g.pad - kx) / g.stride + 1))
                    for n in 0..<g.n {
                        let plane = (n * g.c + ch) * g.h
                        for oy in 0..<oh {
                            let y = oy * g.stride + ky - g.pad
                            let dst = r * m + (n * oh + oy) * ow
                            guard y >= 0 && y < g.h else {
                                (cs.baseAddress! + dst).initialize(repeating: 0, count: ow)
                                continue
                            }
                            let src = (plane + y) * g.w + kx - g.pad
                            for ox in 0..<lo { cs[dst + ox] = 0 }
                            for ox in lo..<hi { cs[dst + ox] = xs[src + ox * g.stride] }
                            for ox in hi..<ow { cs[dst + ox] = 0 }
                        }
                    }
                }
            }
        }
    }
}
