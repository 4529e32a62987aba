import Foundation

/// One precision mode's run over a test set: its predictions, its wall time, and the error of
/// every layer output against the float64 network. Modes of different scalar types run side by
/// side, batch by batch, against one float64 reference (`runPrecisionReport`).
public final class ModeReport {
    /// The mode's name: a precision mode's, or a quantized variant's such as `int8-wchannel-au8z`.
    public let name: String
    /// The floating precision mode, or nil for a quantized network.
    public let mode: PrecisionMode?
    /// The errors of each layer's output (in layer order; the last is the logits).
    public private(set) var layers: [ErrorStats]
    /// Whether the network computes each layer's output on its own: false for the layers an
    /// integer path folds into the one before (ReLU into the requantization clamp).
    public private(set) var computed: [Bool]
    /// The predicted class of every image, in order.
    public private(set) var predicted: [Int] = []
    /// Every image's logits, widened to Double (`(images, classes)` row-major), when kept.
    public private(set) var logitValues: [Double] = []
    /// Seconds spent in the network (not in the comparison).
    public private(set) var seconds = 0.0
    /// Bytes of the weights in the mode's storage format.
    public let modelBytes: Int
    /// Bits per weight value, scales included, of a simulated number format.
    public var bitsPerWeight: Double?
    fileprivate var step: ((ModeReport, ArraySlice<Float>, Int, [Tensor<Double>], Double) -> Void)!

    private init(name: String, mode: PrecisionMode?, depth: Int, modelBytes: Int) {
        (self.name, self.mode, self.modelBytes) = (name, mode, modelBytes)
        layers = Array(repeating: ErrorStats(), count: depth)
        computed = Array(repeating: true, count: depth)
    }

    /// A report for `network`, which computes `mode`; inputs are multiplied by `inputScale`. With
    /// `keepLogits`, the logits are kept in `logitValues`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    public convenience init<T: NetworkScalar>(
        _ mode: PrecisionMode, _ network: Network<T>, inputScale: Float = 1, keepLogits: Bool = false
    ) {
        let values = network.parameters.reduce(0) { $0 + $1.parameter.value.count }
        self.init(
            name: mode.rawValue, mode: mode, depth: network.layerNames.count, modelBytes: values * mode.bytesPerValue)
        let minNormal = mode.minNormal, shape = network.spec.inputShape
        step = { report, images, count, reference, referenceSeconds in
            if let same = reference as? [Tensor<T>], mode == .float64 {
                // float64 is the reference itself: the same network on the same input.
                report.seconds += referenceSeconds
                report.record(
                    same.map { $0 }, reference: reference, minNormal: minNormal, compare: false, keepLogits: keepLogits)
                return
            }
            var outs: [Tensor<T>] = []
            let x = Tensor<T>(shape: [count] + shape, data: images.map { T($0 * inputScale) })
            report.seconds += timed { outs = network.forwardAll(x) }
            report.record(
                outs.map { $0 }, reference: reference, minNormal: minNormal, compare: true, keepLogits: keepLogits)
        }
    }

    /// A report for a network given as `forward`, which maps a Float batch to every layer's output
    /// (index 0 the input itself), nil for the layers it does not compute on their own; `depth`
    /// layers, `modelBytes` of weights. For quantized networks: the outputs are dequantized values.
    /// With `predict` (a run without the layer outputs, for networks whose speed is itself a
    /// result, such as integer inference), the time and the logits are `predict`'s; without it,
    /// they are `forward`'s, as for the floating modes, and the network runs once per batch.
    public convenience init(
        name: String, depth: Int, modelBytes: Int, inputScale: Float = 1, keepLogits: Bool = false,
        forward: @escaping (Tensor<Float>) -> [Tensor<Float>?], predict: ((Tensor<Float>) -> Tensor<Float>)? = nil
    ) {
        self.init(name: name, mode: nil, depth: depth, modelBytes: modelBytes)
        step = { report, images, count, reference, _ in
            let x = Tensor<Float>(
                shape: [count] + Array(reference[0].shape.dropFirst()), data: images.map { $0 * inputScale })
            var outs: [Tensor<Float>?] = []
            guard let predict else {
                report.seconds += timed { outs = forward(x) }
                return report.record(outs, reference: reference, minNormal: 0, compare: true, keepLogits: keepLogits)
            }
            var logits = Tensor<Float>(shape: [0], data: [])
            report.seconds += timed { logits = predict(x) }
            outs = forward(x)
            outs[outs.count - 1] = logits
            report.record(outs, reference: reference, minNormal: 0, compare: true, keepLogits: keepLogits)
        }
    }

    /// Adds one batch: every computed layer output's errors against `reference` (when `compare`),
    /// each layer's on one core, the layers split over the cores by size, then the predictions and
    /// logits.
    private func record<T: NetworkScalar>(
        _ outs: [Tensor<T>?], reference: [Tensor<Double>], minNormal: Double, compare: Bool, keepLogits: Bool
    ) {
        if compare {
            var batch = [ErrorStats](repeating: ErrorStats(), count: outs.count - 1)
            batch.withUnsafeMutableBufferPointer { batch in
                parallelWeighted(outs.dropFirst().map { $0?.count ?? 0 }) { layers in
                    for i in layers {
                        if let y = outs[i + 1] {
                            batch[i].add(y.data, reference: reference[i + 1].data, minNormal: minNormal)
                        }
                    }
                }
            }
            for i in batch.indices { layers[i].merge(batch[i]) }
        }
        for i in computed.indices { computed[i] = outs[i + 1] != nil }
        let logits = outs.last!!
        predicted += argmaxRows(logits)
        if keepLogits { logitValues += logits.data.map { Double($0) } }
    }

    /// The logits' errors against float64.
    public var logits: ErrorStats { layers.last! }
}

/// Runs `count` images (row-major Floats of the network's input shape, multiplied by
/// `inputScale`) through `reference` (float64) and through every report's network, in batches;
/// `progress` gets the images done.
public func runPrecisionReport(
    reference: Network<Double>, _ reports: [ModeReport], images: [Float], count: Int, inputScale: Float = 1,
    batchSize: Int = 100, progress: (Int) -> Void = { _ in }
) {
    let per = reference.spec.inputShape.reduce(1, *)
    precondition(images.count >= count * per, "\(count) images need \(count * per) values, got \(images.count)")
    for start in stride(from: 0, to: count, by: batchSize) {
        let n = min(batchSize, count - start)
        let batch = images[start * per..<(start + n) * per]
        let x = Tensor<Double>(shape: [n] + reference.spec.inputShape, data: batch.map { Double($0 * inputScale) })
        var outs: [Tensor<Double>] = []
        let seconds = timed { outs = reference.forwardAll(x) }
        for report in reports { report.step(report, batch, n, outs, seconds) }
        progress(start + n)
    }
}

/// What computing one layer in a reduced mode does to the whole network: the float32 network
/// with only this layer (its weights, input and output) in the mode.
public struct LayerEffect: Sendable {
    public let layer: String
    /// Predictions against float32's.
    public let change: PairedChange
    /// The logits' errors against float64.
    public let logits: ErrorStats
}

/// For each quantized layer of `model`, the float32 network with only that layer in int8 (its
/// weights, bias and input quantized and dequantized, as `FakeQuantNetwork` simulates it; a
/// dynamic model's input range per batch), on `count` images against `labels`, float32's
/// predictions and the float64 logits of `reference`. `tensors` supplies everything in float.
public func explainInt8Layers(
    spec: ModelSpec, model: QuantizedModel, tensors: [String: Tensor<Double>], reference: Network<Double>,
    images: [Float], labels: [Int], float32Predicted: [Int], inputScale: Float = 1, batchSize: Int = 100,
    progress: (Int, Int) -> Void = { _, _ in }
) throws -> [LayerEffect] {
    let count = labels.count, per = spec.inputShape.reduce(1, *), layers = model.layers.keys.sorted()
    let scaled = inputScale == 1 ? images : images.map { $0 * inputScale }
    let exact = reference.logits(scaled, count: count).data
    return try layers.enumerated().map { k, i in
        let one = try FakeQuantNetwork(spec: spec, model: model.only([i]), tensors: tensors)
        var predicted: [Int] = [], logits = ErrorStats()
        for start in stride(from: 0, to: count, by: batchSize) {
            let n = min(batchSize, count - start)
            let y = one.predict(
                Tensor(shape: [n] + spec.inputShape, data: Array(scaled[start * per..<(start + n) * per])))
            predicted += argmaxRows(y)
            logits.add(
                y.data, reference: Array(exact[start * y.shape[1]..<(start + n) * y.shape[1]]),
                minNormal: Double(Float.leastNormalMagnitude))
            progress(k * count + start + n, layers.count * count)
        }
        return LayerEffect(
            layer: spec.layerNames[i],
            change: PairedChange(predicted: predicted, reference: float32Predicted, labels: labels), logits: logits)
    }
}

/// For each layer, the float32 network `float32` with only that layer computed by `reduced` (the
/// same network in the mode), on `count` images against `labels`, float32's own predictions
/// (`float32Predicted`) and the float64 logits of `reference`.
@_specialize(where T == Float)
@_specialize(where T == Double)
@_specialize(where T == Float16)
public func explainLayers<T: NetworkScalar>(
    float32: Network<Float>, reduced: Network<T>, reference: Network<Double>, images: [Float],
    labels: [Int], float32Predicted: [Int], inputScale: Float = 1, batchSize: Int = 100,
    progress: (Int) -> Void = { _ in }
) -> [LayerEffect] {
    let count = labels.count, per = float32.spec.inputShape.reduce(1, *), depth = float32.layerNames.count
    var predicted = [[Int]](repeating: [], count: depth), logits = [ErrorStats](repeating: ErrorStats(), count: depth)
    for start in stride(from: 0, to: count, by: batchSize) {
        let n = min(batchSize, count - start), shape = [n] + float32.spec.inputShape
        let batch = images[start * per..<(start + n) * per]
        let exact = reference.predict(Tensor(shape: shape, data: batch.map { Double($0 * inputScale) }))
        let outs = float32.forwardAll(Tensor(shape: shape, data: batch.map { $0 * inputScale }))
        for i in 0..<depth {
            let xs = float32.spec.inputs(of: i).map { outs[$0 + 1].converted(to: T.self) }
            var replaced = outs
            replaced[i + 1] = reduced.forward(xs, layer: i).converted(to: Float.self)
            let z = float32.forward(from: replaced, layers: (i + 1)..<depth)
            predicted[i] += argmaxRows(z)
            logits[i].add(z.data, reference: exact.data, minNormal: Double(Float.leastNormalMagnitude))
        }
        progress(start + n)
    }
    return (0..<depth).map { i in
        LayerEffect(
            layer: float32.layerNames[i],
            change: PairedChange(predicted: predicted[i], reference: float32Predicted, labels: labels),
            logits: logits[i])
    }
}
