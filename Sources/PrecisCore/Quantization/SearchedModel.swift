/// A network whose convolution and affine layers each run in the candidate a precision search
/// chose for them (see `PrecisionSearch`): number-format layers as one `FormatModel` per format,
/// int8 layers as a `QuantizedModel` of the default scheme simulated in Float (its weights and
/// biases dequantized, its inputs rounded to their codes), float16 layers as their tensors rounded
/// to half with half inputs, and the others in float32. Every batch normalization that can is folded.
/// What `precis quantize --budget | --max-drop` stores as `/variants/search-<goal>`.
public struct SearchedModel: Equatable {
    /// What the search met, as the variant's name ends: `bits4.5`, `drop0.5`.
    public let goal: String
    /// One model per number format chosen, each holding only its layers.
    public var formats: [FormatModel]
    /// The int8 layers, or nil when there are none.
    public var int8: QuantizedModel?
    /// The float16 layers' `W` and `b`, folded and rounded to half, by tensor key.
    public var half: [String: Tensor<Double>]
    /// The batch normalizations folded into the layer before them.
    public let folded: Set<Int>

    public init(
        goal: String, formats: [FormatModel], int8: QuantizedModel?, half: [String: Tensor<Double>], folded: Set<Int>
    ) {
        (self.goal, self.formats, self.int8, self.half, self.folded) = (goal, formats, int8, half, folded)
    }

    /// The precision the model stands for; its name is the variant's.
    public var precision: Precision { .searched(goal) }
    public var name: String { precision.name }

    /// The candidate of every convolution and affine layer of `spec`, by layer index.
    public func assignment(_ spec: ModelSpec) -> [Int: SearchCandidate] {
        var out: [Int: SearchCandidate] = [:]
        for i in quantizedLayers(spec) {
            if let m = formats.first(where: { $0.weights[i] != nil }) {
                out[i] = .format(m.mode)
            } else if int8?.layers[i] != nil {
                out[i] = .int8
            } else {
                out[i] = half[tensorKey(spec.layerNames[i], "W")] == nil ? .float32 : .float16
            }
        }
        return out
    }

    /// The model as it runs with the float tensors of `master` (unfolded) for everything it does not hold.
    public func network(spec: ModelSpec, master: [String: Tensor<Double>]) throws -> SearchedNetwork {
        let floats = try spec.folding(folded, in: master), geometry = try spec.geometry()
        let int8Values = try int8.map { try $0.dequantized(spec, master) } ?? [:]
        var options: [Int: LayerOption] = [:]
        for (i, c) in assignment(spec) {
            switch c {
            case .format(let mode):
                options[i] = try LayerOption.format(formats.first { $0.mode == mode }!, geometry[i])
            case .int8: options[i] = try LayerOption.int8(int8!, geometry[i], int8Values)
            case .float16: options[i] = try LayerOption.half(geometry[i], half)
            case .float32: options[i] = try LayerOption.float32(geometry[i])
            }
        }
        let network = try LayerOption.network(spec: spec, floats: floats, options: options, folded: folded)
        let weightBits = options.values.reduce(0) { $0 + $1.bits }, values = options.values.reduce(0) { $0 + $1.values }
        let otherBytes = geometry.reduce(0) { bytes, g in
            folded.contains(g.index) ? bytes : bytes + 4 * (g.parameterCount - (options[g.index]?.values ?? 0))
        }
        return SearchedNetwork(
            model: self, network: network, modelBytes: otherBytes + (weightBits + 7) / 8,
            bitsPerWeight: values > 0 ? Double(weightBits) / Double(values) : 32)
    }
}

/// A `SearchedModel` as it runs, with its size.
public struct SearchedNetwork {
    public let model: SearchedModel
    public let network: Network<Float>
    /// Bytes of the weights: every layer's weights in its candidate, 4 a value of everything else.
    public let modelBytes: Int
    /// Bits per weight value of the convolution and affine layers, scales included.
    public let bitsPerWeight: Double
}

/// One layer in one candidate: the tensors it runs with in place of the float ones, how its input
/// is rounded, its weight values and the bits they take (codes and scales).
struct LayerOption {
    var tensors: [String: Tensor<Double>] = [:]
    var rounding: OperandRounding?
    var values: Int, bits: Int

    /// `layer` as number-format `model` holds it: its weights decoded, its input rounded to the format.
    static func format(_ model: FormatModel, _ layer: LayerGeometry) throws -> LayerOption {
        guard let t = model.weights[layer.index], let gemm = layer.gemm, let w = layer.tensor(.weight) else {
            throw ModelError.badSpec("\(layer.name) has no \(model.mode.name) weights")
        }
        guard (gemm.channels, gemm.length) == (t.vectors, t.length) else {
            throw ModelError.badSpec("\(layer.name): its stored codes do not fit W \(shapeText(w.shape))")
        }
        let decoded = Tensor(shape: w.shape, data: gemm.stored(t.decoded()).map(Double.init))
        return LayerOption(
            tensors: [layer.key(w.name): decoded],
            rounding: try model.mode.activations.map {
                try FormatNetwork.inputRounding($0, model.inputs[layer.index], layer.name)
            }, values: t.codes.count, bits: 8 * t.bytes)
    }

    /// `layer` as int8 `model` holds it, with `values` its dequantized tensors: weights and bias
    /// from their codes, the input rounded to its codes.
    static func int8(_ model: QuantizedModel, _ layer: LayerGeometry, _ values: [String: Tensor<Double>]) throws
        -> LayerOption
    {
        let keys = [layer.key("W"), layer.key("b")]
        guard let q = model.layers[layer.index], let w = values[keys[0]], let b = values[keys[1]] else {
            throw ModelError.badSpec("\(layer.name) has no int8 weights")
        }
        return LayerOption(
            tensors: [keys[0]: w, keys[1]: b], rounding: .int8(q.input), values: q.weights.count,
            bits: 8 * q.weights.count + 32 * q.weightScales.count)
    }

    /// `layer` with its tensors from `half` (rounded to float16) and its input rounded to half.
    static func half(_ layer: LayerGeometry, _ half: [String: Tensor<Double>]) throws -> LayerOption {
        let w = try float32(layer)
        var tensors: [String: Tensor<Double>] = [:]
        for t in layer.tensors {
            guard let v = half[layer.key(t.name)] else {
                throw ModelError.badSpec("\(layer.name) has no float16 \(t.name)")
            }
            tensors[layer.key(t.name)] = v
        }
        return LayerOption(tensors: tensors, rounding: .half, values: w.values, bits: 16 * w.values)
    }

    /// `layer` in float32, as the float tensors have it.
    static func float32(_ layer: LayerGeometry) throws -> LayerOption {
        guard let w = layer.tensor(.weight) else { throw ModelError.badSpec("\(layer.name) has no weights") }
        let count = w.shape.reduce(1, *)
        return LayerOption(values: count, bits: 32 * count)
    }

    /// The network of `spec` with `floats` (folded) and each layer of `options` in place.
    static func network(
        spec: ModelSpec, floats: [String: Tensor<Double>], options: [Int: LayerOption], folded: Set<Int>
    ) throws -> Network<Float> {
        var parameters = floats, roundings: [Int: OperandRounding] = [:]
        for (i, option) in options {
            parameters.merge(option.tensors) { $1 }
            roundings[i] = option.rounding
        }
        return try Network<Float>(spec: spec, parameters: parameters, inputRoundings: roundings, folded: folded)
    }
}
