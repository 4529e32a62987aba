import PrecisCore

/// What a stored int8 variant holds besides int8 layers.
public enum Int8Form: Sendable, Equatable {
    /// Every convolution and affine layer in int8, with calibrated input ranges.
    case plain
    /// Some layers kept in float: float32 from `/model`, or float16 (`half`) stored in the variant.
    case mixed(floatLayers: [String], half: Bool)
    /// Dynamic quantization: int8 weights, float32 biases, inputs quantized per batch.
    case dynamic
}

/// A stored int8 variant as it runs: the int8 model, the float tensors it needs (layers kept in
/// float, or a dynamic variant's biases) with their bytes a value, and whether it is dynamic.
public struct StoredInt8 {
    public let model: QuantizedModel
    public let floatTensors: [String: Tensor<Double>]
    public let floatBytesPerValue: Int
    public let dynamic: Bool
}

extension WeightFile {
    /// The variant name of an int8 model: `int8-<scheme>`, e.g. `int8-wchannel-au8z`, with
    /// `-mixed` or `-dynamic` for those forms.
    public static func int8VariantName(_ scheme: QuantScheme, form: Int8Form = .plain) -> String {
        switch form {
        case .plain: return "int8-\(scheme)"
        case .mixed: return "int8-\(scheme)-mixed"
        case .dynamic: return "int8-\(scheme)-dynamic"
        }
    }

    /// Stores `model` (for the file's network) as `/variants/int8-<scheme>`, replacing a variant of
    /// that name, safely (copy, modify, rename). Each quantized layer's group holds `W` (int8
    /// codes, the master's shape), `W_scale` (float64, one per tensor or output channel, along
    /// `axis`), `b` (int32 codes at scale `input_scale · W_scale`) and its input's `input_scale`,
    /// `input_zero_point`, `input_qmin` and `input_qmax`. `calibration` adds attributes to the
    /// variant (method, image count, seed, ...). A mixed-precision variant is named
    /// `int8-<scheme>-mixed` and lists the layers it leaves in float in `float_layers`: in float32,
    /// their weights are the file's `/model`; in float16, the variant holds them (`W` and `b` in
    /// IEEE half). A dynamic one, `int8-<scheme>-dynamic` with attribute `dynamic` 1, holds float32
    /// biases and no input ranges. Returns the variant's name.
    @discardableResult
    public static func storeInt8(_ path: String, model: QuantizedModel, form: Int8Form = .plain, calibration: [(String, HDF5Attribute)]) throws -> String {
        let w = try read(path)
        let name = int8VariantName(model.scheme, form: form)
        try modify(path) { root in
            let variants = try root.groupCreatingIfNeeded("variants")
            if variants.contains(name) { try variants.remove(name) }
            let v = try variants.createGroup(name)
            try v.setAttribute("precision", .string(name))
            try v.setAttribute("element_type", .string(HDF5ElementType.int8.rawValue))
            try v.setAttribute("scheme", .string(model.scheme.description))
            try v.setAttribute("weights", .string(model.scheme.weights == .perChannel ? "int8 symmetric per output channel" : "int8 symmetric per tensor"))
            let activations = ["s8": "int8 symmetric per tensor", "s8z": "int8 with zero point per tensor", "u8z": "uint8 with zero point per tensor"]
            try v.setAttribute("activations", .string(activations[model.scheme.activations.rawValue]! + (form == .dynamic ? ", range per batch (dynamic)" : "")))
            if form == .dynamic { try v.setAttribute("dynamic", .int(1)) }
            try v.setAttribute("rounding", .string("half to even, saturating"))
            for (key, value) in calibration { try v.setAttribute(key, value) }
            let layers = try v.createGroup("model").createGroup("layers")
            if case let .mixed(floatLayers, half) = form {
                try v.setAttribute("float_layers", .string(floatLayers.joined(separator: " ")))
                try v.setAttribute("float_layers_weights", .string(half ? "float16 in this variant" : "float32 from /model"))
            }
            if case let .mixed(floatLayers, true) = form {
                for layer in floatLayers {
                    let g = try layers.createGroup(layer)
                    try g.setAttribute("kind", .string(w.spec.layers[w.spec.layerNames.firstIndex(of: layer)!].kind))
                    try g.setAttribute("precision", .string("float16"))
                    for t in ["W", "b"] {
                        let m = w.tensors[layer + "/" + t]!
                        try g.write(t, shape: m.shape, m.data.map { Float16($0) })
                    }
                }
            }
            for (i, q) in model.layers.sorted(by: { $0.key < $1.key }) {
                let g = try layers.createGroup(w.spec.layerNames[i])
                try g.setAttribute("kind", .string(w.spec.layers[i].kind))
                try g.setAttribute("axis", .int(q.channelAxis))
                try g.write("W", shape: q.shape, q.weights)
                try g.write("W_scale", shape: [q.weightScales.count], q.weightScales)
                if form == .dynamic {
                    try g.write("b", shape: [q.channels], w.tensors[w.spec.layerNames[i] + "/b"]!.data.map(Float.init))
                    continue
                }
                try g.write("b", shape: [q.channels], q.bias)
                try g.setAttribute("input_scale", .double(q.input.scale))
                try g.setAttribute("input_zero_point", .int(q.input.zeroPoint))
                try g.setAttribute("input_qmin", .int(q.input.qmin))
                try g.setAttribute("input_qmax", .int(q.input.qmax))
            }
        }
        return name
    }

    /// The int8 model stored as `/variants/<name>` for `spec`.
    public static func readInt8(_ path: String, spec: ModelSpec, variant name: String) throws -> QuantizedModel {
        try readInt8Variant(path, spec: spec, variant: name).model
    }

    /// The int8 variant `/variants/<name>` for `spec`, validated: shapes, element types, positive
    /// finite scales, zero points inside their code range, a known scheme, and the float layers
    /// of a mixed variant (from the variant in float16, or from `/model` in float32).
    public static func readInt8Variant(_ path: String, spec: ModelSpec, variant name: String) throws -> StoredInt8 {
        let v = try variantGroup(path, name)
        let schemeName = try string(v, "scheme")
        guard let scheme = QuantScheme.all.first(where: { $0.description == schemeName }) else {
            throw HDF5Error(file: path, path: v.path, message: "unknown int8 scheme '\(schemeName)'")
        }
        let layers = try v.group("model/layers")
        let shapes = Dictionary(uniqueKeysWithValues: try spec.tensorShapes().map { ($0.name, $0.shape) })
        let floatLayers = try v.attribute("float_layers") == nil ? [] : try string(v, "float_layers").split(separator: " ").map(String.init)
        if let bad = floatLayers.first(where: { name in !quantizedLayers(spec).contains { spec.layerNames[$0] == name } }) {
            throw HDF5Error(file: path, path: v.path, message: "float_layers names '\(bad)', which is not a convolution or affine layer of the network")
        }
        let dynamic = try v.attribute("dynamic") == .int(1)
        var out: [Int: QuantizedLayer] = [:], floats: [String: Tensor<Double>] = [:]
        /// `t` of group `g`, which must have `shape` and element type `type`, with finite values.
        func values<E: HDF5Scalar & BinaryFloatingPoint>(_ g: HDF5Group, _ t: String, _ shape: [Int], _ type: HDF5ElementType, as: E.Type) throws -> Tensor<Double> {
            let info = try g.datasetInfo(t)
            guard info.shape == shape && info.type == type else {
                throw HDF5Error(file: path, path: g.path + "/" + t, message: "must be \(type.rawValue) of shape \(shapeText(shape)), is \(info.typeName) \(shapeText(info.shape))")
            }
            let x = try g.read(t, as: E.self).values.map(Double.init)
            if let bad = x.firstIndex(where: { !$0.isFinite }) {
                throw HDF5Error(file: path, path: g.path + "/" + t, message: "holds a non-finite value (\(x[bad])) at element \(bad)")
            }
            return Tensor(shape: shape, data: x)
        }
        for i in quantizedLayers(spec) where !floatLayers.contains(spec.layerNames[i]) {
            let layer = spec.layerNames[i], g = try layers.group(layer)
            func fail(_ message: String) -> HDF5Error { HDF5Error(file: path, path: g.path, message: message) }
            let shape = shapes[layer + "/W"]!, channels = shapes[layer + "/b"]![0]
            let wi = try g.datasetInfo("W")
            guard wi.shape == shape && wi.type == .int8 else { throw fail("W must be int8 of shape \(shapeText(shape)), is \(wi.typeName) \(shapeText(wi.shape))") }
            let scales = try g.read("W_scale", as: Double.self).values
            guard scales.count == 1 || scales.count == channels, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw fail("W_scale must hold 1 or \(channels) positive finite scales")
            }
            let weights = try g.read("W", as: Int8.self).values
            if dynamic {
                // The input range is measured per batch; the stored layer keeps only its format.
                floats[layer + "/b"] = try values(g, "b", [channels], .float32, as: Float.self)
                let format: QuantRange = switch scheme.activations {
                case .int8Symmetric: .symmetric(threshold: 0)
                case .int8Asymmetric: .asymmetric(low: 0, high: 0, unsigned: false)
                case .uint8Asymmetric: .asymmetric(low: 0, high: 0, unsigned: true)
                }
                out[i] = QuantizedLayer(weights: weights, shape: shape, weightScales: scales, bias: [Int32](repeating: 0, count: channels), input: format)
                continue
            }
            let bi = try g.datasetInfo("b")
            guard bi.shape == [channels] && bi.type == .int32 else { throw fail("b must be int32 of shape (\(channels)), is \(bi.typeName) \(shapeText(bi.shape))") }
            let (scale, zero, qmin, qmax) = (try number(g, "input_scale"), Int(try number(g, "input_zero_point")),
                                             Int(try number(g, "input_qmin")), Int(try number(g, "input_qmax")))
            guard scale > 0 && scale.isFinite, qmin < qmax, qmin <= zero, zero <= qmax, [(-127, 127), (-128, 127), (0, 255)].contains(where: { $0 == (qmin, qmax) }) else {
                throw fail("has a bad input range (scale \(scale), zero point \(zero), codes \(qmin)...\(qmax))")
            }
            out[i] = QuantizedLayer(weights: weights, shape: shape, weightScales: scales, bias: try g.read("b", as: Int32.self).values,
                                    input: QuantRange(scale: scale, zeroPoint: zero, qmin: qmin, qmax: qmax))
        }
        var bytesPerValue = 4
        if let first = floatLayers.first, layers.contains(first) {
            bytesPerValue = 2
            for layer in floatLayers {
                let g = try layers.group(layer)
                for t in ["W", "b"] { floats[layer + "/" + t] = try values(g, t, shapes[layer + "/" + t]!, .float16, as: Float16.self) }
            }
        } else if !floatLayers.isEmpty {
            for (key, value) in try read(path).tensors where floatLayers.contains(String(key.split(separator: "/")[0])) { floats[key] = value }
        }
        return StoredInt8(model: QuantizedModel(scheme: scheme, layers: out), floatTensors: floats, floatBytesPerValue: bytesPerValue, dynamic: dynamic)
    }

    /// What `storeInt8` needs to write variant `name` again: its model, its form, and the
    /// attributes it was stored with beyond those `storeInt8` writes itself.
    static func readInt8ForRewrite(_ path: String, spec: ModelSpec, variant name: String) throws
        -> (model: QuantizedModel, form: Int8Form, attributes: [(String, HDF5Attribute)]) {
        let stored = try readInt8Variant(path, spec: spec, variant: name), v = try variantGroup(path, name)
        var form = Int8Form.plain
        if stored.dynamic { form = .dynamic }
        if try v.attribute("float_layers") != nil {
            form = .mixed(floatLayers: try string(v, "float_layers").split(separator: " ").map(String.init), half: stored.floatBytesPerValue == 2)
        }
        let own: Set = ["precision", "element_type", "scheme", "weights", "activations", "rounding", "dynamic", "float_layers", "float_layers_weights"]
        let attributes = try v.attributeNames().filter { !own.contains($0) }.compactMap { key in try v.attribute(key).map { (key, $0) } }
        return (stored.model, form, attributes)
    }

    /// The group of variant `name`, or an error saying the file has none of that name.
    private static func variantGroup(_ path: String, _ name: String) throws -> HDF5Group {
        let root = try HDF5File.open(path).root
        guard root.contains("variants"), try root.group("variants").contains(name) else {
            throw HDF5Error(file: path, path: "/variants", message: "has no variant '\(name)' (precis quantize stores one)")
        }
        return try root.group("variants/\(name)")
    }
}
