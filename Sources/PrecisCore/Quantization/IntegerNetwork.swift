import CKernels
import Foundation

/// Integer-only inference of a `QuantizedModel`. Between quantized layers (convolutions and
/// affine layers) values are 8-bit codes, channels last (NHWC); each such layer is a uint8 × int8
/// → int32 GEMM (`precis_gemm_u8s8`: AVX-512 VNNI or its portable twin) over each output pixel's
/// window, and its int32 sums are requantized to the next quantized layer's input codes with a
/// float32 multiplier per output channel, `s_in·s_w·d / s_next` (a float scale, not a fixed-point
/// multiplier and shift), rounded half to even. ReLU and clips such as ReLU6 between them fold into
/// the requantization clamp (the codes of the clip's ends), dropout's inference factor `d` into the
/// multiplier, a batch normalization the model folds into the layer's weights and bias, a residual
/// sum with a skip input's codes into the requantization (`precis_requantize_add_u8`), and max
/// pooling runs on the codes. A depthwise convolution sums in a kernel of its own
/// (`precis_depthwise_u8s8`). Merges read the inputs a quantized layer also reads as that layer's
/// codes (`QuantizedModel.mergeInputRanges`); a concatenation of quantized branches that goes
/// straight to a quantized layer joins the branches' codes, each requantized to that layer's range.
/// Signed int8 codes are kept as uint8 plus 128, with the zero point
/// moved alike, so every GEMM multiplies unsigned activations by signed weights. A stride-1
/// convolution reads its windows in place from the padded image (`precis_gemm_u8s8_segments`, one
/// call per output row), and each image's sums are requantized and pooled right after its GEMMs,
/// while they are in cache.
///
/// Where a quantized layer is followed by anything else before the next one (a layer the model
/// keeps in float, as mixed precision does, or a layer or merge that cannot fold), its sums are
/// dequantized to Float, those layers run in Float, and the next quantized layer quantizes its
/// input with its own range. The layers after the last quantized layer run in Float.
///
/// Dynamic quantization (`dynamic`): every quantized layer's input range is the min-max range of
/// the batch itself. Each layer's sums are dequantized with a float bias added, with ReLU and
/// dropout folded in; max pooling runs on those Float values, channels last, and the next layer
/// quantizes them with their own range.
public final class IntegerNetwork {
    /// One quantized layer and, when it requantizes, the layers it folds up to the next one.
    struct Step {
        let layer: Int
        let window: Window?  // a plain convolution's; n is unused
        /// A depthwise convolution's geometry on one image; its weights are `packed` as `(taps, C)`.
        let depthwise: precis_depthwise_shape?
        var isAffine: Bool { window == nil && depthwise == nil }
        let outputs: Int
        let taps: Int  // K, the sum's length; rows of A are padded to a multiple of 4
        /// B (K, outputs), K ordered (ky, kx, c) for a convolution. A stride-1 convolution's
        /// window rows are padded to `rowBytes` (a multiple of 4) with zero weights.
        let packed: [Int8]
        let rowBytes: Int
        /// Per window row `ky`, per channel: Σ weight codes of the row (stride-1 convolutions).
        let rowSums: [[Int32]]
        let input: QuantRange
        let sums: [Int32]  // per channel: Σ weight codes
        let weightScales: [Double]  // per channel
        let bias: [Int32]  // bias codes at s_in·s_w
        let floatBias: [Float]  // for dynamic quantization
        let factor: Double  // folded dropout factors
        let clamp: (low: Double, high: Double)  // folded ReLU and clips, on the step's output values
        let pools: [(size: Int, stride: Int, pad: Int)]
        /// A residual add folded into the requantization: the output of layer `source`, whose codes
        /// in `range` are added to the sums.
        let skip: (source: Int, range: QuantRange)?
        let next: QuantRange?  // the next layer's input range when the step requantizes to it
        /// Whether the codes are a branch of a concatenation, kept for it rather than passed on.
        let holds: Bool
        /// The last layer whose output the step leaves.
        var end: Int { layer + (next == nil ? 0 : foldedCount) }
        let foldedCount: Int
    }

    let steps: [Step]
    /// Quantized layers that run in float on quantized-dequantized inputs and weights: their input ranges.
    let simulated: [Int: QuantRange]
    let float: Network<Float>
    let spec: ModelSpec
    /// The merges' inputs read as codes, by merge and source layer (`QuantizedModel.mergeInputRanges`).
    let mergeRanges: [Int: [Int: QuantRange]]
    /// The concatenations that join their branches' codes, with the range those are in.
    let joins: [Int: QuantRange]
    /// Whether inputs are quantized per batch (dynamic quantization).
    public let dynamic: Bool
    /// The batch normalizations folded into the layer before them, by index.
    let folded: Set<Int>
    /// Bytes of the weights: the quantized layers' (`QuantizedModel.bytes`) plus
    /// `floatBytesPerValue` a value for the layers kept in float.
    public let modelBytes: Int
    /// The layers that run in float: not quantized, and not folded into a requantization.
    public let floatLayers: [Int]

    /// The integer form of `model` for `spec`. `tensors` (the float master) supplies everything
    /// the model leaves in float (stored with `floatBytesPerValue` bytes a value): layers kept in
    /// float, batch normalization, dynamic quantization's biases. It is required, so that no
    /// caller can leave such a layer without its values. A dynamic model quantizes every input
    /// with the batch's own range.
    public init(
        spec: ModelSpec, model: QuantizedModel, tensors: [String: Tensor<Double>], floatBytesPerValue: Int = 4
    ) throws {
        let geometry = try spec.geometry(), consumers = spec.consumers, mergeRanges = model.mergeInputRanges(spec)
        let floats = try spec.folding(model.folded, in: tensors)
        // Depthwise convolutions (of any kernel, stride, padding and dilation) have an integer kernel of
        // their own. Other convolutions beyond the book's kind (groups, rectangular kernels, dilation)
        // have none: they run as their simulation does, on dequantized weights and inputs.
        func runsSimulated(_ i: Int) -> Bool {
            guard geometry.indices.contains(i), case .convolution(let c) = spec.layers[i] else { return false }
            return !c.isPlain && !c.isDepthwise(channels: geometry[i].inputShape[0])
        }
        let simulated = model.layers.filter { i, _ in runsSimulated(i) }.mapValues(\.input)
        self.simulated = simulated
        let layers = model.layers.keys.filter { simulated[$0] == nil }.sorted()
        let firstReader = model.firstReaders(spec), readers = spec.readers
        let merges = Set(spec.layers.indices.filter { spec.layers[$0].isMerge })
        /// Whether layer `j` folds into a requantization after the layer before it, alone.
        func foldable(_ j: Int) -> Bool {
            switch spec.layers[j] {
            case .relu, .maxPooling: return true
            case .activation(.clip(let lo, let hi)): return lo <= 0 && hi >= 0
            default: return model.folded.contains(j)
            }
        }
        // A concatenation that only the quantized layer right after it reads, each of whose inputs is a
        // quantized layer's output through single-reader layers that fold, joins codes: each branch
        // requantizes to that layer's range (quantizing commutes with concatenating).
        var branches: [Int: (end: Int, target: Int)] = [:], joins: [Int: QuantRange] = [:]
        for c in spec.layers.indices where !model.dynamic && spec.layers[c] == .merge(.concat) {
            let n = c + 1, from = spec.inputs(of: c)
            guard n < spec.layers.count, consumers[c] == 1, spec.inputs(of: n) == [c], layers.contains(n),
                Set(from).count == from.count
            else { continue }
            let heads = from.map { e in
                var i = e
                while i >= 0 && !layers.contains(i) && foldable(i) && spec.inputs(of: i) == [i - 1]
                    && consumers[i - 1] == 1
                {
                    i -= 1
                }
                return i >= 0 && layers.contains(i) && consumers[e] == 1 ? i : nil
            }
            guard heads.allSatisfy({ $0 != nil }) else { continue }
            for (head, e) in zip(heads, from) { branches[head!] = (e, n) }
            joins[c] = model.layers[n]!.input
        }
        /// For an add at `j` reading layer j - 1 and another input that the step of layer `i` or one before holds
        /// as codes, of the same shape: that input and its range.
        func residual(_ j: Int, after i: Int) -> (source: Int, range: QuantRange)? {
            let from = spec.inputs(of: j)
            guard spec.layers[j] == .merge(.add), from.count == 2, from.contains(j - 1),
                let s = from.first(where: { $0 != j - 1 }), let r = mergeRanges[j]?[s], let reader = firstReader[s],
                reader <= i, simulated[reader] == nil,
                (s < 0 ? spec.inputShape : geometry[s].outputShape) == geometry[j].outputShape
            else { return nil }
            return (s, r)
        }
        var steps: [Step] = []
        for (n, i) in layers.enumerated() {
            let q = model.layers[i]!, channels = q.channels
            guard geometry.indices.contains(i), geometry[i].tensor(.weight)?.shape == q.shape,
                q.weights.count == q.shape.reduce(1, *)
            else {
                throw ModelError.badSpec(
                    "the int8 model's layer \(i) does not match the network's convolutions and affine layers")
            }
            let inShape = geometry[i].inputShape
            // B (K, channels) as int8 codes, rows in the order the activations are laid out.
            let window = geometry[i].window, taps = q.weights.count / channels
            var depthwise: precis_depthwise_shape? = nil
            if case .convolution(let c) = spec.layers[i], c.isDepthwise(channels: inShape[0]) {
                depthwise = c.depthwiseShape(inShape)
            }
            var codes = [Int8](repeating: 0, count: q.weights.count)
            if depthwise != nil {
                // (taps, C): each tap's weights for all channels side by side.
                for f in 0..<channels { for t in 0..<taps { codes[t * channels + f] = q.weights[f * taps + t] } }
            } else if let w = window {
                for f in 0..<channels {
                    for ch in 0..<w.c {
                        for ky in 0..<w.fh {
                            for kx in 0..<w.fw {
                                codes[((ky * w.fw + kx) * w.c + ch) * channels + f] =
                                    q.weights[((f * w.c + ch) * w.fh + ky) * w.fw + kx]
                            }
                        }
                    }
                }
            } else {
                // An affine layer: a (C, H, W) input arrives channels last, so feature (c, h, w)
                // sits at (h, w, c).
                let (c, hw) = inShape.count == 3 ? (inShape[0], inShape[1] * inShape[2]) : (1, taps)
                for row in 0..<taps {
                    let at = inShape.count == 3 ? (row % hw) * c + row / hw : row
                    for f in 0..<channels { codes[at * channels + f] = q.weights[row * channels + f] }
                }
            }
            var sums = [Int32](repeating: 0, count: channels)
            for idx in codes.indices { sums[idx % channels] += Int32(codes[idx]) }
            // The layers up to the next quantized one fold in when they are ReLU, clips, max pooling,
            // dropout, folded normalizations and a residual add before any of the others, each reading
            // the one before, which nothing else reads; otherwise they run in Float. The last one's
            // output may also go to merges, which read the codes the step makes.
            let next = n + 1 < layers.count ? layers[n + 1] : nil, branch = branches[i]
            var clamp = (low: -Double.infinity, high: Double.infinity), factor = 1.0
            var pools: [(size: Int, stride: Int, pad: Int)] = []
            var skip: (source: Int, range: QuantRange)? = nil
            var folds =
                branch != nil
                || next.map { next in
                    let others = readers[next - 1].filter { $0 != next }
                    return spec.inputs(of: next) == [next - 1]
                        && (others.isEmpty || !model.dynamic && others.allSatisfy { merges.contains($0) })
                } ?? false
            let stop = branch.map { $0.end + 1 } ?? next ?? i + 1
            for j in (i + 1)..<stop {
                let from = spec.inputs(of: j)
                folds = folds && from.contains(j - 1) && consumers[j - 1] == 1
                if from.count > 1 {
                    let alone =
                        skip == nil && pools.isEmpty && factor == 1 && clamp.low == -.infinity
                        && clamp.high == .infinity
                    if alone, let r = residual(j, after: i) { skip = r } else { folds = false }
                } else if case .relu = spec.layers[j] {
                    clamp.low = max(clamp.low, 0)
                } else if case let .activation(.clip(lo, hi)) = spec.layers[j], lo <= 0, hi >= 0 {
                    clamp = (max(clamp.low, lo), min(clamp.high, hi))
                } else if case let .dropout(r) = spec.layers[j], skip == nil {
                    factor *= 1 - r
                    clamp = (clamp.low * (1 - r), clamp.high * (1 - r))
                } else if case let .maxPooling(k, s, p) = spec.layers[j] {
                    pools.append((k, s, p))
                } else if !model.folded.contains(j) {
                    folds = false
                }
            }
            // A stride-1 convolution reads its windows in place, a window row of `rowBytes` at a time.
            var rowBytes = 0, rowSums: [[Int32]] = []
            if let w = window, w.stride == 1 {
                rowBytes = (w.fw * w.c + 3) / 4 * 4
                let run = w.fw * w.c
                var rows = [Int8](repeating: 0, count: w.fh * rowBytes * channels)
                for ky in 0..<w.fh {
                    for j in 0..<run {
                        for f in 0..<channels {
                            rows[(ky * rowBytes + j) * channels + f] = codes[(ky * run + j) * channels + f]
                        }
                    }
                }
                codes = rows
                rowSums = (0..<w.fh).map { ky in
                    (0..<channels).map { f in
                        (0..<run).reduce(0) { $0 + Int32(rows[(ky * rowBytes + $1) * channels + f]) }
                    }
                }
            }
            let k = rowBytes > 0 ? codes.count / channels : taps
            var packed = codes
            if depthwise == nil {
                packed = [Int8](repeating: 0, count: precis_pack_s8_size(Int32(k), Int32(channels)))
                precis_pack_s8(Int32(k), Int32(channels), codes, Int32(channels), &packed)
            }
            let b = floats[geometry[i].key("b")]
            steps.append(
                Step(
                    layer: i, window: window, depthwise: depthwise, outputs: channels, taps: taps, packed: packed,
                    rowBytes: rowBytes,
                    rowSums: rowSums, input: q.input, sums: sums,
                    weightScales: (0..<channels).map(q.weightScale), bias: q.bias,
                    floatBias: (0..<channels).map {
                        Float(b?.data[$0] ?? Double(q.bias[$0]) * q.input.scale * q.weightScale($0))
                    },
                    factor: factor, clamp: clamp, pools: pools, skip: folds ? skip : nil,
                    next: folds ? model.layers[branch?.target ?? next!]!.input : nil, holds: folds && branch != nil,
                    foldedCount: folds ? stop - 1 - i : 0))
        }
        self.steps = steps
        self.spec = spec
        self.mergeRanges = mergeRanges
        self.joins = joins
        self.dynamic = model.dynamic
        folded = model.folded
        var dequantized = try model.dequantized(spec, tensors)
        for i in simulated.keys where model.dynamic {
            dequantized[geometry[i].key("b")] = floats[geometry[i].key("b")]
        }
        do { float = try Network<Float>(spec: spec, parameters: dequantized, folded: model.folded) } catch {
            throw ModelError.badSpec("the layers the int8 model leaves in float need their float weights (\(error))")
        }
        floatLayers = spec.layers.indices.filter { j in
            joins[j] == nil && !steps.contains { $0.layer <= j && j <= $0.end }
        }
        modelBytes = model.networkBytes(spec, floatBytesPerValue: floatBytesPerValue)
    }

    /// Each quantized layer with the layer whose output its step leaves: itself (or the batch
    /// normalization folded into it), or the last of the layers folded into its requantization.
    public var stages: [(layer: Int, output: Int)] {
        steps.map { step in
            var end = step.end
            while folded.contains(end + 1) && spec.inputs(of: end + 1) == [end] { end += 1 }
            return (step.layer, end)
        }
    }

    /// Logits `(N, classes)` for `x: (N, C, H, W)`.
    public func predict(_ x: Tensor<Float>) -> Tensor<Float> { run(x).y }

    /// The input followed by every layer's output, dequantized, as in `Network.forwardAll`; nil
    /// for the layers folded into a requantization (their values exist only inside it).
    public func forwardAll(_ x: Tensor<Float>) -> [Tensor<Float>?] {
        spec.hidingFolded(run(x, keep: true).outputs, folded)
    }

    /// The input codes of every quantized layer, as the integer path computes them, `(N, C, H, W)`
    /// in the int8 domain of `FakeQuantNetwork.inputCodes` (uint8 codes minus 128).
    func inputCodes(_ x: Tensor<Float>) -> [[Int8]] {
        run(x, keepCodes: true).codes.map { planar($0.data, $0.shape).map { Int8(Int($0) - 128) } }
    }

    /// Runs the network on `x`: the logits, every layer's output when `keep`, and each quantized
    /// layer's input codes (channels last, with their shape) when `keepCodes`.
    private func run(_ x: Tensor<Float>, keep: Bool = false, keepCodes: Bool = false)
        -> (y: Tensor<Float>, outputs: [Tensor<Float>?], codes: [(data: [UInt8], shape: [Int])])
    {
        // `outputs[j + 1]`: layer j's output in Float, where it exists (`outputs[0]` the input).
        var outputs = [Tensor<Float>?](repeating: nil, count: spec.layers.count + 1),
            codes: [(data: [UInt8], shape: [Int])] = []
        outputs[0] = x
        var data: [UInt8] = [], shape: [Int] = [], at = 0, carried: QuantRange? = nil
        // The codes of the values merges read as codes, by layer (channels last, with their shape).
        var held: [Int: (data: [UInt8], shape: [Int], range: QuantRange)] = [:]
        /// Drops the Float values layer `j` read last, unless every output is kept.
        func release(after j: Int, reading from: [Int]) {
            if !keep { for i in from where float.lastUse[i + 1] <= j { outputs[i + 1] = nil } }
        }
        func runFloat(to end: Int) {
            for j in at..<end {
                let from = spec.inputs(of: j)
                // A merge reads the codes of the inputs a quantized layer reads: those held, else
                // (that layer simulated) the values quantized and back.
                if let r = joins[j] {
                    // Each branch's codes, pixel by pixel, one after the other.
                    let parts = from.map { held[$0]! }, n = parts[0].shape.dropLast().reduce(1, *)
                    data = []
                    data.reserveCapacity(parts.reduce(0) { $0 + $1.data.count })
                    for p in 0..<n {
                        for h in parts {
                            let c = h.shape.last!
                            data += h.data[(p * c)..<((p + 1) * c)]
                        }
                    }
                    shape = Array(parts[0].shape.dropLast()) + [parts.reduce(0) { $0 + $1.shape.last! }]
                    carried = r
                    if keep { outputs[j + 1] = dequantized(data, shape, r) }
                    continue
                }
                var xs = from.map { s in
                    guard let r = mergeRanges[j]?[s] else {
                        return held[s].map { dequantized($0.data, $0.shape, $0.range) } ?? outputs[s + 1]!
                    }
                    guard let h = held[s] else {
                        var v = outputs[s + 1]!
                        v.data = v.data.map { Float(r.fakeQuantize(Double($0))) }
                        return v
                    }
                    return dequantized(h.data, h.shape, r)
                }
                if let r = simulated[j] {
                    let range = dynamic ? QuantRange.covering(xs[0].data, like: r) : r
                    xs[0].data = xs[0].data.map { Float(range.fakeQuantize(Double($0))) }
                }
                outputs[j + 1] = float.forward(xs, layer: j)
                release(after: j, reading: from)
            }
        }
        for step in steps {
            runFloat(to: step.layer)
            var input = carried ?? step.input
            if carried == nil {
                let v = outputs[spec.inputs(of: step.layer)[0] + 1]!
                input = dynamic ? .covering(v.data, like: step.input) : step.input
                data = channelsLast(quantized(v.data, input), v.shape)
                shape = v.shape.count == 4 ? [v.shape[0], v.shape[2], v.shape[3], v.shape[1]] : v.shape
            }
            if keepCodes { codes.append((data, shape)) }
            let source = spec.inputs(of: step.layer)[0]
            if !dynamic && mergeRanges.values.contains(where: { $0[source] == input }) && held[source] == nil {
                held[source] = (data, shape, input)
            }
            release(after: step.end, reading: spec.inputs(of: step.layer) + (step.skip.map { [$0.source] } ?? []))
            let inputZero = Int32(input.zeroPoint + offset(input))
            let correction = (0..<step.outputs).map { (dynamic ? 0 : step.bias[$0]) - inputZero * step.sums[$0] }
            if let next = step.next, !dynamic {
                let skip = step.skip.map { held[$0.source]! }
                (data, shape) = requantized(
                    step, to: next, input: input, correction: correction, data, shape,
                    skip: skip.map { ($0.data, $0.range) })
                carried = next
                if step.holds { (held[step.end], carried) = ((data, shape, next), nil) }
                if keep {
                    let z = Float(next.zeroPoint + offset(next)), s = Float(next.scale)
                    outputs[step.end + 1] = Tensor(
                        shape: planarShape(shape), data: planar(data.map { (Float($0) - z) * s }, shape))
                }
            } else if let next = step.next {
                // Dynamic: the next layer's input range is that of these values.
                let (v, outShape) = dynamicallyRequantized(step, input: input, correction: correction, data, shape)
                let r = QuantRange.covering(v, like: next)
                if keep { outputs[step.end + 1] = Tensor(shape: planarShape(outShape), data: planar(v, outShape)) }
                (data, shape, carried) = (quantized(v, r), outShape, r)
            } else {
                // Dequantize the sums; what follows runs in Float.
                let (acc, outShape) = accumulate(step, data, shape, fill: UInt8(inputZero))
                let scale = (0..<step.outputs).map { Float(input.scale * step.weightScales[$0]) }
                var v = [Float](repeating: 0, count: acc.count)
                for k in acc.indices {
                    let c = k % step.outputs
                    v[k] = scale[c] * Float(acc[k] + correction[c]) + (dynamic ? step.floatBias[c] : 0)
                }
                outputs[step.layer + 1] = Tensor(shape: planarShape(outShape), data: planar(v, outShape))
                carried = nil
            }
            at = step.end + 1
        }
        runFloat(to: spec.layers.count)
        return (outputs[spec.layers.count]!, keep ? outputs : [], codes)
    }

    /// `step`'s sums for `data` requantized to the codes of `next` (ReLU in the clamp, dropout in
    /// the multiplier, a residual input's codes `skip` (laid out as the sums) added) and max-pooled,
    /// image by image while the sums are in cache; channels last.
    private func requantized(
        _ step: Step, to next: QuantRange, input: QuantRange, correction: [Int32], _ data: [UInt8], _ shape: [Int],
        skip: (codes: [UInt8], range: QuantRange)?
    )
        -> (codes: [UInt8], shape: [Int])
    {
        let f = step.outputs
        let zero = Int32(next.zeroPoint + offset(next))
        // The clamp in codes: quantizing is monotone, so clamping values then quantizing clamps the codes.
        let (low, high) = (
            Float(next.quantize(step.clamp.low) + offset(next)), Float(next.quantize(step.clamp.high) + offset(next))
        )
        let scale = (0..<f).map { Float(input.scale * step.weightScales[$0] * step.factor / next.scale) }
        return correction.withUnsafeBufferPointer { c in
            scale.withUnsafeBufferPointer { s in
                var rule = precis_requantization(
                    correction: c.baseAddress!, scale: s.baseAddress!, zero: Float(zero), low: low, high: high)
                guard let skip else {
                    return imageByImage(step, input: input, data, shape, lowest: UInt8(0), codes: &rule) {
                        sums, pixels, out, _ in
                        precis_requantize_u8(
                            sums, Int32(pixels), Int32(f), correction, scale, Float(zero), low, high, out)
                    }
                }
                let (skipScale, skipZero) = (
                    Float(skip.range.scale / next.scale), Float(skip.range.zeroPoint + offset(skip.range))
                )
                return skip.codes.withUnsafeBufferPointer { b in
                    imageByImage(step, input: input, data, shape, lowest: UInt8(0)) { sums, pixels, out, at in
                        precis_requantize_add_u8(
                            sums, Int32(pixels), Int32(f), correction, scale, b.baseAddress! + at, skipScale, skipZero,
                            Float(zero), low, high, out)
                    }
                }
            }
        }
    }

    /// Dynamic quantization: `step`'s sums for `data` dequantized with the float bias, ReLU and
    /// dropout folded in, and max-pooled in Float, image by image; channels last.
    private func dynamicallyRequantized(
        _ step: Step, input: QuantRange, correction: [Int32], _ data: [UInt8], _ shape: [Int]
    )
        -> (values: [Float], shape: [Int])
    {
        let f = step.outputs
        let scale = (0..<f).map { Float(input.scale * step.weightScales[$0] * step.factor) }
        let bias = step.floatBias.map { $0 * Float(step.factor) }
        let (low, high) = (Float(step.clamp.low), Float(step.clamp.high))
        return imageByImage(step, input: input, data, shape, lowest: -Float.infinity) { sums, pixels, out, _ in
            for k in 0..<(pixels * f) {
                out[k] = min(high, max(low, scale[k % f] * Float(sums[k] + correction[k % f]) + bias[k % f]))
            }
        }
    }

    /// `step`'s sums for `data`, each image's turned into values by `convert` (sums, output
    /// pixels, destination, and where the first pixel's sums lie in the step's `(N, OH, OW, F)`)
    /// and max-pooled by the step's poolings (`lowest` below every value), while the sums are in
    /// cache; channels last.
    private func imageByImage<T: PooledValue>(
        _ step: Step, input: QuantRange, _ data: [UInt8], _ shape: [Int], lowest: T,
        codes: UnsafePointer<precis_requantization>? = nil,
        convert: @escaping (UnsafePointer<Int32>, Int, UnsafeMutablePointer<T>, Int) -> Void
    ) -> ([T], [Int]) {
        let f = step.outputs, n = shape[0]
        // Each image's (height, width) after the layer and after each pooling.
        var sizes = [(1, 1)]
        if let d = step.depthwise {
            sizes = [(Int(d.oh), Int(d.ow))]
        } else if let w = step.window {
            let g = Window(input: [1, shape[3], shape[1], shape[2]], fh: w.fh, fw: w.fw, stride: w.stride, pad: w.pad)
            sizes = [(g.oh, g.ow)]
        }
        for p in step.pools {
            let g = Window(
                input: [1, f, sizes.last!.0, sizes.last!.1], fh: p.size, fw: p.size, stride: p.stride, pad: p.pad)
            sizes.append((g.oh, g.ow))
        }
        let (rows, width) = sizes[0], pixels = rows * width, per = sizes.last!.0 * sizes.last!.1 * f
        let values = [T](unsafeUninitializedCapacity: n * per) { out, initialized in
            let base = out.baseAddress!
            let fill = UInt8(input.zeroPoint + offset(input))
            _ = accumulate(step, data, shape, fill: fill, codes: codes) { image, found, stride, final in
                // The image's values: `found` itself when the GEMM made them (`final`), else converted
                // from its sums. Without pooling they go straight to the image's place; else the
                // poolings read them where they are, and the last one writes to the image's place.
                let out = base + image * per, sums = found.assumingMemoryBound(to: Int32.self)
                func pool(_ x: UnsafePointer<T>, from k: Int) {
                    let last = k == step.pools.count - 1, size = sizes[k + 1].0 * sizes[k + 1].1 * f
                    @inline(__always) func into(_ o: UnsafeMutablePointer<T>) {
                        maxPoolImage(x, h: sizes[k].0, w: sizes[k].1, c: f, step.pools[k], into: o, lowest: lowest)
                    }
                    if last { return into(out) }
                    let next = [T](unsafeUninitializedCapacity: size) { o, m in
                        into(o.baseAddress!)
                        m = size
                    }
                    next.withUnsafeBufferPointer { pool($0.baseAddress!, from: k + 1) }
                }
                if final {
                    let codes = found.assumingMemoryBound(to: T.self)
                    return step.pools.isEmpty ? out.update(from: codes, count: pixels * f) : pool(codes, from: 0)
                }
                @inline(__always) func converted(into y: UnsafeMutablePointer<T>) {
                    for r in 0..<rows {
                        convert(sums + r * stride * f, width, y + r * width * f, (image * pixels + r * width) * f)
                    }
                }
                if step.pools.isEmpty { return converted(into: out) }
                let y = [T](unsafeUninitializedCapacity: pixels * f) { c, k in
                    converted(into: c.baseAddress!)
                    k = pixels * f
                }
                y.withUnsafeBufferPointer { pool($0.baseAddress!, from: 0) }
            }
            initialized = n * per
        }
        return (values, step.isAffine ? [n, f] : [n, sizes.last!.0, sizes.last!.1, f])
    }

    /// `step`'s int32 sums for the codes `data` (channels last, `shape`), with `fill` the code of
    /// zero padding: `(N, OH, OW, F)` for a convolution, `(N, F)` for an affine layer. With `each`,
    /// every image's sums go to it instead (for a convolution on the thread that computed them,
    /// while they are in cache), with the pixels from one output row's start to the next's (OW, or
    /// more where they are read in place from a wider grid), and no sums are returned.
    private func accumulate(
        _ step: Step, _ data: [UInt8], _ shape: [Int], fill: UInt8, codes: UnsafePointer<precis_requantization>? = nil,
        each: ((Int, UnsafeRawPointer, Int, Bool) -> Void)? = nil
    ) -> (acc: [Int32], shape: [Int]) {
        let n = shape[0]
        if let d = step.depthwise { return depthwiseSums(step, d, data, fill: fill, images: n, each: each) }
        guard let w = step.window else {
            let fin = data.count / n, lda = (fin + 3) / 4 * 4
            // Rows padded to a multiple of 4 bytes (as they come when `fin` is one already).
            var rows = data
            if lda != fin {
                rows = [UInt8](repeating: 0, count: n * lda)
                for r in 0..<n { for j in 0..<fin { rows[r * lda + j] = data[r * fin + j] } }
            }
            var acc = [Int32](repeating: 0, count: n * step.outputs)
            precis_gemm_u8s8(
                Int32(n), Int32(step.outputs), Int32(fin), rows, Int32(lda), step.packed, &acc, Int32(step.outputs), 0)
            if let each {
                acc.withUnsafeBufferPointer { a in
                    for r in 0..<n { each(r, a.baseAddress! + r * step.outputs, 1, false) }
                }
                return ([], [n, step.outputs])
            }
            return (acc, [n, step.outputs])
        }
        let g = Window(input: [n, shape[3], shape[1], shape[2]], fh: w.fh, fw: w.fw, stride: w.stride, pad: w.pad)
        let lda = (step.taps + 3) / 4 * 4, pixels = g.pixels, f = step.outputs, c = g.c
        let tileRows = Int(precis_gemm_u8s8_tile_rows(Int32(f)))
        let (ph, pw) = (g.h + 2 * g.pad, g.w + 2 * g.pad)
        // One GEMM per output row where whole tiles fill it (no columns between rows computed), else
        // one over the grid.
        let perRow = g.ow % tileRows == 0
        let rowCodes = step.rowBytes > 0 ? codes.map { RowCodes(step, g, perRow: perRow, fill: fill, $0.pointee) } : nil
        var acc = [Int32](unsafeUninitializedCapacity: each == nil ? n * pixels * f : 0) { $1 = $0.count }
        acc.withUnsafeMutableBufferPointer { a in
            parallelChunks(n, work: n * pixels * f * step.taps) { images in
                // Stride 1: each image zero-padded (with the fill code) once; one GEMM reads the
                // windows in place, a window row at a time (its last bytes, past the window, meet
                // zero weights). Its rows are the pixels of a grid as wide as the padded image, `c`
                // bytes apart: output (oy, ox) is row oy·pw + ox; the pw - ow rows after each output
                // row are computed into `grid` and dropped. Other strides gather each window into a row.
                var buffer = [UInt8](
                    repeating: fill, count: step.rowBytes > 0 ? ph * pw * c + step.rowBytes : pixels * lda)
                var scratch = [Int32](repeating: 0, count: each == nil ? 0 : pixels * f)
                var grid = [Int32](repeating: 0, count: step.rowBytes > 0 && codes == nil ? g.oh * pw * f : 0)
                var coded = [UInt8](repeating: 0, count: step.rowBytes > 0 && codes != nil ? pixels * f : 0)
                data.withUnsafeBufferPointer { x in
                    for image in images {
                        withMutableBuffers(&scratch, &buffer) { sc, p in
                            let out = each == nil ? a.baseAddress! + image * pixels * f : sc.baseAddress!
                            guard step.rowBytes > 0 else {
                                windows(x, g, image: image, fill: fill, into: p, lda)
                                precis_gemm_u8s8(
                                    Int32(pixels), Int32(f), Int32(step.taps), p.baseAddress!, Int32(lda), step.packed,
                                    out, Int32(f), 0)
                                each?(image, out, g.ow, false)
                                return
                            }
                            for y in 0..<g.h {
                                (p.baseAddress! + ((y + g.pad) * pw + g.pad) * c).update(
                                    from: x.baseAddress! + (image * g.h + y) * g.w * c, count: g.w * c)
                            }
                            withMutableBuffers(&coded, &grid) { coded, grid in
                                if let rowCodes, let each {
                                    // The sums become codes in the GEMM, output rows only.
                                    rowCodes.run(step, g, p.baseAddress!, coded.baseAddress!)
                                    return each(image, coded.baseAddress!, g.ow, true)
                                }
                                for oy in perRow ? 0..<g.oh : 0..<1 {
                                    let m = perRow ? g.ow : (g.oh - 1) * pw + g.ow
                                    precis_gemm_u8s8_segments(
                                        Int32(m), Int32(f), Int32(g.fh), Int32(step.rowBytes),
                                        p.baseAddress! + oy * pw * c, Int32(c), Int32(pw * c), step.packed,
                                        grid.baseAddress! + oy * pw * f, Int32(f), 0)
                                }
                                if let each { return each(image, grid.baseAddress!, pw, false) }
                                for oy in 0..<g.oh {
                                    (out + oy * g.ow * f).update(from: grid.baseAddress! + oy * pw * f, count: g.ow * f)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (acc, [n, g.oh, g.ow, f])
    }

    /// A depthwise convolution's int32 sums for `images` images of codes `data` (channels last), as
    /// `accumulate` gives them: `(N, OH, OW, C)`, or each image's to `each`.
    private func depthwiseSums(
        _ step: Step, _ d: precis_depthwise_shape, _ data: [UInt8], fill: UInt8, images n: Int,
        each: ((Int, UnsafeRawPointer, Int, Bool) -> Void)?
    ) -> (acc: [Int32], shape: [Int]) {
        let f = step.outputs, (oh, ow) = (Int(d.oh), Int(d.ow)), per = oh * ow * f, image = Int(d.h * d.w) * f
        var acc = [Int32](unsafeUninitializedCapacity: each == nil ? n * per : 0) { $1 = $0.count }
        acc.withUnsafeMutableBufferPointer { a in
            parallelChunks(n, work: n * per * step.taps) { images in
                var scratch = [Int32](repeating: 0, count: each == nil ? 0 : per)
                data.withUnsafeBufferPointer { x in
                    scratch.withUnsafeMutableBufferPointer { sc in
                        withUnsafePointer(to: d) { d in
                            for i in images {
                                let out = each == nil ? a.baseAddress! + i * per : sc.baseAddress!
                                precis_depthwise_u8s8(d, x.baseAddress! + i * image, fill, step.packed, out)
                                each?(i, out, ow, false)
                            }
                        }
                    }
                }
            }
        }
        return (acc, [n, oh, ow, f])
    }
}

/// A stride-1 convolution's GEMMs that make codes (`precis_gemm_u8s8_codes`): one per output row
/// (`perRow`), which leaves out the window rows lying wholly in the padding and adds what they would
/// have summed, the fill code times those rows' weights, to the row's correction instead, so every
/// code is the same; else one over the grid, every window row included.
private struct RowCodes {
    let perRow: Bool
    /// The window rows each output row's GEMM reads.
    let windowRows: [Range<Int>]
    /// The requantization rule and, per output row, its correction (`(OH, F)`).
    let rule: precis_requantization
    let corrections: [Int32]

    init(_ step: IntegerNetwork.Step, _ g: Window, perRow: Bool, fill: UInt8, _ rule: precis_requantization) {
        self.perRow = perRow
        self.rule = rule
        windowRows = (0..<g.oh).map { oy in perRow ? max(0, g.pad - oy)..<min(g.fh, g.h + g.pad - oy) : 0..<g.fh }
        corrections = windowRows.flatMap { rows in
            (0..<step.outputs).map { f in
                let left = (0..<g.fh).filter { !rows.contains($0) }.reduce(Int32(0)) { $0 + step.rowSums[$1][f] }
                return rule.correction[f] + Int32(fill) * left
            }
        }
    }

    /// The codes of one image, zero-padded with the fill code and channels last at `padded`, into
    /// `out (OH, OW, F)`.
    func run(
        _ step: IntegerNetwork.Step, _ g: Window, _ padded: UnsafePointer<UInt8>, _ out: UnsafeMutablePointer<UInt8>
    ) {
        let f = step.outputs, c = g.c, pw = g.w + 2 * g.pad
        // Window rows `lo...` of the packed weights start `lo · rowBytes · ceil16(F)` bytes in.
        let rowStride = step.rowBytes * ((f + 15) / 16 * 16)
        step.packed.withUnsafeBufferPointer { b in
            corrections.withUnsafeBufferPointer { corrections in
                for oy in perRow ? 0..<g.oh : 0..<1 {
                    let m = perRow ? g.ow : (g.oh - 1) * pw + g.ow, rows = windowRows[oy]
                    var rule = rule
                    rule.correction = corrections.baseAddress! + oy * f
                    precis_gemm_u8s8_codes(
                        Int32(m), Int32(f), Int32(rows.count), Int32(step.rowBytes),
                        padded + (oy + rows.lowerBound) * pw * c, Int32(c), Int32(pw * c),
                        b.baseAddress! + rows.lowerBound * rowStride, Int32(perRow ? g.ow : pw), Int32(g.ow), &rule,
                        out + (perRow ? oy * g.ow * f : 0))
                }
            }
        }
    }
}

extension QuantRange {
    /// The min-max range of the finite `values`, in the format of `like` (symmetric int8,
    /// asymmetric int8 or uint8): dynamic quantization's range for one batch.
    static func covering(_ values: [Float], like: QuantRange) -> QuantRange {
        var low = Float.infinity, high = -Float.infinity
        for v in values where v.isFinite { (low, high) = (min(low, v), max(high, v)) }
        guard low <= high else {
            return like.zeroPoint == 0 && like.qmin == -127
                ? .symmetric(threshold: 0) : .asymmetric(low: 0, high: 0, unsigned: like.qmin == 0)
        }
        if like.qmin == -127 { return .symmetric(threshold: Double(max(-low, high))) }
        return .asymmetric(low: Double(low), high: Double(high), unsigned: like.qmin == 0)
    }
}

/// Codes of `r`, channels last with `shape`, as the values they stand for, `(N, C, H, W)`.
private func dequantized(_ codes: [UInt8], _ shape: [Int], _ r: QuantRange) -> Tensor<Float> {
    Tensor(shape: planarShape(shape), data: planar(codes.map { Float(r.dequantize(Int($0) - offset(r))) }, shape))
}

/// `(N, H, W, C)` as `(N, C, H, W)`; other shapes unchanged.
func planarShape(_ shape: [Int]) -> [Int] { shape.count == 4 ? [shape[0], shape[3], shape[1], shape[2]] : shape }

/// `r`'s codes are kept shifted up by this (128 for signed int8), so that all are uint8.
func offset(_ r: QuantRange) -> Int { r.qmin < 0 ? 128 : 0 }

/// `(N, C, H, W)` values as `(N, H, W, C)`; other shapes unchanged.
func channelsLast<T>(_ x: [T], _ shape: [Int]) -> [T] {
    guard shape.count == 4, shape[1] > 1 else { return x }
    return transposed(x, n: shape[0], rows: shape[1], columns: shape[2] * shape[3])
}

/// `(N, H, W, C)` values (given that shape) as `(N, C, H, W)`; other shapes unchanged.
func planar<T>(_ x: [T], _ shape: [Int]) -> [T] {
    guard shape.count == 4, shape[3] > 1 else { return x }
    return transposed(x, n: shape[0], rows: shape[1] * shape[2], columns: shape[3])
}

/// Each of the `n` `(rows, columns)` matrices of `x` transposed.
@_specialize(where T == UInt8)
@_specialize(where T == Float)
private func transposed<T>(_ x: [T], n: Int, rows: Int, columns: Int) -> [T] {
    [T](unsafeUninitializedCapacity: x.count) { out, initialized in
        x.withUnsafeBufferPointer { xs in
            for m in 0..<n {
                let src = xs.baseAddress! + m * rows * columns, dst = out.baseAddress! + m * rows * columns
                for r in 0..<rows { for c in 0..<columns { (dst + c * rows + r).initialize(to: src[r * columns + c]) } }
            }
        }
        initialized = x.count
    }
}

/// For every output pixel of `image` (channels-last codes `xs`), its window as one row of `rs`:
/// `(ky, kx, c)` order, `lda` bytes a row, padding read as `fill`.
private func windows(
    _ xs: UnsafeBufferPointer<UInt8>, _ g: Window, image: Int, fill: UInt8, into rs: UnsafeMutableBufferPointer<UInt8>,
    _ lda: Int
) {
    let c = g.c, run = g.fw * c
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
                        if xx >= 0 && xx < g.w {
                            (dst + kx * c).update(from: src + xx * c, count: c)
                        } else {
                            (dst + kx * c).update(repeating: fill, count: c)
                        }
                    }
                }
            }
        }
    }
}

/// `values` as codes of `r`, kept as uint8 (signed codes plus 128): `QuantRange.quantize` in C, the
/// cores taking a share each.
private func quantized(_ values: [Float], _ r: QuantRange) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: values.count) { out, initialized in
        values.withUnsafeBufferPointer { v in
            parallelChunks(v.count, work: v.count << 4) { part in
                precis_quantize_u8(
                    v.baseAddress! + part.lowerBound, part.count, r.scale, Int32(r.zeroPoint), Int32(r.qmin),
                    Int32(r.qmax), Int32(offset(r)), out.baseAddress! + part.lowerBound)
            }
        }
        initialized = values.count
    }
}

/// Max pooling of one channels-last image `(h, w, c)` into `o`; padding never wins.
@_specialize(where T == UInt8)
@_specialize(where T == Float)
private func maxPoolImage<T: PooledValue>(
    _ x: UnsafePointer<T>, h: Int, w: Int, c: Int, _ p: (size: Int, stride: Int, pad: Int),
    into o: UnsafeMutablePointer<T>, lowest: T
) {
    if p == (2, 2, 0) && T.maxPool2(x, h: h, w: w, c: c, into: o) { return }
    let g = Window(input: [1, c, h, w], fh: p.size, fw: p.size, stride: p.stride, pad: p.pad)
    o.initialize(repeating: lowest, count: g.pixels * c)
    for oy in 0..<g.oh {
        for ox in 0..<g.ow {
            let y0 = max(0, oy * p.stride - p.pad), y1 = min(h, oy * p.stride - p.pad + p.size)
            let x0 = max(0, ox * p.stride - p.pad), x1 = min(w, ox * p.stride - p.pad + p.size)
            let out = o + (oy * g.ow + ox) * c
            for y in y0..<y1 {
                for xx in x0..<x1 {
                    let i = x + (y * w + xx) * c
                    for ch in 0..<c { out[ch] = max(out[ch], i[ch]) }
                }
            }
        }
    }
}

/// What integer inference pools: uint8 codes, with a C kernel for 2×2 windows of stride 2, or Float.
protocol PooledValue: Comparable {
    /// 2×2 max pooling, stride 2, of a channels-last image `(h, w, c)` into `o`; false without a kernel.
    static func maxPool2(_ x: UnsafePointer<Self>, h: Int, w: Int, c: Int, into o: UnsafeMutablePointer<Self>) -> Bool
}

extension UInt8: PooledValue {
    static func maxPool2(_ x: UnsafePointer<UInt8>, h: Int, w: Int, c: Int, into o: UnsafeMutablePointer<UInt8>)
        -> Bool
    {
        precis_max_pool2_u8(x, Int32(h), Int32(w), Int32(c), o)
        return true
    }
}

extension Float: PooledValue {
    static func maxPool2(_ x: UnsafePointer<Float>, h: Int, w: Int, c: Int, into o: UnsafeMutablePointer<Float>)
        -> Bool
    { false }
}
