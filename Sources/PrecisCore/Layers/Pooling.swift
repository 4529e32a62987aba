/// Max pooling directly on `(N, C, H, W)`: each output is the largest input in its window; padding
/// never wins (it is not a value), ties go to the first element in row-major window order, and NaN
/// propagates. Output `(N, C, OH, OW)` with `OH = (H + 2·pad - size) / stride + 1` (the book's
/// Pooling ignores `pad` in its output size; this one does not).
public final class MaxPooling<T: NetworkScalar>: Layer {
    public let size: Int
    public let stride: Int
    public let pad: Int
    private var g: Window?
    private var argmax: [Int32] = []  // per output: index into its input plane

    public init(size: Int, stride: Int, pad: Int = 0) {
        precondition(size > 0 && stride > 0 && pad >= 0 && pad < size, "pool size > 0, stride > 0, 0 <= pad < size")
        (self.size, self.stride, self.pad) = (size, stride, pad)
    }

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        let g = Window(input: x.shape, fh: size, fw: size, stride: stride, pad: pad)
        var out = [T](repeating: 0, count: g.n * g.c * g.oh * g.ow)
        // Where each maximum came from, for backward: training only.
        var arg = [Int32](repeating: 0, count: isTraining ? out.count : 0)
        x.data.withUnsafeBufferPointer { xs in
            out.withUnsafeMutableBufferPointer { os in
                arg.withUnsafeMutableBufferPointer { args in
                    parallelChunks(g.n * g.c, work: x.count) { planes in
                        pool(xs, g, planes, os, isTraining ? args : nil)
                    }
                }
            }
        }
        self.g = g
        argmax = arg
        return Tensor(shape: [g.n, g.c, g.oh, g.ow], data: out)
    }

    /// The maximum of every window of `planes` of `xs` (shaped as `g`'s input) into `out`, with
    /// where it came from into `arg` when given (training keeps it for backward).
    func pool(
        _ xs: UnsafeBufferPointer<T>, _ g: Window, _ planes: Range<Int>, _ out: UnsafeMutableBufferPointer<T>,
        _ arg: UnsafeMutableBufferPointer<Int32>?
    ) {
        if size == 2 && stride == 2 && pad == 0
            && T.maxPool2(
                xs.baseAddress! + planes.lowerBound * g.h * g.w, planes: planes.count, h: g.h, w: g.w,
                out.baseAddress! + planes.lowerBound * g.oh * g.ow,
                arg.map { $0.baseAddress! + planes.lowerBound * g.oh * g.ow })
        {
            return
        }
        for plane in planes {
            let src = plane * g.h * g.w
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    // The window clipped to the input; padding never competes.
                    let y0 = max(0, oy * stride - pad), y1 = min(g.h, oy * stride - pad + size)
                    let x0 = max(0, ox * stride - pad), x1 = min(g.w, ox * stride - pad + size)
                    let first = y0 * g.w + x0
                    var at = first, best = xs[src + first]
                    @inline(__always) func consider(_ i: Int) {
                        let v = xs[src + i]
                        if v > best || (v.isNaN && !best.isNaN) {
                            best = v
                            at = i
                        }
                    }
                    if y1 - y0 == 2 && x1 - x0 == 2 {  // the common 2×2 window, unrolled
                        consider(first + 1)
                        consider(first + g.w)
                        consider(first + g.w + 1)
                    } else {
                        for y in y0..<y1 {
                            for xx in x0..<x1 where y > y0 || xx > x0 { consider(y * g.w + xx) }
                        }
                    }
                    let o = (plane * g.oh + oy) * g.ow + ox
                    out[o] = best
                    arg?[o] = Int32(at)
                }
            }
        }
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        guard let g, argmax.count == g.n * g.c * g.oh * g.ow else {
            preconditionFailure("MaxPooling.backward needs a training forward")
        }
        let (per, size) = (g.oh * g.ow, g.h * g.w)
        let dx: [T] = filledArray(g.n * g.c * size) { dx in
            argmax.withUnsafeBufferPointer { arg in
                dout.data.withUnsafeBufferPointer { ds in
                    parallelChunks(g.n * g.c, work: dx.count) { planes in
                        for plane in planes {
                            let d = dx.baseAddress! + plane * size
                            d.initialize(repeating: 0, count: size)
                            for o in (plane * per)..<((plane + 1) * per) { d[Int(arg[o])] += ds[o] }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [g.n, g.c, g.h, g.w], data: dx)
    }

    /// The input index (within its plane) each output took its value from, from the last training
    /// forward (empty after an inference forward).
    public var lastArgmax: [Int32] { argmax }
}

/// `v` if it wins over `best` in max pooling: larger, or the first NaN; ties keep `best`.
@inline(__always)
func larger<T: NetworkScalar>(_ best: T, _ v: T) -> T { v > best || (v.isNaN && !best.isNaN) ? v : best }

/// Average pooling on `(N, C, H, W)`: each output is the window's sum divided by `size²`; padding
/// counts as zeros (PyTorch's `count_include_pad=True`). Output size as for `MaxPooling`.
public final class AveragePooling<T: NetworkScalar>: Layer {
    public let size: Int
    public let stride: Int
    public let pad: Int
    private var g: Window?

    public init(size: Int, stride: Int, pad: Int = 0) {
        precondition(size > 0 && stride > 0 && pad >= 0 && pad < size, "pool size > 0, stride > 0, 0 <= pad < size")
        (self.size, self.stride, self.pad) = (size, stride, pad)
    }

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        let g = Window(input: x.shape, fh: size, fw: size, stride: stride, pad: pad)
        let inv = 1 / T(size * size)
        var out = [T](repeating: 0, count: g.n * g.c * g.oh * g.ow)
        visit(g) { o, i in out[o] += x.data[i] }
        for o in out.indices { out[o] *= inv }
        self.g = g
        return Tensor(shape: [g.n, g.c, g.oh, g.ow], data: out)
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        guard let g else { preconditionFailure("AveragePooling.backward before forward") }
        let inv = 1 / T(size * size)
        var dx = [T](repeating: 0, count: g.n * g.c * g.h * g.w)
        visit(g) { o, i in dx[i] += dout.data[o] * inv }
        return Tensor(shape: [g.n, g.c, g.h, g.w], data: dx)
    }

    /// Calls `body(output index, input index)` for every in-bounds window element.
    private func visit(_ g: Window, _ body: (Int, Int) -> Void) {
        for plane in 0..<(g.n * g.c) {
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    let o = (plane * g.oh + oy) * g.ow + ox
                    for ky in 0..<size {
                        let y = oy * stride + ky - pad
                        guard y >= 0 && y < g.h else { continue }
                        for kx in 0..<size {
                            let xx = ox * stride + kx - pad
                            if xx >= 0 && xx < g.w { body(o, (plane * g.h + y) * g.w + xx) }
                        }
                    }
                }
            }
        }
    }
}

/// Global average pooling: each channel's mean over its pixels, `(N, C, H, W) -> (N, C, 1, 1)`;
/// the pixels added in row-major order, the sum then multiplied by `1/(H·W)`.
public final class GlobalAveragePooling<T: NetworkScalar>: Layer {
    private var shape: [Int] = []

    public init() {}

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        let (planes, hw) = (x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]), inv = 1 / T(hw)
        shape = x.shape
        var y = [T](repeating: 0, count: planes)
        for p in 0..<planes {
            var s: T = 0
            for i in 0..<hw { s += x.data[p * hw + i] }
            y[p] = s * inv
        }
        return Tensor(shape: [x.shape[0], x.shape[1], 1, 1], data: y)
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        precondition(!shape.isEmpty, "GlobalAveragePooling.backward before forward")
        let hw = shape[2] * shape[3], inv = 1 / T(hw)
        return Tensor(shape: shape, data: (0..<(dout.count * hw)).map { dout.data[$0 / hw] * inv })
    }
}
