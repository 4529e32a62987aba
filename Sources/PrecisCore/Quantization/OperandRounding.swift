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

    /// OCP MX v1.0: a shared E8M0 scale 2^(floor(log2 amax) − emax_elem) per block.
    public static func mx(_ format: MXBlockFormat) -> OperandRounding {
        blocks(format.element.rounder, size: format.size) { format.scale(amax: $0) }
    }

    /// NVFP4 with the per-tensor scale `g = amax / (6·448)` (see `NVFP4`).
    public static func nvfp4(tensorAmax: Float) -> OperandRounding {
        let g = NVFP4.tensorScale(amax: tensorAmax)
        return blocks(GridRounder(.e2m1, saturating: true), size: NVFP4.blockSize) { NVFP4.blockScale(amax: $0, g) * g }
    }
}

/// NVFP4, the 4-bit format of NVIDIA's Blackwell GPUs: E2M1 elements in blocks of 16 along the
/// reduction axis, each block with an E4M3 scale, and one float32 scale per tensor. The scale rules
/// are those NVIDIA publishes ("Pretraining Large Language Models with NVFP4", arXiv:2509.25149,
/// §2 and its quantization appendix; TensorRT Model Optimizer and Transformer Engine convert the
/// same way): the tensor scale is `g = amax / (6·448)`, so that the largest block scale is E4M3's
/// largest value; a block's scale is `S = e4m3(amax_b / (6·g))`, rounded to nearest even and
/// saturating; each element is `e2m1(x / (S·g))`, rounded to nearest even and saturating; and the
/// value it stands for is `e2m1·S·g`.
public enum NVFP4 {
    public static let blockSize = 16
    /// Bits per value: 4 for the element, 8/16 for the block scale (the tensor scale aside).
    public static let bitsPerValue = 4.5

    /// The per-tensor scale `g` for a tensor whose largest magnitude is `amax` (0 when it is 0).
    public static func tensorScale(amax: Float) -> Float {
        amax > 0 && amax.isFinite ? amax / (6 * 448) : 0
    }

    /// The E4M3 block scale `S` for a block whose largest magnitude is `amax`, given `g`.
    @inline(__always)
    public static func blockScale(amax: Float, _ g: Float) -> Float {
        g > 0 ? e4m3(amax / (6 * g)) : 0
    }

    private static let e4m3 = GridRounder(.e4m3, saturating: true)
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
