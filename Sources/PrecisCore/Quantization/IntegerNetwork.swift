import CKernels
import Foundation

/// Integer-only inference of a network quantized by `FakeQuantNetwork`. Between quantized layers
/// (convolutions and affine layers) values are int8 codes; each such layer is an int8 × int8 →
/// int32 GEMM (`precis_gemm_s8`: AVX-512 VNNI or its portable twin), and its int32 sums are
/// requantized to the next quantized layer's input codes with a float multiplier per output
/// channel, `s_in·s_w·d / s_next` in Double (not a fixed-point multiplier and shift), rounded half
/// to even. ReLU between them folds into the requantization clamp (codes below the zero point),
/// dropout's inference factor `d` folds into the multiplier, and max pooling runs on the codes.
/// The last quantized layer's sums are dequantized to Float; the layers after it run in Float.
/// uint8 codes are kept as int8 minus 128, with the zero point moved alike.
public final class IntegerNetwork {
    /// One quantized layer and the layers up to the next one.
    struct Step {
        let layer: Int
        let window: (fh: Int, fw: Int, stride: Int, pad: Int)?  // nil for an affine layer
        let outputs: Int
        let weights: [Int8]  // convolution (FN, K); affine (in, out)
        let weightSums: [Int32]  // Σ of each output channel's weight codes
        let bias: [Int32]  // at scale s_in·s_w
        let inputZero: Int32  // in the int8 domain
        let scale: [Double]  // per output channel: s_in·s_w, times d / s_next unless last
        let outputZero: Int32, low: Int32  // requantization: zero point and clamp floor (int8 domain)
        let pools: [(size: Int, stride: Int, pad: Int)]
        let last: Bool
    }

    let steps: [Step]
    let inputRange: QuantRange
    let tail: Network<Float>
    let spec: ModelSpec

    /// The integer form of `q`, for the same `spec` and float32 `tensors` it was built from.
    public init(_ q: FakeQuantNetwork, spec: ModelSpec, tensors: [String: Tensor<Double>]) throws {
        let layers = quantizedLayers(spec)
        guard let first = layers.first, first == 0 else { throw ModelError.badSpec("integer inference needs a convolution or affine first layer") }
        var steps: [Step] = []
        for (n, i) in layers.enumerated() {
            let name = spec.layerNames[i], input = q.inputRanges[i]!, ranges = q.weightRanges[i]!
            let w = tensors[name + "/W"]!, b = tensors[name + "/b"]!, channels = b.count
            let next = n + 1 < layers.count ? layers[n + 1] : nil
            var window: (fh: Int, fw: Int, stride: Int, pad: Int)? = nil
            var codes = [Int8](repeating: 0, count: w.count)
            switch spec.layers[i] {
            case let .convolution(_, k, s, p):
                window = (k, k, s, p)
                for idx in w.data.indices { codes[idx] = Int8(ranges[ranges.count == 1 ? 0 : idx / (w.count / channels)].quantize(w.data[idx])) }
            default:
                for idx in w.data.indices { codes[idx] = Int8(ranges[ranges.count == 1 ? 0 : idx % channels].quantize(w.data[idx])) }
            }
            var sums = [Int32](repeating: 0, count: channels)
            for idx in codes.indices { sums[window == nil ? idx % channels : idx / (w.count / channels)] += Int32(codes[idx]) }
            let sw = (0..<channels).map { ranges[ranges.count == 1 ? 0 : $0].scale }
            let bias = (0..<channels).map { Int32((b.data[$0] / (input.scale * sw[$0])).rounded(.toNearestOrEven)) }
            // The layers up to the next quantized one: ReLU, max pooling and dropout fold in.
            var relu = false, factor = 1.0, pools: [(size: Int, stride: Int, pad: Int)] = []
            if let next {
                for j in (i + 1)..<next {
                    switch spec.layers[j] {
                    case .relu: relu = true
                    case let .dropout(r): factor *= 1 - r
                    case let .maxPooling(k, s, p): pools.append((k, s, p))
                    default: throw ModelError.badSpec("integer inference cannot fold \(spec.layerNames[j]) between quantized layers")
                    }
                }
            }
            let out = next.map { q.inputRanges[$0]! }
            let outZero = out.map { Int32($0.zeroPoint - offset($0)) } ?? 0
            steps.append(Step(layer: i, window: window, outputs: channels, weights: codes, weightSums: sums, bias: bias,
                              inputZero: Int32(input.zeroPoint - offset(input)),
                              scale: sw.map { input.scale * $0 * (out.map { factor / $0.scale } ?? 1) },
                              outputZero: outZero, low: relu ? outZero : Int32(out.map { $0.qmin - offset($0) } ?? -128),
                              pools: pools, last: next == nil))
        }
        self.steps = steps
        self.spec = spec
        inputRange = q.inputRanges[0]!
        tail = q.network
    }

    /// Logits `(N, classes)` for `x: (N, C, H, W)`, computed with integer arithmetic up to the last
    /// quantized layer.
    public func predict(_ x: Tensor<Float>) -> Tensor<Float> {
        let run = codes(x, through: steps.count)
        return tail.forward(run.y!, layers: (run.layer + 1)..<spec.layers.count)
    }

    /// The input codes of every quantized layer after the first, as the integer path computes them
    /// (int8 domain), for `x`: for tests against fake quantization.
    func inputCodes(_ x: Tensor<Float>) -> [[Int8]] {
        var out: [[Int8]] = []
        for s in 1..<steps.count { out.append(codes(x, through: s).codes!.data) }
        return out
    }

    /// Runs the first `count` steps: their codes (when the last step run is not the final one) or
    /// the dequantized output of the final step, with the index of its last layer.
    private func codes(_ x: Tensor<Float>, through count: Int) -> (codes: (data: [Int8], shape: [Int])?, y: Tensor<Float>?, layer: Int) {
        var shape = x.shape
        var data = x.data.map { Int8(inputRange.quantize(Double($0)) - offset(inputRange)) }
        for step in steps.prefix(count) {
            let n = shape[0]
            var acc: [Int32], outShape: [Int], pixels: Int
            if let w = step.window {
                let g = Window(input: shape, fh: w.fh, fw: w.fw, stride: w.stride, pad: w.pad)
                (pixels, outShape) = (g.pixels, [n, step.outputs, g.oh, g.ow])
                acc = [Int32](repeating: 0, count: n * step.outputs * pixels)
                let input = data
                acc.withUnsafeMutableBufferPointer { a in
                    parallelChunks(n, work: n * step.outputs * pixels * g.cols) { images in
                        var col = [Int8](repeating: 0, count: g.cols * pixels)
                        for image in images {
                            unfoldCodes(input, g, image: image, fill: Int8(step.inputZero), into: &col)
                            precis_gemm_s8(Int32(step.outputs), Int32(pixels), Int32(g.cols), step.weights, Int32(g.cols), col, Int32(pixels),
                                           a.baseAddress! + image * step.outputs * pixels, Int32(pixels), 0)
                        }
                    }
                }
            } else {
                let fin = data.count / n
                (pixels, outShape) = (1, [n, step.outputs])
                acc = [Int32](repeating: 0, count: n * step.outputs)
                acc.withUnsafeMutableBufferPointer { a in
                    precis_gemm_s8(Int32(n), Int32(step.outputs), Int32(fin), data, Int32(fin), step.weights, Int32(step.outputs), a.baseAddress!,
                                   Int32(step.outputs), 0)
                }
            }
            // Output channel of accumulator index k: (N, FN, P) for a convolution, (N, out) for affine.
            let channel = { (k: Int) in step.window == nil ? k % step.outputs : k / pixels % step.outputs }
            if step.last {
                let y = acc.indices.map { k -> Float in
                    let f = channel(k)
                    return Float(step.scale[f] * Double(acc[k] - step.inputZero * step.weightSums[f] + step.bias[f]))
                }
                return (nil, Tensor(shape: outShape, data: y), step.layer)
            }
            data = acc.indices.map { k in
                let f = channel(k)
                let q = (step.scale[f] * Double(acc[k] - step.inputZero * step.weightSums[f] + step.bias[f])).rounded(.toNearestOrEven)
                return Int8(min(127, max(Double(step.low), q + Double(step.outputZero))))
            }
            shape = outShape
            for p in step.pools { (data, shape) = maxPoolCodes(data, shape, p) }
        }
        return ((data, shape), nil, steps[count - 1].layer)
    }
}

/// `r`'s codes are kept in int8 shifted down by this (128 for uint8).
func offset(_ r: QuantRange) -> Int { r.qmin == 0 ? 128 : 0 }

/// The im2col of `image` of int8 codes `x (N, C, H, W)`: `(C·FH·FW, OH·OW)`, padding read as `fill`.
private func unfoldCodes(_ x: [Int8], _ g: Window, image: Int, fill: Int8, into col: inout [Int8]) {
    let p = g.pixels
    for r in 0..<g.cols {
        let t = g.tap(r)
        for oy in 0..<g.oh {
            let y = oy * g.stride + t.ky - g.pad
            for ox in 0..<g.ow {
                let xx = ox * g.stride + t.kx - g.pad
                col[r * p + oy * g.ow + ox] = y >= 0 && y < g.h && xx >= 0 && xx < g.w ? x[((image * g.c + t.ch) * g.h + y) * g.w + xx] : fill
            }
        }
    }
}

/// Max pooling on int8 codes `(N, C, H, W)`; padding never wins.
private func maxPoolCodes(_ x: [Int8], _ shape: [Int], _ p: (size: Int, stride: Int, pad: Int)) -> ([Int8], [Int]) {
    let g = Window(input: shape, fh: p.size, fw: p.size, stride: p.stride, pad: p.pad)
    var out = [Int8](repeating: 0, count: g.n * g.c * g.pixels)
    for plane in 0..<(g.n * g.c) {
        for oy in 0..<g.oh {
            for ox in 0..<g.ow {
                let y0 = max(0, oy * p.stride - p.pad), y1 = min(g.h, oy * p.stride - p.pad + p.size)
                let x0 = max(0, ox * p.stride - p.pad), x1 = min(g.w, ox * p.stride - p.pad + p.size)
                var best = Int8.min
                for y in y0..<y1 { for xx in x0..<x1 { best = max(best, x[(plane * g.h + y) * g.w + xx]) } }
                out[(plane * g.oh + oy) * g.ow + ox] = best
            }
        }
    }
    return (out, [g.n, g.c, g.oh, g.ow])
}
