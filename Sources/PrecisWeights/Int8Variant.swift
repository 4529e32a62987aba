import PrecisCore

extension WeightFile {
    /// The variant name of an int8 model: `int8-<scheme>`, e.g. `int8-wchannel-au8z`, with
    /// `-mixed` for a mixed-precision one.
    public static func int8VariantName(_ scheme: QuantScheme, mixed: Bool = false) -> String { "int8-\(scheme)" + (mixed ? "-mixed" : "") }

    /// Stores `model` (for the file's network) as `/variants/int8-<scheme>`, replacing a variant of
    /// that name, safely (copy, modify, rename). Each quantized layer's group holds `W` (int8
    /// codes, the master's shape), `W_scale` (float64, one per tensor or output channel, along
    /// `axis`), `b` (int32 codes at scale `input_scale · W_scale`) and its input's `input_scale`,
    /// `input_zero_point`, `input_qmin` and `input_qmax`. `calibration` adds attributes to the
    /// variant (method, image count, seed, ...). A mixed-precision variant (`mixed`) is named
    /// `int8-<scheme>-mixed` and lists the layers it leaves in float in `float_layers`: in float32,
    /// their weights are the file's `/model`; in float16 (`floatHalf`), the variant holds them
    /// (`W` and `b` in IEEE half). Returns the variant's name.
    @discardableResult
    public static func storeInt8(_ path: String, model: QuantizedModel, mixed: Bool = false, floatLayers: [String] = [], floatHalf: Bool = false,
                                 calibration: [(String, HDF5Attribute)]) throws -> String {
        let w = try read(path)
        let name = int8VariantName(model.scheme, mixed: mixed)
        try modify(path) { root in
            let variants = try root.groupCreatingIfNeeded("variants")
            if variants.contains(name) { try variants.remove(name) }
            let v = try variants.createGroup(name)
            try v.setAttribute("precision", .string(name))
            try v.setAttribute("element_type", .string(HDF5ElementType.int8.rawValue))
            try v.setAttribute("scheme", .string(model.scheme.description))
            try v.setAttribute("weights", .string(model.scheme.weights == .perChannel ? "int8 symmetric per output channel" : "int8 symmetric per tensor"))
            let activations = ["s8": "int8 symmetric per tensor", "s8z": "int8 with zero point per tensor", "u8z": "uint8 with zero point per tensor"]
            try v.setAttribute("activations", .string(activations[model.scheme.activations.rawValue]!))
            try v.setAttribute("rounding", .string("half to even, saturating"))
            for (key, value) in calibration { try v.setAttribute(key, value) }
            let layers = try v.createGroup("model").createGroup("layers")
            if mixed {
                try v.setAttribute("float_layers", .string(floatLayers.joined(separator: " ")))
                try v.setAttribute("float_layers_weights", .string(floatHalf ? "float16 in this variant" : "float32 from /model"))
            }
            if floatHalf {
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
                try g.write("b", shape: [q.channels], q.bias)
                try g.setAttribute("input_scale", .double(q.input.scale))
                try g.setAttribute("input_zero_point", .int(q.input.zeroPoint))
                try g.setAttribute("input_qmin", .int(q.input.qmin))
                try g.setAttribute("input_qmax", .int(q.input.qmax))
            }
        }
        return name
    }

    /// The float tensors of the layers a mixed variant leaves in float (none for a plain int8
    /// variant): from the variant in float16, or from `/model` in float32; and the bytes a value.
    public static func readInt8FloatLayers(_ path: String, spec: ModelSpec, variant name: String) throws -> (tensors: [String: Tensor<Double>], bytesPerValue: Int) {
        let v = try variantGroup(path, name)
        let floatLayers = try v.attribute("float_layers") == nil ? [] : try string(v, "float_layers").split(separator: " ").map(String.init)
        let layers = try v.group("model/layers")
        guard let first = floatLayers.first, layers.contains(first) else {
            let master = try read(path).tensors
            return (master.filter { floatLayers.contains(String($0.key.split(separator: "/")[0])) }, 4)
        }
        let shapes = Dictionary(uniqueKeysWithValues: try spec.tensorShapes().map { ($0.name, $0.shape) })
        var out: [String: Tensor<Double>] = [:]
        for layer in floatLayers {
            let g = try layers.group(layer)
            for t in ["W", "b"] {
                let info = try g.datasetInfo(t), shape = shapes[layer + "/" + t]!
                guard info.shape == shape && info.type == .float16 else {
                    throw HDF5Error(file: path, path: g.path + "/" + t, message: "must be float16 of shape \(shapeText(shape)), is \(info.typeName) \(shapeText(info.shape))")
                }
                let values = try g.read(t, as: Float16.self).values.map(Double.init)
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw HDF5Error(file: path, path: g.path + "/" + t, message: "holds a non-finite value (\(values[bad])) at element \(bad)")
                }
                out[layer + "/" + t] = Tensor(shape: shape, data: values)
            }
        }
        return (out, 2)
    }

    /// The int8 model stored as `/variants/<name>` for `spec`, validated: shapes, element types,
    /// positive finite scales, zero points inside their code range, and a known scheme.
    public static func readInt8(_ path: String, spec: ModelSpec, variant name: String) throws -> QuantizedModel {
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
        var out: [Int: QuantizedLayer] = [:]
        for i in quantizedLayers(spec) where !floatLayers.contains(spec.layerNames[i]) {
            let layer = spec.layerNames[i], g = try layers.group(layer)
            func fail(_ message: String) -> HDF5Error { HDF5Error(file: path, path: g.path, message: message) }
            let shape = shapes[layer + "/W"]!, channels = shapes[layer + "/b"]![0]
            let (wi, bi) = (try g.datasetInfo("W"), try g.datasetInfo("b"))
            guard wi.shape == shape && wi.type == .int8 else { throw fail("W must be int8 of shape \(shapeText(shape)), is \(wi.typeName) \(shapeText(wi.shape))") }
            guard bi.shape == [channels] && bi.type == .int32 else { throw fail("b must be int32 of shape (\(channels)), is \(bi.typeName) \(shapeText(bi.shape))") }
            let scales = try g.read("W_scale", as: Double.self).values
            guard scales.count == 1 || scales.count == channels, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw fail("W_scale must hold 1 or \(channels) positive finite scales")
            }
            let (scale, zero, qmin, qmax) = (try number(g, "input_scale"), Int(try number(g, "input_zero_point")),
                                             Int(try number(g, "input_qmin")), Int(try number(g, "input_qmax")))
            guard scale > 0 && scale.isFinite, qmin < qmax, qmin <= zero, zero <= qmax, [(-127, 127), (-128, 127), (0, 255)].contains(where: { $0 == (qmin, qmax) }) else {
                throw fail("has a bad input range (scale \(scale), zero point \(zero), codes \(qmin)...\(qmax))")
            }
            out[i] = QuantizedLayer(weights: try g.read("W", as: Int8.self).values, shape: shape, weightScales: scales,
                                    bias: try g.read("b", as: Int32.self).values, input: QuantRange(scale: scale, zeroPoint: zero, qmin: qmin, qmax: qmax))
        }
        return QuantizedModel(scheme: scheme, layers: out)
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
