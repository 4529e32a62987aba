/// One convolution or affine layer in int8: weight codes, their scales, int32 bias codes and the
/// range its input is quantized with.
public struct QuantizedLayer: Sendable, Equatable {
    /// Weight codes (−127...127) in the float tensor's layout: `(FN, C, FH, FW)` or `(in, out)`.
    public var weights: [Int8]
    public var shape: [Int]
    /// The layer's GEMM: which weights belong to which output channel.
    public let gemm: GEMMRole
    /// One scale for the tensor, or one per output channel (a convolution's filter, the axis 0 of
    /// its weights; an affine layer's output unit, axis 1).
    public var weightScales: [Double]
    /// Bias codes at scale `input.scale · weightScales[c]`.
    public var bias: [Int32]
    public var input: QuantRange

    public init(
        weights: [Int8], shape: [Int], gemm: GEMMRole, weightScales: [Double], bias: [Int32], input: QuantRange
    ) {
        (self.weights, self.shape, self.gemm, self.weightScales, self.bias, self.input) = (
            weights, shape, gemm, weightScales, bias, input
        )
    }

    /// Output channels.
    public var channels: Int { bias.count }

    /// The axis of the weights that indexes output channels: 0 for a convolution, 1 for affine.
    public var channelAxis: Int { gemm.channelAxis }

    /// The output channel of weight index `k`.
    func channel(_ k: Int) -> Int { gemm.channel(k) }

    /// The scale of weight channel `c`.
    func weightScale(_ c: Int) -> Double { weightScales[weightScales.count == 1 ? 0 : c] }

    /// Bias codes for the float biases `b`, at scale `input.scale · weightScales[c]`.
    func biasCodes(_ b: [Double]) -> [Int32] {
        b.indices.map { Int32((b[$0] / (input.scale * weightScale($0))).rounded(.toNearestOrEven)) }
    }

    /// The weights' signal-to-quantization-noise ratio against the float `master`, in dB: how
    /// much of each weight the codes keep (per-channel scales keep more of small filters).
    public func weightSQNR(master: Tensor<Double>) -> Double {
        var e = ErrorStats()
        e.add(
            weights.indices.map { Double(weights[$0]) * weightScale(channel($0)) }, reference: master.data, minNormal: 0
        )
        return e.sqnrDB
    }
}

/// What an int8 model holds besides int8 layers, as its variant's name says (`Int8Kind`).
public enum Int8Form: Sendable, Equatable {
    /// Every convolution and affine layer in int8, with calibrated input ranges.
    case plain
    /// Some layers kept in float: float32 from the master, or float16 (`half`) stored with the model.
    case mixed(half: Bool)
    /// Dynamic quantization: int8 weights, float biases, each batch's inputs quantized with their
    /// own range (the layers keep only the range's format).
    case dynamic

    /// What the variant's name says of the form.
    public var kind: Int8Kind {
        switch self {
        case .plain: return .plain
        case .mixed: return .mixed
        case .dynamic: return .dynamic
        }
    }
}

/// A network's int8 form: its scheme and every convolution and affine layer quantized, keyed by
/// layer index. Built by calibration (`init(spec:tensors:...)`) or read from a weight file.
public struct QuantizedModel: Sendable, Equatable {
    public let scheme: QuantScheme
    public let layers: [Int: QuantizedLayer]
    /// Plain, mixed (layers left out stay in float) or dynamic.
    public var form: Int8Form
    /// The batch normalizations folded into the layer before them, by index: that layer's codes
    /// (or, left in float, its values) are the folded ones, and the normalization passes its input through.
    public var folded: Set<Int>
    /// How the master was equalized across layers before quantizing (an equalized scheme's); the model
    /// runs with the master equalized by it.
    public var equalization: Equalization?

    public init(
        scheme: QuantScheme, layers: [Int: QuantizedLayer], form: Int8Form = .plain, folded: Set<Int> = [],
        equalization: Equalization? = nil
    ) {
        (self.scheme, self.layers, self.form, self.folded) = (scheme, layers, form, folded)
        self.equalization = equalization
    }

    /// Whether each batch's inputs are quantized with their own range.
    public var dynamic: Bool { form == .dynamic }

    /// The precision the model stands for.
    public var precision: Precision { .int8(scheme, form.kind) }

    /// Quantizes `tensors` (the float32 master) for `spec` with `scheme`: weights int8 symmetric
    /// (max |w| per tensor or channel), inputs with the ranges of `observers` under `method`; with
    /// `fold`, each batch normalization that can is folded into the layer before it first.
    public init(
        spec: ModelSpec, tensors: [String: Tensor<Double>], scheme: QuantScheme, observers: [Int: Observer],
        method: CalibrationMethod, percentile: Double = 99.99, fold: Bool = true
    ) throws {
        let inputs = Dictionary(
            uniqueKeysWithValues: quantizedLayers(spec).map { i in
                (
                    i,
                    (observers[i] ?? Observer()).quantRange(
                        method, percentile: percentile, symmetric: scheme.activations == .int8Symmetric,
                        unsigned: scheme.activations == .uint8Asymmetric)
                )
            })
        try self.init(spec: spec, tensors: tensors, scheme: scheme, inputs: inputs, fold: fold)
    }

    /// Quantizes `tensors` for `spec` with `scheme`, each layer's input with its range in `inputs`
    /// (by layer index): weights int8 symmetric (max |w| per tensor or channel), biases int32; with
    /// `fold`, each batch normalization that can is folded into the layer before it first.
    public init(
        spec: ModelSpec, tensors master: [String: Tensor<Double>], scheme: QuantScheme, inputs: [Int: QuantRange],
        fold: Bool = true
    ) throws {
        let folded = fold ? Set(spec.foldableBatchNorms.keys) : []
        let tensors = try spec.folding(folded, in: master)
        var layers: [Int: QuantizedLayer] = [:]
        for g in try spec.geometry() {
            guard let gemm = g.gemm else { continue }
            let (i, name) = (g.index, g.name)
            guard let input = inputs[i] else { throw ModelError.badSpec("\(name) has no input range") }
            guard let w = tensors[tensorKey(name, "W")], let b = tensors[tensorKey(name, "b")] else {
                throw ModelError.badSpec("\(name) has no W or b")
            }
            var layer = QuantizedLayer(
                weights: [], shape: w.shape, gemm: gemm, weightScales: [], bias: [Int32](repeating: 0, count: b.count),
                input: input)
            var largest = [Double](repeating: 0, count: scheme.weights == .perChannel ? b.count : 1)
            for (k, v) in w.data.enumerated() {
                let c = scheme.weights == .perChannel ? layer.channel(k) : 0
                largest[c] = max(largest[c], abs(v))
            }
            let ranges = largest.map { QuantRange.symmetric(threshold: $0) }
            layer.weightScales = ranges.map(\.scale)
            layer.weights = w.data.indices.map {
                Int8(ranges[ranges.count == 1 ? 0 : layer.channel($0)].quantize(w.data[$0]))
            }
            layer.bias = layer.biasCodes(b.data)
            layers[i] = layer
        }
        self.init(scheme: scheme, layers: layers, folded: folded)
    }

    /// The float tensors the codes stand for (weights and biases dequantized), with the other
    /// tensors of `tensors` as the model has them (folded where it folds); names as in `spec`.
    public func dequantized(_ spec: ModelSpec, _ tensors: [String: Tensor<Double>]) throws -> [String: Tensor<Double>] {
        var out = try spec.folding(folded, in: tensors)
        for (i, layer) in layers {
            let name = spec.layerNames[i]
            out[tensorKey(name, "W")] = Tensor(
                shape: layer.shape,
                data: layer.weights.indices.map { Double(layer.weights[$0]) * layer.weightScale(layer.channel($0)) })
            out[tensorKey(name, "b")] = Tensor(
                shape: [layer.channels],
                data: (0..<layer.channels).map { Double(layer.bias[$0]) * layer.input.scale * layer.weightScale($0) })
        }
        return out
    }

    /// The inputs each merge (add, concatenation, product) reads as codes, by merge and source layer:
    /// an input that a quantized layer also reads is read as that layer's input codes (the first
    /// such layer's range), as an integer pipeline holds it. None under dynamic quantization.
    public func mergeInputRanges(_ spec: ModelSpec) -> [Int: [Int: QuantRange]] {
        guard !dynamic else { return [:] }
        let first = firstReaders(spec).mapValues { layers[$0]!.input }
        var ranges: [Int: [Int: QuantRange]] = [:]
        for j in spec.layers.indices where spec.layers[j].isMerge {
            for s in spec.inputs(of: j) {
                if let r = first[s] { ranges[j, default: [:]][s] = r }
            }
        }
        return ranges
    }

    /// The first quantized layer (the lowest index) that reads each value of `spec`, by the value's
    /// layer index (-1: the input).
    public func firstReaders(_ spec: ModelSpec) -> [Int: Int] {
        var first: [Int: Int] = [:]
        for i in layers.keys.sorted() where first[spec.inputs(of: i)[0]] == nil { first[spec.inputs(of: i)[0]] = i }
        return first
    }

    /// The same model with only the layers in `kept` quantized (the others stay in float).
    public func only(_ kept: Set<Int>) -> QuantizedModel {
        QuantizedModel(
            scheme: scheme, layers: layers.filter { kept.contains($0.key) }, form: form, folded: folded,
            equalization: equalization)
    }

    /// Bytes of the quantized model: int8 weights, int32 biases, a Float scale per weight scale and
    /// a scale and zero point per input range (plus any float tensors left, counted by the caller).
    public var bytes: Int {
        layers.values.reduce(0) { $0 + $1.weights.count + 4 * $1.bias.count + 4 * $1.weightScales.count + 8 }
    }

    /// Bytes of the whole network of `spec` with this model: `bytes`, plus `floatBytesPerValue` a
    /// value for the tensors of every layer the model leaves in float.
    public func networkBytes(_ spec: ModelSpec, floatBytesPerValue: Int = 4) -> Int {
        let floats = ((try? spec.geometry()) ?? []).filter { layers[$0.index] == nil && !folded.contains($0.index) }
            .reduce(0) {
                $0 + $1.parameterCount
            }
        return bytes + floatBytesPerValue * floats
    }
}
