/// Where a GEMM operand's values lie: `vectors` reduction vectors of `length` values, element `i` of
/// vector `v` at `v·vectorStride + i·elementStride`. A convolution's unfolded input `B (K, L)` has
/// `L` vectors of `K` (vector stride 1, element stride the row width); an affine layer's input
/// `(N, in)` has `N` vectors of `in` (vector stride `in`, element stride 1).
public struct OperandLayout: Sendable, Equatable {
    public let vectors: Int, length: Int, vectorStride: Int, elementStride: Int

    public init(vectors: Int, length: Int, vectorStride: Int, elementStride: Int) {
        (self.vectors, self.length, self.vectorStride, self.elementStride) =
            (vectors, length, vectorStride, elementStride)
    }

    /// A row-major `(rows, columns)` matrix whose rows are the vectors.
    public static func rows(_ rows: Int, _ columns: Int) -> OperandLayout {
        OperandLayout(vectors: rows, length: columns, vectorStride: columns, elementStride: 1)
    }

    /// A row-major `(rows, columns)` matrix whose columns are the vectors.
    public static func columns(_ rows: Int, _ columns: Int) -> OperandLayout {
        OperandLayout(vectors: columns, length: rows, vectorStride: 1, elementStride: columns)
    }
}

/// Rounds a GEMM operand in place to a number format: every value replaced by the value its code
/// stands for, scales applied, so the GEMM that follows runs in Float on exactly what the format
/// holds. Blocks run along the reduction axis, as MX and NVFP4 hardware forms them.
public struct OperandRounding: Sendable {
    let apply: @Sendable (UnsafeMutablePointer<Float>, OperandLayout) -> Void

    public init(_ apply: @escaping @Sendable (UnsafeMutablePointer<Float>, OperandLayout) -> Void) {
        self.apply = apply
    }

    public func callAsFunction(_ x: UnsafeMutablePointer<Float>, _ layout: OperandLayout) { apply(x, layout) }

    /// Rounds a whole array laid out as `layout`.
    public func callAsFunction(_ x: inout [Float], _ layout: OperandLayout) {
        x.withUnsafeMutableBufferPointer { apply($0.baseAddress!, layout) }
    }

    /// One float32 scale for the tensor: `x ≈ scale·grid(x / scale)`.
    public static func scaled(_ grid: GridRounder, scale: Float) -> OperandRounding {
        let s = scale > 0 && scale.isFinite ? scale : 1
        return OperandRounding { x, layout in
            var d = s, f = s
            forEachElement(x, layout) { p, n, stride in
                if stride == 1 {
                    grid.round(p, dividedBy: &d, times: &f, count: n, stride: 0)
                } else {
                    for i in 0..<n { p[i * stride] = grid(p[i * stride] / s) * s }
                }
            }
        }
    }

    /// Blocks of `size` along the reduction axis; `scale(amax)` gives a block's scale from its largest
    /// magnitude, and each value becomes `scale·grid(x / scale)`. A zero scale zeroes the block.
    public static func blocks(_ grid: GridRounder, size: Int, scale: @escaping @Sendable (Float) -> Float)
        -> OperandRounding
    {
        OperandRounding { x, layout in
            if layout.vectorStride == 1 {
                roundColumnBlocks(x, layout, grid, size, scale)
            } else {
                roundRowBlocks(x, layout, grid, size, scale)
            }
        }
    }
}

/// Calls `body(start, count, stride)` for runs of the operand's elements covering each once.
@inline(__always)
private func forEachElement(
    _ x: UnsafeMutablePointer<Float>, _ l: OperandLayout, _ body: (UnsafeMutablePointer<Float>, Int, Int) -> Void
) {
    if l.vectorStride == 1 {
        for i in 0..<l.length { body(x + i * l.elementStride, l.vectors, 1) }
    } else {
        for v in 0..<l.vectors { body(x + v * l.vectorStride, l.length, l.elementStride) }
    }
}

/// Blocks down the columns (vector stride 1): each block's rows are walked with the vectors
/// contiguous, so the largest magnitudes and the rounding run across many vectors at once.
private func roundColumnBlocks(
    _ x: UnsafeMutablePointer<Float>, _ l: OperandLayout, _ grid: GridRounder, _ size: Int,
    _ scale: (Float) -> Float
) {
    var amax = [Float](repeating: 0, count: l.vectors), divisor = amax, factor = amax
    for start in stride(from: 0, to: l.length, by: size) {
        let rows = start..<min(start + size, l.length)
        amax.withUnsafeMutableBufferPointer { a in
            a.update(repeating: 0)
            for r in rows {
                let p = x + r * l.elementStride
                for v in 0..<l.vectors { a[v] = max(a[v], p[v].magnitude) }
            }
            for v in 0..<l.vectors {
                let s = scale(a[v])
                (divisor[v], factor[v]) = (s == 0 ? 1 : s, s)
            }
        }
        divisor.withUnsafeBufferPointer { d in
            factor.withUnsafeBufferPointer { f in
                for r in rows {
                    grid.round(
                        x + r * l.elementStride, dividedBy: d.baseAddress!, times: f.baseAddress!, count: l.vectors,
                        stride: 1)
                }
            }
        }
    }
}

/// Blocks along each vector in turn.
private func roundRowBlocks(
    _ x: UnsafeMutablePointer<Float>, _ l: OperandLayout, _ grid: GridRounder, _ size: Int,
    _ scale: (Float) -> Float
) {
    for v in 0..<l.vectors {
        let p = x + v * l.vectorStride
        for start in stride(from: 0, to: l.length, by: size) {
            let end = min(start + size, l.length)
            var amax: Float = 0
            for i in start..<end { amax = max(amax, p[i * l.elementStride].magnitude) }
            let s = scale(amax), d = s == 0 ? 1 : s
            for i in start..<end { p[i * l.elementStride] = grid(p[i * l.elementStride] / d) * s }
        }
    }
}
