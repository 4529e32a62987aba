import Foundation

/// Rounding a layer's weights with its calibration inputs in view: what GPTQ and AdaRound share. Both
/// run layer by layer in order and see a layer's inputs only through sums of products over them, one
/// `(length, length)` matrix per group of a convolution (its windows of the group's channels, as W
/// orders them, zero padding included), one for an affine layer.
/// - GPTQ: `H = Σ x·xᵀ`, the inputs `x` from the float64 network whose earlier layers already hold
///   their rounded weights (the weights' effect only: inputs are not rounded).
/// - AdaRound, with the paper's asymmetric reconstruction: the float network's inputs `x` and the
///   inputs `x̃` the quantized network gives (earlier layers rounded, weights and inputs, as the format
///   runs them in float32, then rounded as this layer rounds its input), `Ĥ = Σ x̃·x̃ᵀ` and
///   `C = Σ x·x̃ᵀ`: the error `‖W·x − W̃·x̃‖²` includes what rounding the inputs costs.
enum LayerRounding {
    /// The windows (or inputs) `layer` reduces over in `input`, one row-major `(rows, length)` matrix
    /// per group.
    static func unfold(_ layer: LayerGeometry, _ input: Tensor<Double>) -> [[Double]] {
        guard let role = layer.gemm else { return [] }
        guard case .convolution(let c) = layer.spec else { return [input.data] }
        let n = role.length, images = input.shape[0]
        let (channels, h, w) = (layer.inputShape[0], layer.inputShape[1], layer.inputShape[2])
        let (oh, ow) = (layer.outputShape[1], layer.outputShape[2]), (kh, kw) = (c.kernel[0], c.kernel[1])
        let per = channels / c.groups
        return (0..<c.groups).map { g in
            var x = [Double](repeating: 0, count: images * oh * ow * n)
            for image in 0..<images {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let row = ((image * oh + oy) * ow + ox) * n
                        for ch in 0..<per {
                            let plane = (image * channels + g * per + ch) * h * w
                            for ky in 0..<kh {
                                let y = oy * c.strides[0] - c.pads[0] + ky * c.dilations[0]
                                guard y >= 0 && y < h else { continue }
                                for kx in 0..<kw {
                                    let xx = ox * c.strides[1] - c.pads[1] + kx * c.dilations[1]
                                    guard xx >= 0 && xx < w else { continue }
                                    x[row + (ch * kh + ky) * kw + kx] = input.data[plane + y * w + xx]
                                }
                            }
                        }
                    }
                }
            }
            return x
        }
    }

    /// Adds `aᵀ·b` of row-major `(rows, n)` matrices to `sum` `(n, n)`.
    static func addProduct(_ sum: inout [Double], _ a: [Double], _ b: [Double], n: Int) {
        var product = [Double](repeating: 0, count: n * n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                product.withUnsafeMutableBufferPointer {
                    gemm(n, n, a.count / n, a.baseAddress!, n, transA: true, b.baseAddress!, n, $0.baseAddress!, n)
                }
            }
        }
        for k in 0..<(n * n) { sum[k] += product[k] }
    }
}

extension FormatModel {
    /// The model with every layer's codes chosen by `rounding` (GPTQ or AdaRound) under the scales it
    /// holds, layer by layer in order (see `LayerRounding`), on the `count` calibration `images`.
    /// `tensors` are the master's; `progress(done, layers)`.
    public func rounded(
        by rounding: WeightRounding, spec: ModelSpec, tensors master: [String: Tensor<Double>], images: [Float],
        count: Int, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> FormatModel {
        var out = self, current = try spec.folding(folded, in: master)
        let float = try Network<Double>(spec: spec, parameters: current, folded: folded)
        let per = spec.inputShape.reduce(1, *), layers = try spec.geometry().filter { weights[$0.index] != nil }
        for (done, layer) in layers.enumerated() {
            progress(done, layers.count)
            guard var t = weights[layer.index], let gemm = layer.gemm, let w = layer.tensor(.weight) else { continue }
            let n = t.length
            let groups = if case .convolution(let c) = layer.spec { c.groups } else { 1 }
            let samples = count * (layer.outputShape.count == 3 ? layer.outputShape[1] * layer.outputShape[2] : 1)
            // Per group: GPTQ's H; AdaRound's Ĥ and C, or with `keepRows` the rows x̃ and x themselves.
            let keepRows = rounding == .adaround && 2 * samples < n
            let zeros = [[Double]](repeating: [Double](repeating: 0, count: keepRows ? 0 : n * n), count: groups)
            var (hessians, crosses) = (zeros, zeros)
            let gptq = rounding == .gptq, earlier = Set(layers[..<done].map(\.index))
            let network = gptq ? try Network<Double>(spec: spec, parameters: current, folded: folded) : nil
            let quantized = gptq ? nil : try FormatNetwork(spec: spec, tensors: master, model: out.only(earlier))
            let inputRounding = try mode.activations.map {
                try FormatNetwork.inputRounding($0, inputs[layer.index], layer.name)
            }
            for start in stride(from: 0, to: count, by: 50) {
                let k = min(50, count - start), batch = Array(images[(start * per)..<((start + k) * per)])
                let x = Tensor<Double>(shape: [k] + spec.inputShape, data: batch.map(Double.init))
                if let network {
                    for (g, u) in LayerRounding.unfold(layer, network.input(of: layer.index, for: x)).enumerated() {
                        LayerRounding.addProduct(&hessians[g], u, u, n: n)
                    }
                    continue
                }
                guard let quantized else { continue }
                // Only the layers before this one run: its input is all either network gives it.
                let seen = quantized.network.input(
                    of: layer.index, for: Tensor(shape: [k] + spec.inputShape, data: batch))
                let exact = LayerRounding.unfold(layer, float.input(of: layer.index, for: x))
                for (g, u) in LayerRounding.unfold(layer, Tensor(shape: seen.shape, data: seen.data.map(Double.init)))
                    .enumerated()
                {
                    var r = u.map { Float($0) }
                    inputRounding?(&r, .rows(r.count / n, n))
                    let rounded = r.map(Double.init)
                    if keepRows {
                        (hessians[g], crosses[g]) = (hessians[g] + rounded, crosses[g] + exact[g])
                    } else {
                        LayerRounding.addProduct(&hessians[g], rounded, rounded, n: n)
                        LayerRounding.addProduct(&crosses[g], exact[g], rounded, n: n)
                    }
                }
            }
            let key = layer.key(w.name), rows = gemm.rows(current[key]!.data), each = t.vectors / groups
            do {
                for g in 0..<groups {
                    let vectors = (g * each)..<((g + 1) * each)
                    switch rounding {
                    case .nearest: break
                    case .gptq: try GPTQ.round(rows, vectors: vectors, hessian: hessians[g], into: &t)
                    case .adaround:
                        let inputs: AdaRound.Inputs =
                            keepRows
                            ? .rows(exact: crosses[g], seen: hessians[g])
                            : .sums(hessian: hessians[g], cross: crosses[g])
                        AdaRound.round(rows, vectors: vectors, inputs: inputs, samples: samples, into: &t)
                    }
                }
            } catch let error as ModelError {
                throw ModelError.badSpec("\(layer.name): \(error)")
            }
            out.weights[layer.index] = t
            current[key] = Tensor(shape: w.shape, data: gemm.stored(t.decoded()).map(Double.init))
        }
        progress(layers.count, layers.count)
        return out
    }
}

/// AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for Post-Training Quantization"): each
/// weight goes to one of its two neighbours on the format's grid under the scales set from the weights
/// (the floor or the ceiling for int4; the neighbouring grid values for FP8, MX and NVFP4 elements),
/// chosen by learning `V` in `w̃ = lo + h(V)·(hi − lo)`, with the rectified sigmoid
/// `h(V) = clamp(σ(V)·(ζ − γ) + γ, 0, 1)`, `ζ = 1.1`, `γ = −0.1`, to minimize
/// `Σ‖W·x − W̃·x̃‖²/N + λ·Σ(1 − |2h − 1|^β)`: the mean squared change of the layer's output
/// over its `N` calibration inputs (`x` as the float network gives them, `x̃` as the quantized one does; see
/// `LayerRounding`), and the paper's regularizer that drives every `h` to 0 or 1,
/// `λ = 0.01`, `β` annealed from 20 to 2 after a warm-up of the first fifth of the steps without it.
/// Adam, full batch (every calibration input in `H`, so the result is deterministic), `V` starting
/// where `w̃ = w`; at the end each weight takes `hi` where `h ≥ 0.5`.
public enum AdaRound {
    public static let steps = 1000, learningRate = 0.01, lambda = 0.01
    static let (zeta, gamma) = (1.1, -0.1)
    static let (warmup, betaStart, betaEnd) = (0.2, 20.0, 2.0)

    /// Each weight's neighbours under `t`'s scales: the largest value the format can store at or below
    /// it and the smallest at or above (equal when it is on the grid or beyond the largest).
    static func neighbours(_ w: [Double], vectors: Range<Int>, in t: FormatTensor) -> [(lo: Grid, hi: Grid)] {
        guard let block = t.format.block else { preconditionFailure("int8 is an input format") }
        let codes = block.validCodes, n = t.length
        return vectors.flatMap { v in
            (0..<n).map { j -> (lo: Grid, hi: Grid) in
                let b = t.block(of: v * n + j), x = w[v * n + j]
                var lo = Grid(code: 0, value: -.infinity), hi = Grid(code: 0, value: .infinity)
                var low = Grid(code: 0, value: .infinity), high = Grid(code: 0, value: -.infinity)
                for c in codes {
                    let y = Double(block.value(c, block: b, in: t))
                    if y <= x && y > lo.value { lo = Grid(code: c, value: y) }
                    if y >= x && y < hi.value { hi = Grid(code: c, value: y) }
                    if y < low.value { low = Grid(code: c, value: y) }
                    if y > high.value { high = Grid(code: c, value: y) }
                }
                if lo.value == -.infinity { lo = low }
                if hi.value == .infinity { hi = high }
                return (x > high.value ? high : lo, x < low.value ? low : hi)
            }
        }
    }

    /// A code and the value it stands for.
    struct Grid { var code: UInt8, value: Double }

    /// What AdaRound sees of a layer's calibration inputs (`x` as the float network gives them, `x̃` as
    /// the quantized one does): the sums `Ĥ = Σ x̃·x̃ᵀ` and `C = Σ x·x̃ᵀ` `(length, length)`, or, when
    /// there are fewer inputs than half the length, the inputs themselves, rows `(N, length)`, which
    /// make each step cheaper.
    public enum Inputs {
        case sums(hessian: [Double], cross: [Double])
        case rows(exact: [Double], seen: [Double])
    }

    /// `A (m×k) · B (k×n)`, row-major.
    static func product(_ a: [Double], _ b: [Double], _ m: Int, _ k: Int, _ n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer {
                    gemm(m, n, k, a.baseAddress!, k, b.baseAddress!, n, $0.baseAddress!, n)
                }
            }
        }
        return c
    }

    /// Rounds the vectors `vectors` of `w` (row-major `(t.vectors, t.length)`) into `t`'s codes under
    /// its scales, learning from `inputs` over `samples` inputs. The gradient of the output error is
    /// `2(W̃·Ĥ − W·C)/N`, or `2(W̃·X̃ᵀ − W·Xᵀ)·X̃/N` from the rows.
    public static func round(
        _ w: [Double], vectors: Range<Int>, inputs: Inputs, samples: Int, into t: inout FormatTensor
    ) {
        let n = t.length, rows = vectors.count, count = rows * n
        let pairs = neighbours(w, vectors: vectors, in: t)
        let x = vectors.flatMap { v in w[(v * n)..<((v + 1) * n)] }
        let lo = pairs.map(\.lo.value), gap = pairs.map { $0.hi.value - $0.lo.value }
        let v = (0..<count).map { k -> Double in
            let r = gap[k] > 0 ? min(1, max(0, (x[k] - lo[k]) / gap[k])) : 0, p = (r - gamma) / (zeta - gamma)
            return Foundation.log(p / (1 - p))
        }
        // v, Adam's moments m and s, σ(V), h(V) and W̃, each `count` values, updated in parallel chunks.
        let state = UnsafeMutableBufferPointer<Double>.allocate(capacity: 6 * count)
        defer { state.deallocate() }
        state.initialize(repeating: 0)
        let (m, s, sig) = (state.baseAddress! + count, state.baseAddress! + 2 * count, state.baseAddress! + 3 * count)
        let (h, wq) = (state.baseAddress! + 4 * count, state.baseAddress! + 5 * count)
        for k in 0..<count { state[k] = v[k] }
        let work = 64 * count
        let gradient: ([Double]) -> [Double]
        switch inputs {
        case let .sums(hessian, cross):
            let target = product(x, cross, rows, n, n)
            gradient = { wq in zip(product(wq, hessian, rows, n, n), target).map { $0 - $1 } }
        case let .rows(exact, seen):
            let samples = seen.count / n, seenT = transposed(seen, rows: samples, cols: n)
            let target = product(x, transposed(exact, rows: samples, cols: n), rows, n, samples)
            gradient = { wq in
                product(zip(product(wq, seenT, rows, n, samples), target).map { $0 - $1 }, seen, rows, samples, n)
            }
        }
        let scale = 2 / Double(max(samples, 1))
        for step in 0..<steps {
            parallelChunks(count, work: work) { chunk in
                for k in chunk {
                    sig[k] = 1 / (1 + Foundation.exp(-state[k]))
                    h[k] = min(1, max(0, sig[k] * (zeta - gamma) + gamma))
                    wq[k] = lo[k] + h[k] * gap[k]
                }
            }
            let g = gradient(Array(UnsafeBufferPointer(start: wq, count: count)))
            let progress = (Double(step) / Double(steps) - warmup) / (1 - warmup)
            let beta = progress < 0 ? nil : betaEnd + (betaStart - betaEnd) * (1 - progress)
            let t = Double(step + 1), first = 1 - Foundation.pow(0.9, t), second = 1 - Foundation.pow(0.999, t)
            parallelChunks(count, work: work) { chunk in
                for k in chunk {
                    var dh: Double = scale * g[k] * gap[k]
                    if let beta {
                        let u: Double = 2 * h[k] - 1
                        let r: Double = lambda * 2 * beta * Foundation.pow(abs(u), beta - 1)
                        dh -= u < 0 ? -r : r
                    }
                    let raw: Double = sig[k] * (zeta - gamma) + gamma
                    let dv: Double = raw > 0 && raw < 1 ? dh * sig[k] * (1 - sig[k]) * (zeta - gamma) : 0
                    m[k] = 0.9 * m[k] + 0.1 * dv
                    s[k] = 0.999 * s[k] + 0.001 * dv * dv
                    state[k] -= learningRate * (m[k] / first) / ((s[k] / second).squareRoot() + 1e-8)
                }
            }
        }
        for k in 0..<count {
            let (vector, j) = (vectors.lowerBound + k / n, k % n)
            t.codes[vector * n + j] = rectified(state[k]) >= 0.5 ? pairs[k].hi.code : pairs[k].lo.code
        }
    }

    /// `h(V)`.
    @inline(__always)
    static func rectified(_ v: Double) -> Double {
        min(1, max(0, 1 / (1 + Foundation.exp(-v)) * (zeta - gamma) + gamma))
    }
}
