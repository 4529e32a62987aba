/// A network read from another tool: its spec, its tensors in Precis's layout (`00_conv1/W`),
/// who produced it, and what the import dropped or adapted.
public struct ImportedNetwork {
    public var spec: ModelSpec
    public var tensors: [String: Tensor<Double>]
    public var producer: String
    public var notes: [String]

    public init(spec: ModelSpec, tensors: [String: Tensor<Double>], producer: String, notes: [String]) {
        (self.spec, self.tensors, self.producer, self.notes) = (spec, tensors, producer, notes)
    }
}

/// One layer of an imported network: its spec, its tensors by name (`W`, `b`, `gamma`, ...), the
/// layers it reads (indices among the imported layers, -1 the input; nil: the layer before), and
/// how errors name its source (`node conv1 (Conv)`).
public struct ImportedLayer {
    public var spec: LayerSpec
    public var tensors: [String: Tensor<Double>]
    public var inputs: [Int]?
    public var label: String

    public init(_ spec: LayerSpec, _ tensors: [String: Tensor<Double>] = [:], inputs: [Int]? = nil, label: String) {
        (self.spec, self.tensors, self.inputs, self.label) = (spec, tensors, inputs, label)
    }
}

extension ImportedNetwork {
    /// The same network with an input normalization of `statistics` in front (see
    /// `ModelSpec.normalizingInput`); throws when it has one already.
    public func normalizingInput(_ statistics: ChannelStatistics) throws -> ImportedNetwork {
        guard !spec.normalizesInput else { throw ModelError.badSpec("the network normalizes its input already") }
        let s = try statistics.spread(over: spec.inputShape[0]), normalized = spec.normalizingInput()
        var moved: [String: Tensor<Double>] = [:]
        for (old, new) in zip(spec.layerNames, normalized.layerNames.dropFirst()) {
            for (key, value) in tensors where key.hasPrefix(old + "/") {
                moved[new + key.dropFirst(old.count)] = value
            }
        }
        let name = normalized.layerNames[0], c = [s.mean.count]
        moved[tensorKey(name, "mean")] = Tensor(shape: c, data: s.mean)
        moved[tensorKey(name, "std")] = Tensor(shape: c, data: s.std)
        return ImportedNetwork(spec: normalized, tensors: moved, producer: producer, notes: notes)
    }

    /// The network of `layers` on inputs of `inputShape`, checked: the layers must fit together,
    /// and every tensor must have the shape its layer needs and finite values. `file` names the
    /// source in errors.
    public init(
        name: String, inputShape: [Int], layers: [ImportedLayer], producer: String, notes: [String], file: String
    ) throws {
        func fail(_ problem: String) -> DataError { DataError(file: file, problem: problem) }
        var wiring: [Int: [Int]] = [:]
        for (i, l) in layers.enumerated() { if let from = l.inputs { wiring[i] = from } }
        let spec = ModelSpec(
            name: name, inputShape: inputShape, layers: layers.map(\.spec), wiring: wiring, weightInit: .he)
        if let unused = spec.consumers.dropLast().firstIndex(of: 0) {
            throw fail("\(layers[unused].label): its output is used by no later layer and is not the output")
        }
        let geometry: [LayerGeometry]
        do { geometry = try spec.geometry() } catch { throw fail("the layers do not fit together: \(error)") }
        var tensors: [String: Tensor<Double>] = [:]
        for layer in geometry {
            let source = layers[layer.index]
            for t in layer.tensors {
                guard let value = source.tensors[t.name] else { throw fail("\(source.label): no \(t.name)") }
                guard value.shape == t.shape else {
                    let needs = shapeText(t.shape)
                    throw fail(
                        "\(source.label): \(t.name) has shape \(shapeText(value.shape)), the layer needs \(needs)")
                }
                if let bad = value.data.first(where: { !$0.isFinite }) {
                    throw fail("\(source.label): \(t.name) holds a non-finite value (\(bad))")
                }
                if t.role == .inputStd, let bad = value.data.first(where: { $0 <= 0 }) {
                    throw fail("\(source.label): the standard deviation holds \(bad), which is not positive")
                }
                tensors[layer.key(t.name)] = value
            }
        }
        self.init(spec: spec, tensors: tensors, producer: producer, notes: notes)
    }
}
