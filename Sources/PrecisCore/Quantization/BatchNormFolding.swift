extension ModelSpec {
    /// The batch normalizations that fold into the layer before them, by index: each maps to the
    /// convolution or affine layer it reads, which nothing else reads.
    public var foldableBatchNorms: [Int: Int] {
        let consumers = self.consumers
        var out: [Int: Int] = [:]
        for (j, layer) in layers.enumerated() {
            guard case .batchNormalization = layer, let i = inputs(of: j).first, inputs(of: j).count == 1, i >= 0,
                layers[i].isQuantizable, consumers[i] == 1
            else { continue }
            out[j] = i
        }
        return out
    }

    /// `tensors` with each batch normalization of `folds` (by index, from `foldableBatchNorms`)
    /// folded into the layer it reads, as inference runs it: with `k = γ / √(σ² + ε)` per channel,
    /// `W·k` for each weight of the channel and `(b − μ)·k + β` for its bias. The normalization's
    /// own tensors are left as they are; a network built with `folded: folds.keys` passes its
    /// values through unchanged.
    public func foldingBatchNorms(_ folds: [Int: Int], in tensors: [String: Tensor<Double>]) throws
        -> [String: Tensor<Double>]
    {
        let geometry = try self.geometry(), foldable = foldableBatchNorms
        var out = tensors
        for (j, i) in folds {
            guard foldable[j] == i, let gemm = geometry[i].gemm else {
                throw ModelError.badSpec("layer \(j) is not a batch normalization that folds into layer \(i)")
            }
            func value(_ g: LayerGeometry, _ role: TensorRole) throws -> Tensor<Double> {
                guard let t = g.tensor(role), let v = tensors[g.key(t.name)], v.shape == t.shape else {
                    throw ModelError.badSpec("missing tensor \(g.key(g.tensor(role)?.name ?? "\(role)"))")
                }
                return v
            }
            let (gamma, beta) = (try value(geometry[j], .scale), try value(geometry[j], .shift))
            let (mean, variance) = (try value(geometry[j], .runningMean), try value(geometry[j], .runningVariance))
            var (w, b) = (try value(geometry[i], .weight), try value(geometry[i], .bias))
            let k = gamma.data.indices.map {
                gamma.data[$0] / (variance.data[$0] + BatchNormalization<Double>.epsilon).squareRoot()
            }
            for n in w.data.indices { w.data[n] *= k[gemm.channel(n)] }
            for c in b.data.indices { b.data[c] = (b.data[c] - mean.data[c]) * k[c] + beta.data[c] }
            out[geometry[i].key(geometry[i].tensor(.weight)!.name)] = w
            out[geometry[i].key(geometry[i].tensor(.bias)!.name)] = b
        }
        return out
    }

    /// `tensors` with the batch normalizations `folded` (by index) folded into the layers they read.
    public func folding(_ folded: Set<Int>, in tensors: [String: Tensor<Double>]) throws -> [String: Tensor<Double>] {
        guard !folded.isEmpty else { return tensors }
        let foldable = foldableBatchNorms
        return try foldingBatchNorms(
            Dictionary(uniqueKeysWithValues: folded.map { ($0, foldable[$0] ?? -1) }), in: tensors)
    }

    /// Each layer whose output is a folded batch normalization's (of `folded`): the layer it folded into.
    func foldedInto(_ folded: Set<Int>) -> Set<Int> { Set(folded.compactMap { foldableBatchNorms[$0] }) }

    /// `outputs` (the input, then every layer's output) with nil for each layer a batch
    /// normalization of `folded` folded into: that output is the normalization's, not the layer's own.
    public func hidingFolded<T>(_ outputs: [T?], _ folded: Set<Int>) -> [T?] {
        var out = outputs
        for i in foldedInto(folded) { out[i + 1] = nil }
        return out
    }
}
