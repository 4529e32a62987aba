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
    let (oh, ow) = (g.oh, g.ow), work = col.count * 4
    x.withUnsafeBufferPointer { xs in
        col.withUnsafeMutableBufferPointer { cs in
            parallelChunks(g.n, work: work) { images in
                for n in images {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            var dst = ((n * oh + oy) * ow + ox) * g.cols
                            for c in 0..<g.c {
                                let plane = (n * g.c + c) * g.h
                                for ky in 0..<g.fh {
                                    let y = oy * g.stride + ky - g.pad
                                    for kx in 0..<g.fw {
                                        let xx = ox * g.stride + kx - g.pad
                                        if y >= 0 && y < g.h && xx >= 0 && xx < g.w {
                                            cs[dst] = xs[(plane + y) * g.w + xx]
                                        }
                                        dst += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return col
}

/// Folds `col: (N·OH·OW, C·FH·FW)` back into `(N, C, H, W)`, summing overlapping windows (the adjoint
/// of `im2col`); entries that fall on padding are dropped.
func col2im<T: NetworkScalar>(_ col: [T], _ g: Window) -> [T] {
    var x = [T](repeating: 0, count: g.n * g.c * g.h * g.w)
    let (oh, ow) = (g.oh, g.ow), work = col.count * 4
    col.withUnsafeBufferPointer { cs in
        x.withUnsafeMutableBufferPointer { xs in
            parallelChunks(g.n, work: work) { images in
                for n in images {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            var src = ((n * oh + oy) * ow + ox) * g.cols
                            for c in 0..<g.c {
                                let plane = (n * g.c + c) * g.h
                                for ky in 0..<g.fh {
                                    let y = oy * g.stride + ky - g.pad
                                    for kx in 0..<g.fw {
                                        let xx = ox * g.stride + kx - g.pad
                                        if y >= 0 && y < g.h && xx >= 0 && xx < g.w {
                                            xs[(plane + y) * g.w + xx] += cs[src]
                                        }
                                        src += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return x
}
