import CKernels
import Foundation

/// Integer-only inference of a `QuantizedModel`. Between quantized layers
/// (convolutions and affine layers) values are 8-bit codes, channels last (NHWC); each such layer
/// is a uint8 × int8 → int32 GEMM (`precis_gemm_u8s8`: AVX-512 VNNI or its portable twin) over
/// each output pixel's window, and its int32 sums are requantized to the next quantized layer's
/// input codes with a float32 multiplier per output channel, `s_in·s_w·d / s_next` (a float scale,
/// not a fixed-point multiplier and shift), rounded half to even. ReLU between them folds into the
/// requantization clamp (codes below the zero point), dropout's inference factor `d` into the
/// multiplier, and max pooling runs on the codes. The last quantized layer's sums are dequantized
/// to Float; the layers after it run in Float. Signed int8 codes are kept as uint8 plus 128, with
/// the zero point moved alike, so every GEMM multiplies unsigned activations by signed weights.
public final class IntegerNetwork {
    /// One quantized layer and the layers up to the next one.
    struct Step {
        let layer: Int
        let window: Window?  // nil for an affine layer; n is unused
        let inputs: Int, outputs: Int
        let taps: Int  // K, the sum's length; rows of A are padded to a multiple of 4
        let packed: [Int8]  // B (K, outputs), K ordered (ky, kx, c) for a convolution
        let correction: [Int32]  // per channel: bias codes − input zero point · Σ weight codes
        let scale: [Float]  // per channel: s_in·s_w, times d / s_next unless last
        let inputZero: UInt8
        let outputZero: Int32, low: Int32  // requantization: zero point and clamp floor
        let pools: [(size: Int, stride: Int, pad: Int)]
        let last: Bool
    }

    let steps: [Step]
    let inputRange: QuantRange
    let tail: Network<Float>
    let spec: ModelSpec

    /// The integer form of `model` for `spec`.
    public init(spec: ModelSpec, model: QuantizedModel) throws {
        let layers = quantizedLayers(spec), shapes = try spec.shapes()
        guard layers.first == 0 else { throw ModelError.badSpec("integer inference needs a convolution or affine first layer") }
        guard Set(layers) == Set(model.layers.keys) else { throw ModelError.badSpec("the int8 model does not cover every convolution and affine layer") }
        var steps: [Step] = []
        for (n, i) in layers.enumerated() {
            let q = model.layers[i]!, input = q.input, channels = q.channels
            let inShape = i == 0 ? spec.inputShape : shapes[i - 1]
            // B (K, channels) as int8 codes, rows in the order the activations are laid out.
            var window: Window? = nil
            let taps = q.weights.count / channels
            var codes = [Int8](repeating: 0, count: q.weights.count)
            switch spec.layers[i] {
            case let .convolution(_, k, s, p):
                let c = inShape[0]
                window = Window(input: [1] + inShape, fh: k, fw: k, stride: s, pad: p)
                for f in 0..<channels {
                    for ch in 0..<c {
                        for ky in 0..<k {
                            for kx in 0..<k { codes[((ky * k + kx) * c + ch) * channels + f] = q.weights[((f * c + ch) * k + ky) * k + kx] }
                        }
                    }
                }
            default:
                // A (C, H, W) input arrives channels last: feature (c, h, w) sits at (h, w, c).
                let (c, hw) = inShape.count == 3 ? (inShape[0], inShape[1] * inShape[2]) : (1, taps)
                for row in 0..<taps {
                    let at = inShape.count == 3 ? (row % hw) * c + row / hw : row
                    for f in 0..<channels { codes[at * channels + f] = q.weights[row * channels + f] }
                }
            }
            var sums = [Int32](repeating: 0, count: channels)
            for idx in codes.indices { sums[idx % channels] += Int32(codes[idx]) }
            let inputZero = input.zeroPoint + offset(input)
            let correction = (0..<channels).map { q.bias[$0] - Int32(inputZero) * sums[$0] }
            // The layers up to the next quantized one: ReLU, max pooling and dropout fold in.
            let next = n + 1 < layers.count ? layers[n + 1] : nil
            var relu = false, factor = 1.0, pools: [(size: Int, stride: Int, pad: Int)] = []
            for j in (i + 1)..<(next ?? i + 1) {
                switch spec.layers[j] {
                case .relu: relu = true
                case let .dropout(r): factor *= 1 - r
                case let .maxPooling(k, s, p): pools.append((k, s, p))
                default: throw ModelError.badSpec("integer inference cannot fold \(spec.layerNames[j]) between quantized layers")
                }
            }
            let out = next.map { model.layers[$0]!.input }
            let outZero = out.map { Int32($0.zeroPoint + offset($0)) } ?? 0
            var packed = [Int8](repeating: 0, count: precis_pack_s8_size(Int32(taps), Int32(channels)))
            precis_pack_s8(Int32(taps), Int32(channels), codes, Int32(channels), &packed)
            steps.append(Step(layer: i, window: window, inputs: inShape[0], outputs: channels, taps: taps, packed: packed,
                              correction: correction,
                              scale: (0..<channels).map { Float(input.scale * q.weightScale($0) * (out.map { factor / $0.scale } ?? 1)) },
                              inputZero: UInt8(inputZero), outputZero: outZero,
                              low: relu ? outZero : Int32(out.map { $0.qmin + offset($0) } ?? 0), pools: pools, last: next == nil))
        }
        self.steps = steps
        self.spec = spec
        inputRange = model.layers[0]!.input
        tail = try Network<Float>(spec: spec, parameters: model.dequantized(spec, [:]))
    }

    /// Logits `(N, classes)` for `x: (N, C, H, W)`, computed with integer arithmetic up to the last
    /// quantized layer.
    public func predict(_ x: Tensor<Float>) -> Tensor<Float> {
        let run = codes(x, through: steps.count)
        return tail.forward(run.y!, layers: (run.layer + 1)..<spec.layers.count)
    }

    /// The input codes of every quantized layer after the first, as the integer path computes them,
    /// `(N, C, H, W)` in the int8 domain of `FakeQuantNetwork.inputCodes` (uint8 codes minus 128).
    func inputCodes(_ x: Tensor<Float>) -> [[Int8]] {
        (1..<steps.count).map { s in
            let run = codes(x, through: s).codes!
            return planar(run.data, run.shape).map { Int8(Int($0) - 128) }
        }
    }

    /// Runs the first `count` steps: the codes they leave, channels last with their `(N, H, W, C)`
    /// shape, or the final step's dequantized output with the index of its layer.
    private func codes(_ x: Tensor<Float>, through count: Int) -> (codes: (data: [UInt8], shape: [Int])?, y: Tensor<Float>?, layer: Int) {
        let off = offset(inputRange)
        var shape = x.shape.count == 4 ? [x.shape[0], x.shape[2], x.shape[3], x.shape[1]] : x.shape
        var data = channelsLast(x.data.map { UInt8(inputRange.quantize(Double($0)) + off) }, x.shape)
        for step in steps.prefix(count) {
            let n = shape[0]
            var acc: [Int32], outShape: [Int]
            if let w = step.window {
                let g = Window(input: [n, shape[3], shape[1], shape[2]], fh: w.fh, fw: w.fw, stride: w.stride, pad: w.pad)
                let lda = (step.taps + 3) / 4 * 4, pixels = g.pixels, input = data
                outShape = [n, g.oh, g.ow, step.outputs]
                acc = [Int32](unsafeUninitializedCapacity: n * pixels * step.outputs) { $1 = $0.count }
                acc.withUnsafeMutableBufferPointer { a in
                    parallelChunks(n, work: n * pixels * step.outputs * step.taps) { images in
                        var rows = [UInt8](repeating: 0, count: pixels * lda)
                        for image in images {
                            windows(input, g, image: image, fill: step.inputZero, into: &rows, lda)
                            precis_gemm_u8s8(Int32(pixels), Int32(step.outputs), Int32(step.taps), rows, Int32(lda), step.packed,
                                             a.baseAddress! + image * pixels * step.outputs, Int32(step.outputs), 0)
                        }
                    }
                }
            } else {
                let fin = data.count / n, lda = (fin + 3) / 4 * 4
                var rows = [UInt8](repeating: 0, count: n * lda)
                for r in 0..<n { for j in 0..<fin { rows[r * lda + j] = data[r * fin + j] } }
                outShape = [n, step.outputs]
                acc = [Int32](repeating: 0, count: n * step.outputs)
                precis_gemm_u8s8(Int32(n), Int32(step.outputs), Int32(fin), rows, Int32(lda), step.packed, &acc, Int32(step.outputs), 0)
            }
            let channels = step.outputs
            if step.last {
                var y = [Float](repeating: 0, count: acc.count)
                for k in acc.indices { y[k] = step.scale[k % channels] * Float(acc[k] + step.correction[k % channels]) }
                if outShape.count == 4 { y = planar(y, outShape) }
                let floatShape = outShape.count == 4 ? [outShape[0], outShape[3], outShape[1], outShape[2]] : outShape
                return (nil, Tensor(shape: floatShape, data: y), step.layer)
            }
            data = requantize(acc, step)
            shape = outShape
            for p in step.pools { (data, shape) = maxPoolCodes(data, shape, p) }
        }
        return ((data, shape), nil, steps[count - 1].layer)
    }

    /// `step`'s int32 sums as the next layer's codes: `clamp(round(scale·(sum + correction)) + zero)`.
    private func requantize(_ acc: [Int32], _ step: Step) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: acc.count) { out, initialized in
            precis_requantize_u8(acc, Int32(acc.count / step.outputs), Int32(step.outputs), step.correction, step.scale, Float(step.outputZero),
                                 Float(step.low), out.baseAddress!)
            initialized = acc.count
        }
    }
}

/// `r`'s codes are kept shifted up by this (128 for signed int8), so that all are uint8.
func offset(_ r: QuantRange) -> Int { r.qmin < 0 ? 128 : 0 }

/// `(N, C, H, W)` values as `(N, H, W, C)`; other shapes unchanged.
func channelsLast<T>(_ x: [T], _ shape: [Int]) -> [T] {
    guard shape.count == 4, shape[1] > 1 else { return x }
    let (c, hw) = (shape[1], shape[2] * shape[3])
    return (0..<x.count).map { k in x[(k / (hw * c) * c + k % c) * hw + k / c % hw] }
}

/// `(N, H, W, C)` values (given that shape) as `(N, C, H, W)`; other shapes unchanged.
func planar<T>(_ x: [T], _ shape: [Int]) -> [T] {
    guard shape.count == 4, shape[3] > 1 else { return x }
    let (n, hw, c) = (shape[0], shape[1] * shape[2], shape[3])
    return (0..<(n * hw * c)).map { k in x[(k / (c * hw) * hw + k % hw) * c + k / hw % c] }
}

/// For every output pixel of `image` (channels-last codes `x`), its window as one row of `rows`:
/// `(ky, kx, c)` order, `lda` bytes a row, padding read as `fill`.
private func windows(_ x: [UInt8], _ g: Window, image: Int, fill: UInt8, into rows: inout [UInt8], _ lda: Int) {
    let c = g.c, run = g.fw * c
    x.withUnsafeBufferPointer { xs in
        rows.withUnsafeMutableBufferPointer { rs in
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    let row = rs.baseAddress! + (oy * g.ow + ox) * lda, x0 = ox * g.stride - g.pad
                    for ky in 0..<g.fh {
                        let y = oy * g.stride + ky - g.pad, dst = row + ky * run
                        guard y >= 0 && y < g.h else {
                            dst.update(repeating: fill, count: run)
                            continue
                        }
                        let src = xs.baseAddress! + ((image * g.h + y) * g.w) * c
                        if x0 >= 0 && x0 + g.fw <= g.w {
                            dst.update(from: src + x0 * c, count: run)
                        } else {
                            for kx in 0..<g.fw {
                                let xx = x0 + kx
                                if xx >= 0 && xx < g.w { (dst + kx * c).update(from: src + xx * c, count: c) } else { (dst + kx * c).update(repeating: fill, count: c) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Max pooling on channels-last codes `(N, H, W, C)`; padding never wins.
private func maxPoolCodes(_ x: [UInt8], _ shape: [Int], _ p: (size: Int, stride: Int, pad: Int)) -> ([UInt8], [Int]) {
    let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
    let g = Window(input: [n, c, h, w], fh: p.size, fw: p.size, stride: p.stride, pad: p.pad)
    let out = [UInt8](unsafeUninitializedCapacity: n * g.pixels * c) { out, initialized in
        out.initialize(repeating: 0)  // codes are never below 0, so 0 never wins
        x.withUnsafeBufferPointer { xs in
            for image in 0..<n {
                for oy in 0..<g.oh {
                    for ox in 0..<g.ow {
                        let y0 = max(0, oy * p.stride - p.pad), y1 = min(h, oy * p.stride - p.pad + p.size)
                        let x0 = max(0, ox * p.stride - p.pad), x1 = min(w, ox * p.stride - p.pad + p.size)
                        let o = out.baseAddress! + ((image * g.oh + oy) * g.ow + ox) * c
                        for y in y0..<y1 {
                            for xx in x0..<x1 {
                                let i = xs.baseAddress! + ((image * h + y) * w + xx) * c
                                for ch in 0..<c { o[ch] = max(o[ch], i[ch]) }
                            }
                        }
                    }
                }
            }
        }
        initialized = out.count
    }
    return (out, [n, g.oh, g.ow, c])
}
