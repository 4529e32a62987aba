/// Two convolution or affine layers that cross-layer equalization can rescale exactly: `first`'s
/// output reaches `second`, and nothing else, through a chain that commutes with a positive scale
/// per channel (an optional batch normalization folded into `first`, then ReLU, LeakyReLU, max and
/// average pooling, global average pooling and dropout).
public struct EqualizedPair: Sendable, Equatable {
    public let first: Int, second: Int
    /// The node whose output is `first`'s as the network runs it: its folded batch normalization, or itself.
    public let output: Int
    /// The batch normalization after `first`, which takes its scale and shift when there is one.
    public let batchNorm: Int?
    /// Whether a shift of `first`'s output can be absorbed into `second`'s bias: nothing on the way pads,
    /// so `relu(x) − c = relu(x − c)` wherever `x ≥ c ≥ 0`, and the rest of the chain commutes with the shift.
    public let absorbs: Bool
    /// What the chain multiplies a constant by on its way: each dropout's `1 − ratio` (the book's
    /// dropout scales at inference).
    public let gain: Double
}

/// Cross-layer equalization with high-bias absorption (Nagel et al. 2019, "Data-Free Quantization
/// Through Weight Equalization and Bias Correction"). For each `EqualizedPair`, channel `i` of the
/// first layer's output is divided by `scales[first][i]` and the second layer's weights reading it
/// are multiplied by it, so that both weight ranges become `√(r₁·r₂)`; the network computes the same
/// function. Then `shifts[first][i]`, the least value of that channel on the calibration images
/// where it is positive, moves from the first layer's bias into the second's: the second layer's
/// inputs shrink by that much, and the outputs on the calibration images stay the same.
public struct Equalization: Sendable, Equatable {
    /// Each pair's scale per channel of the first layer's output, by the first layer's index.
    public var scales: [Int: [Double]]
    /// Each pair's absorbed shift per channel, by the first layer's index (after scaling).
    public var shifts: [Int: [Double]]

    public init(scales: [Int: [Double]] = [:], shifts: [Int: [Double]] = [:]) {
        (self.scales, self.shifts) = (scales, shifts)
    }

    /// Sweeps over the pairs at most; they stop earlier once no scale moves by more than `tolerance`.
    public static let sweeps = 100, tolerance = 1e-9

    /// The scales that equalize `spec`'s pairs in `tensors` (the master's, batch normalizations folded
    /// as inference folds them): the pairs rescaled in network order, sweep after sweep, until the ranges
    /// settle. A channel whose weights are all zero on either side keeps scale 1.
    public init(spec: ModelSpec, tensors: [String: Tensor<Double>]) throws {
        let pairs = try spec.equalizedPairs(), geometry = try spec.geometry()
        let folded = try spec.folding(Set(spec.foldableBatchNorms.keys), in: tensors)
        var rows: [Int: [Double]] = [:], scales: [Int: [Double]] = [:]
        for p in pairs {
            for i in [p.first, p.second] where rows[i] == nil { rows[i] = try Self.rows(geometry[i], folded) }
            scales[p.first] = Array(repeating: 1, count: geometry[p.first].gemm!.channels)
        }
        for _ in 0..<Self.sweeps {
            var moved = 0.0
            for p in pairs {
                let a = geometry[p.first].gemm!, n = a.length
                let r1 = (0..<a.channels).map { i in rows[p.first]![i * n..<(i + 1) * n].reduce(0) { max($0, abs($1)) }
                }
                let r2 = Self.inputRanges(geometry[p.second], rows[p.second]!, channels: a.channels)
                let s = zip(r1, r2).map { $0 > 0 && $1 > 0 ? ($0 / $1).squareRoot() : 1 }
                for i in 0..<a.channels {
                    moved = max(moved, abs(s[i] - 1))
                    scales[p.first]![i] *= s[i]
                    for k in i * n..<(i + 1) * n { rows[p.first]![k] /= s[i] }
                }
                Self.scaleInputs(geometry[p.second], &rows[p.second]!, by: s)
            }
            if moved < Self.tolerance { break }
        }
        self.init(scales: scales)
    }

    /// A layer's weights as rows `(channels, length)`, from `tensors`.
    static func rows(_ layer: LayerGeometry, _ tensors: [String: Tensor<Double>]) throws -> [Double] {
        guard let gemm = layer.gemm, let w = layer.tensor(.weight), let t = tensors[layer.key(w.name)] else {
            throw ModelError.badSpec("missing tensor \(layer.key("W"))")
        }
        return gemm.rows(t.data)
    }

    /// The input channel (of `channels`) that value `j` of row `o` of `layer`'s weights reads.
    static func inputChannel(_ layer: LayerGeometry, channels: Int, row o: Int, column j: Int) -> Int {
        switch layer.spec {
        case .convolution(let c):
            let per = c.kernel[0] * c.kernel[1], local = channels / c.groups
            return o / (c.filters / c.groups) * local + j / per
        default:
            return j / (layer.gemm!.length / channels)
        }
    }

    /// The largest weight magnitude reading each of `channels` inputs, over `layer`'s rows.
    static func inputRanges(_ layer: LayerGeometry, _ rows: [Double], channels: Int) -> [Double] {
        let gemm = layer.gemm!
        var r = [Double](repeating: 0, count: channels)
        for o in 0..<gemm.channels {
            for j in 0..<gemm.length {
                let c = inputChannel(layer, channels: channels, row: o, column: j)
                r[c] = max(r[c], abs(rows[o * gemm.length + j]))
            }
        }
        return r
    }

    /// `rows` of `layer` with each weight multiplied by its input channel's `scale`.
    static func scaleInputs(_ layer: LayerGeometry, _ rows: inout [Double], by scale: [Double]) {
        let gemm = layer.gemm!
        for o in 0..<gemm.channels {
            for j in 0..<gemm.length {
                rows[o * gemm.length + j] *= scale[inputChannel(layer, channels: scale.count, row: o, column: j)]
            }
        }
    }

    /// The equalization with high biases absorbed: for each pair that absorbs, the least value of each
    /// channel of the first layer's output on `images` (`count` of them) in the network `self.applied`
    /// gives, where it is positive.
    public func absorbingHighBiases(spec: ModelSpec, tensors: [String: Tensor<Double>], images: [Float], count: Int)
        throws -> Equalization
    {
        let pairs = try spec.equalizedPairs().filter(\.absorbs)
        guard !pairs.isEmpty, count > 0 else { return self }
        let net = try Network<Double>(spec: spec, parameters: try applied(to: tensors, spec: spec))
        let per = spec.inputShape.reduce(1, *), shapes = try spec.shapes()
        var least = Dictionary(
            uniqueKeysWithValues: pairs.map {
                ($0.first, [Double](repeating: .infinity, count: shapes[$0.output][0]))
            })
        for start in stride(from: 0, to: count, by: 100) {
            let n = min(100, count - start)
            let x = Tensor(shape: [n] + spec.inputShape, data: images[start * per..<(start + n) * per].map(Double.init))
            let outs = net.forwardAll(x)
            for p in pairs {
                let y = outs[p.output + 1], c = shapes[p.output][0], plane = y.data.count / (n * c)
                for k in y.data.indices {
                    let ch = k / plane % c
                    least[p.first]![ch] = min(least[p.first]![ch], y.data[k])
                }
            }
        }
        var out = self
        for (i, l) in least { out.shifts[i] = l.map { $0.isFinite ? max(0, $0) : 0 } }
        return out
    }

    /// `tensors` (the master's) with the equalization applied: each pair's first layer (its batch
    /// normalization's γ and β when it has one, else its weights and bias) divided by the scales, its
    /// bias (or β) less the shifts, and the second layer's weights reading each channel times its scale
    /// and its bias plus the weights times the shifts (times the pair's `gain`).
    public func applied(to tensors: [String: Tensor<Double>], spec: ModelSpec) throws -> [String: Tensor<Double>] {
        let geometry = try spec.geometry()
        var out = tensors
        func update(_ layer: LayerGeometry, _ role: TensorRole, _ change: (inout [Double], Int) -> Void) throws {
            guard let t = layer.tensor(role), var v = out[layer.key(t.name)], v.shape == t.shape else {
                throw ModelError.badSpec("missing tensor \(layer.key(layer.tensor(role)?.name ?? "\(role)"))")
            }
            for k in v.data.indices { change(&v.data, k) }
            out[layer.key(t.name)] = v
        }
        let pairs = try spec.equalizedPairs()
        for p in pairs {
            guard let s = scales[p.first] else { continue }
            let a = geometry[p.first], b = geometry[p.second], gemm = a.gemm!, bGemm = b.gemm!
            guard s.count == gemm.channels, s.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw ModelError.badSpec("\(a.name): the equalization scales must be \(gemm.channels) positive numbers")
            }
            if let j = p.batchNorm {
                try update(geometry[j], .scale) { v, k in v[k] /= s[k] }
                try update(geometry[j], .shift) { v, k in v[k] /= s[k] }
            } else {
                try update(a, .weight) { v, k in v[k] /= s[gemm.channel(k)] }
                try update(a, .bias) { v, k in v[k] /= s[k] }
            }
            var rows = try Self.rows(b, out)
            Self.scaleInputs(b, &rows, by: s)
            out[b.key("W")] = Tensor(shape: b.tensor(.weight)!.shape, data: bGemm.stored(rows))
        }
        for p in pairs {
            guard let c = shifts[p.first], c.contains(where: { $0 != 0 }) else { continue }
            let a = geometry[p.first], b = geometry[p.second], bGemm = b.gemm!
            guard p.absorbs, c.count == a.gemm!.channels, c.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
                throw ModelError.badSpec("\(a.name): its output cannot absorb these shifts")
            }
            try update(p.batchNorm.map { geometry[$0] } ?? a, p.batchNorm == nil ? .bias : .shift) { v, k in
                v[k] -= c[k]
            }
            let rows = try Self.rows(b, out)
            try update(b, .bias) { v, o in
                for j in 0..<bGemm.length {
                    v[o] +=
                        rows[o * bGemm.length + j] * p.gain
                        * c[Self.inputChannel(b, channels: c.count, row: o, column: j)]
                }
            }
        }
        return out
    }
}

extension ModelSpec {
    /// The pairs of layers cross-layer equalization can rescale exactly, in network order (see
    /// `EqualizedPair`). Pairs joined through a merge, ReLU6 or any other clip, or a batch
    /// normalization that does not fold are left out: a per-channel scale does not commute with them.
    public func equalizedPairs() throws -> [EqualizedPair] {
        let readers = self.readers, foldable = foldableBatchNorms
        var pairs: [EqualizedPair] = []
        for (i, layer) in layers.enumerated() where layer.isQuantizable && readers[i].count == 1 {
            let batchNorm = foldable.first { $0.value == i }?.key, output = batchNorm ?? i
            var node = output, pads = false, gain = 1.0
            chain: while readers[node].count == 1 {
                let next = readers[node][0]
                switch layers[next] {
                case .relu, .activation(.leakyReLU), .globalAveragePooling: break
                case .dropout(let ratio): gain *= 1 - ratio
                case let .maxPooling(_, _, pad), let .averagePooling(_, _, pad): pads = pads || pad > 0
                case .convolution, .affine:
                    let padded: Bool
                    if case .convolution(let c) = layers[next] {
                        padded = c.pads.contains { $0 > 0 }
                    } else {
                        padded = false
                    }
                    pairs.append(
                        EqualizedPair(
                            first: i, second: next, output: output, batchNorm: batchNorm, absorbs: !pads && !padded,
                            gain: gain))
                    break chain
                default: break chain
                }
                node = next
            }
        }
        return pairs
    }
}
