import Foundation

/// An int8 post-training quantization scheme: how weights and activations are mapped to integers.
/// Weights are always int8 symmetric; biases int32 at scale `s_in·s_w`.
public struct QuantScheme: Sendable, Hashable, CustomStringConvertible {
    public enum Weights: String, Sendable, CaseIterable {
        /// One scale per weight tensor.
        case perTensor = "tensor"
        /// One scale per output channel (a convolution's filter, an affine layer's output unit).
        case perChannel = "channel"
    }

    public enum Activations: String, Sendable, CaseIterable {
        /// int8, zero point 0, codes −127...127.
        case int8Symmetric = "s8"
        /// int8 with a zero point, codes −128...127.
        case int8Asymmetric = "s8z"
        /// uint8 with a zero point, codes 0...255.
        case uint8Asymmetric = "u8z"
    }

    public var weights: Weights
    public var activations: Activations
    /// Whether the network is equalized across layers first (see `Equalization`); the name ends in `-cle`.
    public var equalized: Bool

    public init(weights: Weights, activations: Activations, equalized: Bool = false) {
        (self.weights, self.activations, self.equalized) = (weights, activations, equalized)
    }

    /// Every combination, without equalization.
    public static let all = Weights.allCases.flatMap { w in
        Activations.allCases.map { QuantScheme(weights: w, activations: $0) }
    }
}

/// The layers of `spec` that quantization maps to integer GEMMs: convolutions and affine layers.
public func quantizedLayers(_ spec: ModelSpec) -> [Int] { spec.layers.indices.filter { spec.layers[$0].isQuantizable } }

/// Observes the input of every convolution and affine layer of `network` on `count` images
/// (row-major Floats), in batches: one observer per such layer, keyed by layer index.
public func observeActivations(_ network: Network<Float>, images: [Float], count: Int, batchSize: Int = 100) -> [Int:
    Observer]
{
    let layers = quantizedLayers(network.spec), per = network.spec.inputShape.reduce(1, *)
    var observers = Dictionary(uniqueKeysWithValues: layers.map { ($0, Observer()) })
    for start in stride(from: 0, to: count, by: batchSize) {
        let n = min(batchSize, count - start)
        let outs = network.forwardAll(
            Tensor(shape: [n] + network.spec.inputShape, data: Array(images[start * per..<(start + n) * per])))
        for i in layers { observers[i]!.observe(outs[network.spec.inputs(of: i)[0] + 1].data) }
    }
    return observers
}

/// Fake quantization: the float32 network with every convolution and affine layer's weights,
/// bias and input quantized and dequantized as the integer path would (weights int8 symmetric,
/// biases int32 at `s_in·s_w`, inputs with their calibrated range), and each merge's inputs that a
/// quantized layer also reads taken as that layer's codes (`QuantizedModel.mergeInputRanges`);
/// everything else in Float.
public final class FakeQuantNetwork {
    public let model: QuantizedModel
    /// The merges' inputs read as codes, by merge and source layer.
    let mergeRanges: [Int: [Int: QuantRange]]
    public var scheme: QuantScheme { model.scheme }
    /// The input range of each quantized layer, by layer index.
    public var inputRanges: [Int: QuantRange] { model.layers.mapValues(\.input) }
    let network: Network<Float>

    /// Dynamic quantization (the model's form): each quantized layer's input range comes from the
    /// batch itself (its minimum and maximum, in the scheme's activation format), and biases stay in float.
    public var dynamic: Bool { model.dynamic }

    /// The simulation of `model` for `spec`; `tensors` supplies any tensor the model does not
    /// quantize (none for networks of convolutions, affine layers, pooling, ReLU and dropout).
    public init(spec: ModelSpec, model: QuantizedModel, tensors: [String: Tensor<Double>] = [:]) throws {
        self.model = model
        mergeRanges = model.mergeInputRanges(spec)
        var parameters = try model.dequantized(spec, tensors)
        if model.dynamic {
            let floats = try spec.folding(model.folded, in: tensors)
            for i in model.layers.keys {
                parameters[tensorKey(spec.layerNames[i], "b")] = floats[tensorKey(spec.layerNames[i], "b")]
            }
        }
        network = try Network<Float>(spec: spec, parameters: parameters, folded: model.folded)
    }

    /// Quantizes `tensors` (the float32 master) for `spec` with `scheme` and the input ranges of
    /// `observers` under `method` (see `QuantizedModel`).
    public convenience init(
        spec: ModelSpec, tensors: [String: Tensor<Double>], scheme: QuantScheme, observers: [Int: Observer],
        method: CalibrationMethod, percentile: Double = 99.99
    ) throws {
        try self.init(
            spec: spec,
            model: try QuantizedModel(
                spec: spec, tensors: tensors, scheme: scheme, observers: observers, method: method,
                percentile: percentile), tensors: tensors)
    }

    /// Logits `(N, classes)` for `x`, quantizing each convolution and affine layer's input.
    public func predict(_ x: Tensor<Float>) -> Tensor<Float> {
        network.forward(x, layers: network.layerNames.indices, transform: quantizedInput)
    }

    /// Bias correction: for each quantized layer in order, the mean per output channel of
    /// (float layer − quantized layer) on the same inputs (`count` calibration images, run through
    /// the quantized layers before it) is added to the float bias, and the bias codes are
    /// recomputed. This removes the expected output shift that rounding the weights causes.
    public func biasCorrected(spec: ModelSpec, tensors master: [String: Tensor<Double>], images: [Float], count: Int)
        throws -> QuantizedModel
    {
        let tensors = try spec.folding(model.folded, in: master)
        let float32 = try Network<Float>(spec: spec, parameters: tensors, folded: model.folded)
        let per = spec.inputShape.reduce(1, *)
        var layers = model.layers, current = self
        for i in model.layers.keys.sorted() {
            let q = layers[i]!, range = q.input
            var shift = [Double](repeating: 0, count: q.channels), samples = 0
            for start in stride(from: 0, to: count, by: 100) {
                let n = min(100, count - start)
                var x = Tensor<Float>(
                    shape: [n] + spec.inputShape, data: Array(images[start * per..<(start + n) * per]))
                x = current.network.input(of: i, for: x, transform: current.quantizedInput)
                let exact = float32.forward(x, layers: i..<(i + 1))
                var xq = x
                for k in xq.data.indices { xq.data[k] = Float(range.fakeQuantize(Double(xq.data[k]))) }
                let approx = current.network.forward(xq, layers: i..<(i + 1))
                let inner = exact.count / (exact.shape[0] * q.channels)  // pixels per channel (1 for affine)
                for k in exact.data.indices { shift[k / inner % q.channels] += Double(exact.data[k] - approx.data[k]) }
                samples += n * inner
            }
            let b = tensors[tensorKey(spec.layerNames[i], "b")]!
            var corrected = q
            corrected.bias = (0..<q.channels).map { c in
                Int32(
                    ((b.data[c] + shift[c] / Double(samples)) / (range.scale * q.weightScale(c))).rounded(
                        .toNearestOrEven))
            }
            layers[i] = corrected
            current = try FakeQuantNetwork(
                spec: spec,
                model: QuantizedModel(
                    scheme: model.scheme, layers: layers, folded: model.folded, equalization: model.equalization),
                tensors: master)
        }
        return current.model
    }

    /// The input followed by every layer's output, as in `Network.forwardAll`.
    public func forwardAll(_ x: Tensor<Float>) -> [Tensor<Float>] { network.forwardAll(x, transform: quantizedInput) }

    /// The range layer `i` quantizes `x` with: its calibrated one, or for dynamic quantization the
    /// batch's own; nil when the layer is not quantized.
    func inputRange(_ x: Tensor<Float>, layer i: Int) -> QuantRange? {
        guard let r = model.layers[i]?.input else { return nil }
        return dynamic ? .covering(x.data, like: r) : r
    }

    /// `x`, the output of layer `source`, quantized and dequantized as layer `i` reads it (unchanged
    /// for a float layer, and for a merge's input that no quantized layer reads).
    private func quantizedInput(_ i: Int, _ source: Int, _ x: Tensor<Float>) -> Tensor<Float> {
        guard let r = mergeRanges[i]?[source] ?? inputRange(x, layer: i) else { return x }
        var y = x
        y.data.withUnsafeMutableBufferPointer { v in
            for k in v.indices { v[k] = Float(r.fakeQuantize(Double(v[k]))) }
        }
        return y
    }

    /// The input codes of every quantized layer for `x`, as `IntegerNetwork` keeps them (uint8,
    /// signed codes plus 128) minus 128.
    func inputCodes(_ x: Tensor<Float>) -> [[Int8]] {
        model.layers.keys.sorted().map { i in
            let y = network.input(of: i, for: x, transform: quantizedInput), r = inputRange(y, layer: i)!
            return y.data.map { Int8(r.quantize(Double($0)) + offset(r) - 128) }
        }
    }

    /// Bytes of the network: the quantized model, with every float tensor at 4 bytes a value.
    public var modelBytes: Int { model.networkBytes(network.spec) }
}
