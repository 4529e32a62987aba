/// The convolution and affine layers of a network in a reduced format, as a stored variant holds
/// them: int8 codes (`QuantizedModel`) or a number format's codes and scales (`FormatModel`). What
/// the sensitivity ranking and the mixed-precision search need of either, so each is written once.
public protocol QuantizedLayers: Sendable {
    /// The indices of the quantized layers, ascending.
    var quantizedIndices: [Int] { get }

    /// The model with only `layers` quantized, the others in float.
    func only(_ layers: Set<Int>) -> Self

    /// Each quantized layer's weight SQNR in dB against the float `tensors` (with any batch
    /// normalization the model folds folded in), by layer index.
    func weightSQNR(spec: ModelSpec, tensors: [String: Tensor<Double>]) throws -> [Int: Double]

    /// The network with these layers simulated in Float and the others from `floats` (their
    /// `floatBytesPerValue` bytes a value counted in `bytes`).
    func simulation(spec: ModelSpec, floats: [String: Tensor<Double>], floatBytesPerValue: Int) throws
        -> QuantizedSimulation

    /// For each quantized layer, the float32 network with only that layer quantized, on `test`,
    /// against float32's predictions and the float64 logits of `reference`; `tensors` supplies the
    /// values in float. `progress` gets work done and total.
    func layerEffects(
        spec: ModelSpec, tensors: [String: Tensor<Double>], float32: Network<Float>, reference: Network<Double>,
        test: TestImages, float32Predicted: [Int], progress: @escaping (Int, Int) -> Void
    ) throws -> [LayerEffect]
}

/// A quantized network simulated in Float, and its size.
public struct QuantizedSimulation {
    public let predict: (Tensor<Float>) -> Tensor<Float>
    /// Bytes of the whole network: quantized layers as stored, the others in float.
    public let bytes: Int
}

extension QuantizedModel: QuantizedLayers {
    public var quantizedIndices: [Int] { layers.keys.sorted() }

    public func weightSQNR(spec: ModelSpec, tensors: [String: Tensor<Double>]) throws -> [Int: Double] {
        var out: [Int: Double] = [:]
        let tensors = try spec.folding(folded, in: tensors)
        for (i, q) in layers {
            if let w = tensors[tensorKey(spec.layerNames[i], "W")] { out[i] = q.weightSQNR(master: w) }
        }
        return out
    }

    public func simulation(spec: ModelSpec, floats: [String: Tensor<Double>], floatBytesPerValue: Int) throws
        -> QuantizedSimulation
    {
        let network = try FakeQuantNetwork(spec: spec, model: self, tensors: floats)
        return QuantizedSimulation(
            predict: { network.predict($0) }, bytes: networkBytes(spec, floatBytesPerValue: floatBytesPerValue))
    }

    public func layerEffects(
        spec: ModelSpec, tensors: [String: Tensor<Double>], float32: Network<Float>, reference: Network<Double>,
        test: TestImages, float32Predicted: [Int], progress: @escaping (Int, Int) -> Void
    ) throws -> [LayerEffect] {
        try explainInt8Layers(
            spec: spec, model: self, tensors: tensors, reference: reference, images: test.images,
            labels: test.labels, float32Predicted: float32Predicted, inputScale: test.inputScale, progress: progress)
    }
}

extension FormatModel: QuantizedLayers {
    public var quantizedIndices: [Int] { weights.keys.sorted() }

    public func simulation(spec: ModelSpec, floats: [String: Tensor<Double>], floatBytesPerValue: Int) throws
        -> QuantizedSimulation
    {
        guard floatBytesPerValue == 4 else { throw ModelError.badSpec("number formats keep other layers in float32") }
        let network = try FormatNetwork(spec: spec, tensors: floats, model: self)
        return QuantizedSimulation(predict: { network.predict($0) }, bytes: network.modelBytes)
    }

    public func layerEffects(
        spec: ModelSpec, tensors: [String: Tensor<Double>], float32: Network<Float>, reference: Network<Double>,
        test: TestImages, float32Predicted: [Int], progress: @escaping (Int, Int) -> Void
    ) throws -> [LayerEffect] {
        let network = try FormatNetwork(spec: spec, tensors: tensors, model: self)
        let rounded = Set(quantizedIndices.map { spec.layerNames[$0] })
        // Each layer's rounded output goes into float32 folded alike, so no normalization applies twice.
        let float32 =
            folded.isEmpty
            ? float32 : try Network<Float>(spec: spec, parameters: spec.folding(folded, in: tensors), folded: folded)
        return explainLayers(
            float32: float32, reduced: network.network, reference: reference, images: test.images, labels: test.labels,
            float32Predicted: float32Predicted, inputScale: test.inputScale
        ) { progress($0, test.count) }
        .filter { rounded.contains($0.layer) }
    }
}
