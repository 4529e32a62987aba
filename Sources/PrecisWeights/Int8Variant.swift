import PrecisCore

/// A stored int8 variant as it runs: the int8 model, the float tensors it holds itself (layers
/// kept in float16, or a dynamic variant's biases), and those it runs with.
public struct StoredInt8: StoredVariant {
    public let model: QuantizedModel
    public let floatTensors: [String: Tensor<Double>]
    public let tensors: [String: Tensor<Double>]
    /// Bytes a value of the layers it keeps in float: 2 when it holds them in float16.
    public var floatBytesPerValue: Int { model.form == .mixed(half: true) ? 2 : 4 }
    public var dynamic: Bool { model.dynamic }
}

/// The attributes `writeInt8` sets on an int8 variant's group (calibration attributes are the caller's).
enum Int8Attribute: String, CaseIterable {
    case precision, scheme, weights, activations, rounding, dynamic
    case elementType = "element_type", floatLayers = "float_layers", floatLayersWeights = "float_layers_weights"
    case foldedBatchNorm = "folded_batchnorm"
}

/// The attributes of a quantized layer's group in an int8 variant.
enum Int8LayerAttribute: String, CaseIterable {
    case axis
    case inputScale = "input_scale", inputZeroPoint = "input_zero_point", inputQmin = "input_qmin", inputQmax =
        "input_qmax"
}

private typealias A = Int8Attribute
private typealias L = Int8LayerAttribute

extension WeightFile {
    /// Writes `model` (for this file's network) as `/variants/int8-<scheme>` under `root`, replacing
    /// a variant of that name (`WeightStore.store` does it safely). Each quantized layer's group holds `W` (int8
    /// codes, the master's shape), `W_scale` (float64, one per tensor or output channel, along
    /// `axis`), `b` (int32 codes at scale `input_scale · W_scale`) and its input's `input_scale`,
    /// `input_zero_point`, `input_qmin` and `input_qmax`. `calibration` adds attributes to the
    /// variant (method, image count, seed, ...). A mixed-precision variant is named
    /// `int8-<scheme>-mixed` and lists the layers it leaves in float in `float_layers`: in float32,
    /// their weights are the file's `/model`; in float16, the variant holds them (`W` and `b` in
    /// IEEE half). A dynamic one, `int8-<scheme>-dynamic` with attribute `dynamic` 1, holds float32
    /// biases and no input ranges. `folded_batchnorm` names the batch normalizations folded into
    /// the layer before them: that layer's codes hold the folded weights and bias. Float values a
    /// variant holds (float16 layers, dynamic biases) are the master's, folded when the variant runs.
    func writeInt8(_ model: QuantizedModel, calibration: [(String, HDF5Attribute)], into root: HDF5Group) throws {
        let w = self, form = model.form, name = model.precision.name
        let floats = try model.equalization.map { try $0.applied(to: tensors, spec: spec) } ?? tensors
        let floatLayers = quantizedLayers(spec).filter { model.layers[$0] == nil }.map { spec.layerNames[$0] }
        do {
            let variants = try root.groupCreatingIfNeeded("variants")
            if variants.contains(name) { try variants.remove(name) }
            let v = try variants.createGroup(name)
            try v.setAttribute(A.precision.rawValue, .string(name))
            try v.setAttribute(A.elementType.rawValue, .string(HDF5ElementType.int8.rawValue))
            try v.setAttribute(A.scheme.rawValue, .string(model.scheme.description))
            try v.setAttribute(
                A.weights.rawValue,
                .string(
                    model.scheme.weights == .perChannel
                        ? "int8 symmetric per output channel" : "int8 symmetric per tensor"))
            let activations = [
                "s8": "int8 symmetric per tensor", "s8z": "int8 with zero point per tensor",
                "u8z": "uint8 with zero point per tensor",
            ]
            try v.setAttribute(
                A.activations.rawValue,
                .string(
                    activations[model.scheme.activations.rawValue]!
                        + (form == .dynamic ? ", range per batch (dynamic)" : "")))
            if form == .dynamic { try v.setAttribute(A.dynamic.rawValue, .int(1)) }
            try v.setAttribute(A.rounding.rawValue, .string("half to even, saturating"))
            for (key, value) in calibration { try v.setAttribute(key, value) }
            try writeFolded(model.folded, on: v)
            if let e = model.equalization { try writeEqualization(e, on: v) }
            let layers = try v.createGroup("model").createGroup("layers")
            if case let .mixed(half) = form {
                try v.setAttribute(A.floatLayers.rawValue, .string(floatLayers.joined(separator: " ")))
                try v.setAttribute(
                    A.floatLayersWeights.rawValue, .string(half ? "float16 in this variant" : "float32 from /model"))
            }
            if case .mixed(true) = form {
                for layer in floatLayers {
                    let g = try layers.createGroup(layer)
                    try g.setAttribute("kind", .string(w.spec.layers[w.spec.layerNames.firstIndex(of: layer)!].kind))
                    try g.setAttribute("precision", .string("float16"))
                    for t in ["W", "b"] {
                        let m = floats[tensorKey(layer, t)]!
                        try g.write(t, shape: m.shape, m.data.map { Float16($0) })
                    }
                }
            }
            for (i, q) in model.layers.sorted(by: { $0.key < $1.key }) {
                let g = try layers.createGroup(w.spec.layerNames[i])
                try g.setAttribute("kind", .string(w.spec.layers[i].kind))
                try g.setAttribute(L.axis.rawValue, .int(q.channelAxis))
                try g.write("W", shape: q.shape, q.weights)
                try g.write("W_scale", shape: [q.weightScales.count], q.weightScales)
                if form == .dynamic {
                    try g.write(
                        "b", shape: [q.channels], floats[tensorKey(w.spec.layerNames[i], "b")]!.data.map(Float.init))
                    continue
                }
                try g.write("b", shape: [q.channels], q.bias)
                try g.setAttribute(L.inputScale.rawValue, .double(q.input.scale))
                try g.setAttribute(L.inputZeroPoint.rawValue, .int(q.input.zeroPoint))
                try g.setAttribute(L.inputQmin.rawValue, .int(q.input.qmin))
                try g.setAttribute(L.inputQmax.rawValue, .int(q.input.qmax))
            }
        }
    }

    /// The int8 variant `/variants/<name>` for `spec`, validated: shapes, element types, positive
    /// finite scales, zero points inside their code range, a known scheme, and the float layers
    /// of a mixed variant (from the variant in float16, or from `/model` in float32).
    func readInt8(_ name: String, root: HDF5Group) throws -> StoredInt8 {
        let v = try Self.variantGroup(root, name), path = root.file.path
        let schemeName = try Self.string(v, A.scheme.rawValue)
        guard let scheme = QuantScheme(name: schemeName) else {
            throw HDF5Error(file: path, path: v.path, message: "unknown int8 scheme '\(schemeName)'")
        }
        if case .int8(let named, _)? = Precision(name: name), named != scheme {
            throw HDF5Error(file: path, path: v.path, message: "scheme '\(schemeName)' is not the one its name says")
        }
        let equalization = scheme.equalized ? try readEqualization(v) : nil
        let master = try equalization.map { try $0.applied(to: tensors, spec: spec) } ?? tensors
        let layers = try v.group("model/layers")
        let shapes = Dictionary(uniqueKeysWithValues: try spec.tensorShapes().map { ($0.name, $0.shape) })
        let floatLayers =
            try v.attribute(A.floatLayers.rawValue) == nil
            ? [] : try Self.string(v, A.floatLayers.rawValue).split(separator: " ").map(String.init)
        if let bad = floatLayers.first(where: { name in !quantizedLayers(spec).contains { spec.layerNames[$0] == name }
        }) {
            throw HDF5Error(
                file: path, path: v.path,
                message: "float_layers names '\(bad)', which is not a convolution or affine layer of the network")
        }
        let dynamic = try v.attribute(A.dynamic.rawValue) == .int(1)
        var out: [Int: QuantizedLayer] = [:], floats: [String: Tensor<Double>] = [:]
        /// `t` of group `g`, which must have `shape` and element type `type`, with finite values.
        func values<E: HDF5Scalar & BinaryFloatingPoint>(
            _ g: HDF5Group, _ t: String, _ shape: [Int], _ type: HDF5ElementType, as: E.Type
        ) throws -> Tensor<Double> {
            let info = try g.datasetInfo(t)
            guard info.shape == shape && info.type == type else {
                throw HDF5Error(
                    file: path, path: g.path + "/" + t,
                    message:
                        "must be \(type.rawValue) of shape \(shapeText(shape)), "
                        + "is \(info.typeName) \(shapeText(info.shape))"
                )
            }
            let x = try g.read(t, as: E.self).values.map(Double.init)
            if let bad = x.firstIndex(where: { !$0.isFinite }) {
                throw HDF5Error(
                    file: path, path: g.path + "/" + t,
                    message: "holds a non-finite value (\(x[bad])) at element \(bad)")
            }
            return Tensor(shape: shape, data: x)
        }
        for geometry in try spec.geometry() where !floatLayers.contains(geometry.name) {
            guard let gemm = geometry.gemm else { continue }
            let (i, layer) = (geometry.index, geometry.name), g = try layers.group(layer)
            func fail(_ message: String) -> HDF5Error { HDF5Error(file: path, path: g.path, message: message) }
            let shape = shapes[tensorKey(layer, "W")]!, channels = shapes[tensorKey(layer, "b")]![0]
            let wi = try g.datasetInfo("W")
            guard wi.shape == shape && wi.type == .int8 else {
                throw fail("W must be int8 of shape \(shapeText(shape)), is \(wi.typeName) \(shapeText(wi.shape))")
            }
            let scales = try g.read("W_scale", as: Double.self).values
            guard scales.count == 1 || scales.count == channels, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw fail("W_scale must hold 1 or \(channels) positive finite scales")
            }
            let weights = try g.read("W", as: Int8.self).values
            if dynamic {
                // The input range is measured per batch; the stored layer keeps only its format.
                floats[tensorKey(layer, "b")] = try values(g, "b", [channels], .float32, as: Float.self)
                let format: QuantRange =
                    switch scheme.activations {
                    case .int8Symmetric: .symmetric(threshold: 0)
                    case .int8Asymmetric: .asymmetric(low: 0, high: 0, unsigned: false)
                    case .uint8Asymmetric: .asymmetric(low: 0, high: 0, unsigned: true)
                    }
                out[i] = QuantizedLayer(
                    weights: weights, shape: shape, gemm: gemm, weightScales: scales,
                    bias: [Int32](repeating: 0, count: channels), input: format)
                continue
            }
            let bi = try g.datasetInfo("b")
            guard bi.shape == [channels] && bi.type == .int32 else {
                throw fail("b must be int32 of shape (\(channels)), is \(bi.typeName) \(shapeText(bi.shape))")
            }
            let (scale, zero, qmin, qmax) = (
                try Self.number(g, L.inputScale.rawValue), Int(try Self.number(g, L.inputZeroPoint.rawValue)),
                Int(try Self.number(g, L.inputQmin.rawValue)), Int(try Self.number(g, L.inputQmax.rawValue))
            )
            guard scale > 0 && scale.isFinite, qmin < qmax, qmin <= zero, zero <= qmax,
                [(-127, 127), (-128, 127), (0, 255)].contains(where: { $0 == (qmin, qmax) })
            else {
                throw fail("has a bad input range (scale \(scale), zero point \(zero), codes \(qmin)...\(qmax))")
            }
            out[i] = QuantizedLayer(
                weights: weights, shape: shape, gemm: gemm, weightScales: scales,
                bias: try g.read("b", as: Int32.self).values,
                input: QuantRange(scale: scale, zeroPoint: zero, qmin: qmin, qmax: qmax))
        }
        var form = dynamic ? Int8Form.dynamic : .plain
        if try v.attribute(A.floatLayers.rawValue) != nil { form = .mixed(half: false) }
        if let first = floatLayers.first, layers.contains(first) {
            form = .mixed(half: true)
            for layer in floatLayers {
                let g = try layers.group(layer)
                for t in ["W", "b"] {
                    floats[tensorKey(layer, t)] = try values(
                        g, t, shapes[tensorKey(layer, t)]!, .float16, as: Float16.self)
                }
            }
        } else if !floatLayers.isEmpty {
            for (key, value) in master where floatLayers.contains(String(key.split(separator: "/")[0])) {
                floats[key] = value
            }
        }
        return StoredInt8(
            model: QuantizedModel(
                scheme: scheme, layers: out, form: form, folded: try readFolded(v), equalization: equalization),
            floatTensors: floats,
            tensors: master.merging(floats) { $1 })
    }

    /// Sets `folded_batchnorm` on variant group `v`: the names of the `folded` layers, when there are any.
    func writeFolded(_ folded: Set<Int>, on v: HDF5Group) throws {
        guard !folded.isEmpty else { return }
        try v.setAttribute(
            Int8Attribute.foldedBatchNorm.rawValue,
            .string(folded.sorted().map { spec.layerNames[$0] }.joined(separator: " ")))
    }

    /// The batch normalizations variant group `v` says it folds (`folded_batchnorm`), each one that
    /// can fold into the layer before it.
    func readFolded(_ v: HDF5Group) throws -> Set<Int> {
        let key = Int8Attribute.foldedBatchNorm.rawValue
        guard try v.attribute(key) != nil else { return [] }
        let foldable = spec.foldableBatchNorms
        return Set(
            try Self.string(v, key).split(separator: " ").map { name in
                guard let i = spec.layerNames.firstIndex(of: String(name)), foldable[i] != nil else {
                    throw HDF5Error(
                        file: v.file.path, path: v.path,
                        message: "\(key) names '\(name)', which is not a batch normalization that folds")
                }
                return i
            })
    }

    /// The attributes of variant group `v` other than `own` (those its writer sets itself).
    static func attributes(of v: HDF5Group, besides own: [String]) throws -> [(String, HDF5Attribute)] {
        try v.attributeNames().filter { !own.contains($0) }.compactMap { key in try v.attribute(key).map { (key, $0) } }
    }

    /// The group of variant `name`, or an error saying the file has none of that name.
    static func variantGroup(_ root: HDF5Group, _ name: String) throws -> HDF5Group {
        guard root.contains("variants"), try root.group("variants").contains(name) else {
            throw HDF5Error(
                file: root.file.path, path: "/variants",
                message: "has no variant '\(name)' (precis quantize stores one)")
        }
        return try root.group("variants/\(name)")
    }
}
