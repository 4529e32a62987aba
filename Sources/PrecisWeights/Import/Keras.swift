import Foundation
import PrecisCore

/// Reads a Keras model, Sequential or functional, saved as a `.keras` archive (`model.save("x.keras")`:
/// `config.json` and `model.weights.h5` in a zip) or in the legacy HDF5 format (`model.save("x.h5")`:
/// the `model_config` JSON on `/`, the weights under `/model_weights/<layer>/`).
///
/// Layers read: Conv2D and DepthwiseConv2D (any kernel, strides, dilation, groups and depth multiplier;
/// `valid` padding, or `same`, padded as Keras pads it: the odd pixel at the bottom and right),
/// MaxPooling2D and AveragePooling2D (square, `valid`, or `same` where it pads nothing), Flatten,
/// Dense, Dropout (skipped: the identity at inference), BatchNormalization, ReLU, LeakyReLU,
/// Activation, GlobalAveragePooling2D, Add, Concatenate (channels) and Multiply, with the activations
/// `relu`, `relu6`, `leaky_relu`, `sigmoid`, `hard_sigmoid`, `hard_silu` and a final `softmax`
/// (dropped: Precis reports logits). Keras is channels-last by default: convolution kernels
/// `(KH, KW, C, F)` become `(F, C, KH, KW)`, and the rows of a Dense layer after a Flatten are reordered
/// from `(H, W, C)` to `(C, H, W)`, the order Precis flattens in. Every layer that cannot be read is
/// named, one line each.
public func importKeras(_ path: String) throws -> ImportedNetwork {
    let file = try KerasFile(path)
    defer { file.close() }
    var graph = KerasGraph(file: file)
    return try graph.network()
}

/// A Keras model's description and a way to read each layer's weights.
struct KerasFile {
    let path: String
    let config: [String: Any]
    let producer: String
    /// The HDF5 file of the weights (a temporary copy for a `.keras` archive).
    let weightsFile: HDF5File
    let temporary: URL?
    /// Whether the weights are stored as `.keras` archives store them (`layers/<name>/vars/<i>`).
    let archived: Bool

    init(_ path: String) throws {
        func fail(_ problem: String) -> DataError { DataError(file: path, problem: problem) }
        self.path = path
        guard let handle = FileHandle(forReadingAtPath: path) else { throw fail("no such file, or it cannot be read") }
        let magic = [UInt8](handle.readData(ofLength: 4))
        try? handle.close()
        var text: String, producer = "Keras"
        if magic == [0x50, 0x4B, 3, 4] {
            guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot be read") }
            let entries = Dictionary(try ZipArchive.entries(Array(data), file: path)) { a, _ in a }
            guard let config = entries["config.json"], let weights = entries["model.weights.h5"] else {
                throw fail("is a zip archive without config.json and model.weights.h5 (not a .keras model)")
            }
            text = String(decoding: config, as: UTF8.self)
            if let meta = entries["metadata.json"],
                let m = try? JSONSerialization.jsonObject(with: Data(meta)) as? [String: Any],
                let v = m["keras_version"] as? String
            {
                producer += " \(v)"
            }
            let copy = FileManager.default.temporaryDirectory.appendingPathComponent("precis-\(UUID().uuidString).h5")
            guard FileManager.default.createFile(atPath: copy.path, contents: Data(weights)) else {
                throw fail("model.weights.h5 could not be copied to \(copy.deletingLastPathComponent().path)")
            }
            do { weightsFile = try HDF5File.open(copy.path) } catch let e as HDF5Error {
                try? FileManager.default.removeItem(at: copy)
                throw fail("model.weights.h5: \(e.message)")
            }
            (temporary, archived) = (copy, true)
        } else {
            weightsFile = try HDF5File.open(path)
            guard case .string(let t)? = try weightsFile.root.attribute("model_config") else {
                throw fail("is neither a .keras archive nor a Keras HDF5 model (no model_config attribute on /)")
            }
            text = t
            if case .string(let v)? = try weightsFile.root.attribute("keras_version") { producer += " \(v)" }
            if case .string(let b)? = try weightsFile.root.attribute("backend") { producer += " (\(b) backend)" }
            (temporary, archived) = (nil, false)
        }
        guard let config = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw fail("its model configuration is not JSON")
        }
        (self.config, self.producer) = (config, producer)
    }

    func close() {
        if let temporary { try? FileManager.default.removeItem(at: temporary) }
    }

    /// The weights of layer `name` by Keras's names: from a `.keras` archive's numbered `vars` in the order
    /// `names` gives (the order the layer creates them) under the layer's `stored` name, from an HDF5 model
    /// by their dataset names.
    func weights(_ name: String, stored: String, _ names: [String], label: String) throws -> [String: Tensor<Double>] {
        func fail(_ problem: String) -> DataError { DataError(file: path, problem: "\(label): \(problem)") }
        do {
            var out: [String: Tensor<Double>] = [:]
            if archived {
                let place = "layers/\(stored)/vars"
                guard weightsFile.root.contains("layers"), try weightsFile.root.group("layers").contains(stored) else {
                    throw fail("no weights under \(place)")
                }
                let vars = try weightsFile.root.group(place)
                let stored = try vars.datasetPaths().sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
                guard stored == names.indices.map(String.init) else {
                    throw fail("\(place) holds \(stored.count) weights, the layer has \(names.count)")
                }
                for (i, n) in names.enumerated() { out[n] = try tensor(vars, "\(i)", label) }
            } else {
                let root = try weightsFile.root.group("model_weights")
                guard root.contains(name) else { throw fail("no weights under /model_weights/\(name)") }
                let g = try root.group(name)
                for p in try g.datasetPaths() {
                    let last = p.split(separator: "/").last.map { String($0.split(separator: ":")[0]) } ?? p
                    out[last == "depthwise_kernel" ? "kernel" : last] = try tensor(g, p, label)
                }
            }
            return out
        } catch let e as HDF5Error {
            throw fail(e.message)
        }
    }

    private func tensor(_ g: HDF5Group, _ p: String, _ label: String) throws -> Tensor<Double> {
        let info = try g.datasetInfo(p)
        switch info.type {
        case .float32: return Tensor(shape: info.shape, data: try g.read(p, as: Float.self).values.map(Double.init))
        case .float64: return Tensor(shape: info.shape, data: try g.read(p, as: Double.self).values)
        default: throw DataError(file: path, problem: "\(label): weight \(p) has element type \(info.typeName)")
        }
    }
}

/// A Keras tensor as Precis computes it: the layer that produces it (-1: the input) and, after a
/// Flatten of an image, the image's shape `(C, H, W)`.
struct KerasValue {
    var layer: Int
    var flattened: [Int]?
    /// Zeros a ZeroPadding2D put around the image, top, left, bottom, right: the convolution that
    /// reads it takes them as its own padding.
    var padding: [Int]?
    /// Whether a layer it depends on could not be imported (so its shape is unknown).
    var failed = false
}

/// The Precis layers of a Keras model, built layer by layer.
struct KerasGraph {
    let file: KerasFile
    var layers: [ImportedLayer] = []
    var notes: [String] = []
    var inputShape: [Int]?
    var channelsLast = true
    /// Where a `.keras` archive keeps each layer's weights: its class in snake case, numbered from the
    /// second of its class on (`conv2d`, `conv2d_1`, ...), in the model's order, whatever the layer's name.
    var stored: [String: String] = [:]

    init(file: KerasFile) { self.file = file }

    /// The Keras layer classes read.
    static let kinds: Set = [
        "InputLayer", "Conv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dense", "Dropout",
        "ReLU", "LeakyReLU", "GlobalAveragePooling2D", "Activation", "BatchNormalization", "Add", "Concatenate",
        "Multiply", "ZeroPadding2D",
    ]

    func fail(_ problem: String) -> DataError { DataError(file: file.path, problem: problem) }

    mutating func network() throws -> ImportedNetwork {
        guard let modelClass = file.config["class_name"] as? String, let body = file.config["config"] as? [String: Any],
            let entries = body["layers"] as? [[String: Any]]
        else { throw fail("its configuration is not a Keras model description") }
        guard ["Sequential", "Functional", "Model"].contains(modelClass) else {
            throw fail("a \(modelClass) model: only Sequential and functional models are read")
        }
        let sequential = modelClass == "Sequential"
        channelsLast = !entries.contains {
            ($0["config"] as? [String: Any])?["data_format"] as? String == "channels_first"
        }
        var values: [String: KerasValue] = [:], problems: [String] = [], previous: KerasValue?
        var seen: [String: Int] = [:]
        for (k, entry) in entries.enumerated() {
            let kind = entry["class_name"] as? String ?? "?", c = entry["config"] as? [String: Any] ?? [:]
            let snake = Self.snakeCase(kind), n = seen[snake, default: 0]
            seen[snake] = n + 1
            stored[c["name"] as? String ?? entry["name"] as? String ?? "layer \(k)"] = n == 0 ? snake : "\(snake)_\(n)"
        }
        var last = ""
        for (k, entry) in entries.enumerated() {
            let kind = entry["class_name"] as? String ?? "?", c = entry["config"] as? [String: Any] ?? [:]
            let name = c["name"] as? String ?? entry["name"] as? String ?? "layer \(k)"
            let label = "layer \(name) (\(kind))"
            var inputs: [KerasValue] = []
            do {
                if sequential {
                    inputs = kind == "InputLayer" ? [] : [previous ?? KerasValue(layer: -1)]
                } else {
                    inputs = try inbound(entry, label).map { source in
                        guard let v = values[source] else {
                            throw fail("\(label) reads \(source), not a layer before it")
                        }
                        return v
                    }
                }
                if inputs.contains(where: \.failed) {
                    // After a layer that failed, shapes are unknown: only the kind is checked.
                    guard Self.kinds.contains(kind) else { throw fail("\(label) is not supported") }
                    values[name] = KerasValue(layer: -1, failed: true)
                } else {
                    values[name] = try add(
                        kind, name: name, config: c, inputs: inputs, label: label, final: k == entries.count - 1)
                }
            } catch let e as DataError where e.file == file.path {
                problems.append(e.problem)
                values[name] = KerasValue(layer: -1, failed: true)
            }
            (previous, last) = (values[name], name)
        }
        if problems.count == 1 { throw fail(problems[0]) }
        if problems.count > 1 {
            throw DataError(file: file.path, problem: "\(problems.count) layers cannot be imported:", details: problems)
        }
        let outputs = sequential ? [last] : references(body["output_layers"])
        guard outputs.count == 1, let out = values[outputs[0]], !layers.isEmpty, out.layer == layers.count - 1 else {
            throw fail("the model must have one output, computed by its last layer (outputs: \(outputs))")
        }
        guard let inputShape else { throw fail("the model has no InputLayer with the input's shape") }
        return try ImportedNetwork(
            name: "keras", inputShape: inputShape, layers: layers, producer: file.producer, notes: notes,
            file: file.path)
    }

    /// Keras's snake case of a class name: `BatchNormalization` is `batch_normalization`, `ReLU` `re_lu`.
    static func snakeCase(_ name: String) -> String {
        let c = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
        var out = ""
        for (i, ch) in c.enumerated() {
            // An underscore before an upper-case letter that starts a lower-case word, or follows a lower-case one.
            let startsWord = i > 0 && ch.isUppercase && i + 1 < c.count && c[i + 1].isLowercase
            if i > 0 && ch.isUppercase && (startsWord || c[i - 1].isLowercase) { out += "_" }
            out.append(ch)
        }
        return out.lowercased()
    }

    /// The weights of Keras layer `name`, by Keras's names.
    func weights(_ name: String, _ names: [String], label: String) throws -> [String: Tensor<Double>] {
        try file.weights(name, stored: stored[name] ?? name, names, label: label)
    }

    /// The names of the layers a functional model's layer reads: Keras 3's `keras_history` of each
    /// tensor in the call's arguments, or Keras 2's `[name, node, tensor, kwargs]` lists.
    func inbound(_ entry: [String: Any], _ label: String) throws -> [String] {
        let nodes = entry["inbound_nodes"] as? [Any] ?? []
        guard nodes.count <= 1 else {
            throw fail("\(label) is called \(nodes.count) times: a layer shared between calls is not supported")
        }
        guard let node = nodes.first else { return [] }
        if let call = node as? [String: Any] {
            var names: [String] = []
            func walk(_ x: Any) {
                if let d = x as? [String: Any] {
                    if let h = (d["config"] as? [String: Any])?["keras_history"] as? [Any], let n = h.first as? String {
                        names.append(n)
                    } else {
                        d.values.forEach(walk)
                    }
                } else if let a = x as? [Any] {
                    a.forEach(walk)
                }
            }
            walk(call["args"] ?? [])
            return names
        }
        return references(node)
    }

    /// Layer names from `[name, node, tensor]` triples, one or a list of them.
    func references(_ x: Any?) -> [String] {
        guard let list = x as? [Any] else { return [] }
        if let name = list.first as? String { return [name] }
        return list.compactMap { ($0 as? [Any])?.first as? String }
    }

    /// The output shape of layer `index` (-1: the input), `(C, H, W)` or `(features)`.
    func shape(_ index: Int, _ label: String) throws -> [Int] {
        guard let inputShape else { throw fail("\(label) comes before the input's shape is known") }
        if index < 0 { return inputShape }
        var wiring: [Int: [Int]] = [:]
        for (i, l) in layers.enumerated() { if let from = l.inputs { wiring[i] = from } }
        let spec = ModelSpec(
            name: "keras", inputShape: inputShape, layers: layers.map(\.spec), wiring: wiring, weightInit: .he)
        do { return try spec.layerShapes(partial: true)[index] } catch { throw fail("\(label): \(error)") }
    }

    /// Appends a Precis layer reading `inputs`; its value.
    mutating func append(
        _ spec: LayerSpec, _ tensors: [String: Tensor<Double>] = [:], reading inputs: [Int], label: String
    ) -> KerasValue {
        layers.append(ImportedLayer(spec, tensors, inputs: inputs == [layers.count - 1] ? nil : inputs, label: label))
        return KerasValue(layer: layers.count - 1)
    }

    /// The Precis layers of one Keras layer; the value it produces.
    mutating func add(
        _ kind: String, name: String, config c: [String: Any], inputs: [KerasValue], label: String, final: Bool
    ) throws -> KerasValue {
        /// An integer list (a null, such as an unknown batch size, as -1).
        func ints(_ key: String) -> [Int]? { (c[key] as? [Any])?.map { ($0 as? NSNumber)?.intValue ?? -1 } }
        func string(_ key: String, _ fallback: String) -> String { c[key] as? String ?? fallback }
        func bool(_ key: String) -> Bool { c[key] as? Bool ?? true }
        func image(_ shape: [Int]) -> [Int] {
            channelsLast ? [shape[3], shape[1], shape[2]] : Array(shape.dropFirst())
        }
        // Keras 2 gives the input's shape on the first layer rather than an InputLayer.
        if inputShape == nil, kind != "InputLayer", let shape = ints("batch_input_shape"), shape.count == 4 {
            inputShape = image(shape)
        }
        if kind == "InputLayer" {
            guard let shape = ints("batch_shape") ?? ints("batch_input_shape"), shape.count == 4,
                shape.dropFirst().allSatisfy({ $0 > 0 && $0 <= 4096 })
            else { throw fail("\(label): the input must be images of known size (batch, H, W, C)") }
            guard inputShape == nil else { throw fail("\(label): a second input (Precis networks have one)") }
            inputShape = image(shape)
            return KerasValue(layer: -1)
        }
        let merges = ["Add": MergeKind.add, "Concatenate": .concat, "Multiply": .multiply]
        guard merges[kind] != nil ? inputs.count >= 2 : inputs.count == 1 else {
            throw fail("\(label) reads \(inputs.count) tensors")
        }
        let x = inputs[0]
        if let merge = merges[kind] {
            guard inputs.allSatisfy({ $0.flattened == nil && $0.padding == nil }) else {
                throw fail("\(label) merges flattened or zero-padded images")
            }
            if merge == .concat {
                let axis = c["axis"] as? Int ?? -1, rank = try shape(x.layer, label).count
                guard rank == 3, (channelsLast ? [-1, 3] : [1, -3]).contains(axis) else {
                    throw fail("\(label): only a concatenation of images along their channels is supported")
                }
            }
            return append(.merge(merge), reading: inputs.map(\.layer), label: label)
        }
        guard x.flattened == nil || kind == "Dense" || kind == "Dropout" else {
            throw fail("\(label) after a Flatten is not supported")
        }
        guard x.padding == nil || ["Conv2D", "DepthwiseConv2D"].contains(kind) else {
            throw fail("\(label) reads a ZeroPadding2D: only a convolution may (it takes the zeros as its padding)")
        }
        /// The activation a layer applies after itself, as Precis layers after `v`.
        func activation(_ value: String, after v: KerasValue) throws -> KerasValue {
            let f: LayerSpec
            switch value {
            case "linear": return v
            case "relu": f = .relu
            case "relu6": f = .activation(.clip(min: 0, max: 6))
            case "leaky_relu": f = .activation(.leakyReLU(alpha: 0.2))
            case "sigmoid": f = .activation(.sigmoid)
            // Keras 3's: relu6(x + 3) / 6.
            case "hard_sigmoid": f = .activation(.hardSigmoid(alpha: 1.0 / 6, beta: 0.5))
            case "hard_silu", "hard_swish": f = .activation(.hardSwish)
            case "softmax" where final:
                notes.append("\(label): the final softmax dropped (Precis reports logits)")
                return v
            default: throw fail("\(label): activation \(value) is not supported")
            }
            return append(f, reading: [v.layer], label: label)
        }
        switch kind {
        case "Conv2D", "DepthwiseConv2D":
            let depthwise = kind == "DepthwiseConv2D"
            let w = try weights(name, ["kernel"] + (bool("use_bias") ? ["bias"] : []), label: label)
            let inShape = try shape(x.layer, label)
            guard let kernel = w["kernel"], kernel.shape.count == 4, inShape.count == 3,
                let size = ints("kernel_size"), size == Array(kernel.shape[0..<2])
            else { throw fail("\(label): needs a 4-D kernel over an image") }
            let strides = ints("strides") ?? [1, 1], dilations = ints("dilation_rate") ?? [1, 1]
            guard strides.count == 2, dilations.count == 2, (strides + dilations).allSatisfy({ $0 >= 1 }) else {
                throw fail("\(label): strides and dilation_rate must be two positive numbers")
            }
            let (kh, kw, ci, m) = (kernel.shape[0], kernel.shape[1], kernel.shape[2], kernel.shape[3])
            let filters = depthwise ? ci * m : m, groups = depthwise ? ci : c["groups"] as? Int ?? 1
            guard groups >= 1, inShape[0] == ci * (depthwise ? 1 : groups) else {
                throw fail("\(label): a kernel of \(ci) input channels for an input of \(inShape[0])")
            }
            var pads = x.padding ?? [0, 0, 0, 0]
            switch string("padding", "valid") {
            case "valid": break
            case "same":
                for axis in 0..<2 {
                    let n = inShape[axis + 1] + pads[axis] + pads[axis + 2],
                        extent = dilations[axis] * (size[axis] - 1) + 1
                    let total = max(((n + strides[axis] - 1) / strides[axis] - 1) * strides[axis] + extent - n, 0)
                    (pads[axis], pads[axis + 2]) = (pads[axis] + total / 2, pads[axis + 2] + total - total / 2)
                }
            case let p: throw fail("\(label): padding \(p) is not supported")
            }
            // (KH, KW, C, F) to (F, C, KH, KW); a depthwise (KH, KW, C, M) to (C·M, 1, KH, KW).
            let (rows, cols) = depthwise ? (1, ci * m) : (ci, m)
            let weights = Tensor(
                shape: [cols, rows, kh, kw],
                data: (0..<(cols * rows * kh * kw)).map { i in
                    let (o, rest) = (i / (rows * kh * kw), i % (rows * kh * kw))
                    let (ch, y, xx) = (rest / (kh * kw), rest % (kh * kw) / kw, rest % kw)
                    return kernel.data[((y * kw + xx) * rows + ch) * cols + o]
                })
            let spec = ConvolutionSpec(
                filters: filters, kernel: size, strides: strides, pads: pads, dilations: dilations, groups: groups)
            let conv = append(
                .convolution(spec), ["W": weights, "b": w["bias"] ?? Tensor(zeros: [filters])], reading: [x.layer],
                label: label)
            return try activation(string("activation", "linear"), after: conv)
        case "MaxPooling2D", "AveragePooling2D":
            let inShape = try shape(x.layer, label)
            guard let size = ints("pool_size"), size.count == 2, size[0] == size[1], inShape.count == 3 else {
                throw fail("\(label): only square pools over an image are supported")
            }
            let stride = ints("strides") ?? size
            guard stride.count == 2, stride[0] == stride[1] else {
                throw fail("\(label): only equal strides are supported")
            }
            // Keras's `same` pads max((ceil(n / s) - 1)·s + k - n, 0) pixels.
            let padless = inShape[1...].allSatisfy {
                (($0 + stride[0] - 1) / stride[0] - 1) * stride[0] + size[0] <= $0
            }
            guard string("padding", "valid") == "valid" || padless else {
                throw fail("\(label): padding same where it pads the image is not supported")
            }
            let spec: LayerSpec =
                kind == "MaxPooling2D"
                ? .maxPooling(size: size[0], stride: stride[0], pad: 0)
                : .averagePooling(size: size[0], stride: stride[0], pad: 0)
            return append(spec, reading: [x.layer], label: label)
        case "ZeroPadding2D":
            // ((top, bottom), (left, right)), (rows, cols) or one number.
            let raw = c["padding"], n = (raw as? NSNumber)?.intValue
            let pairs = (raw as? [Any])?.map { p in
                (p as? [Any])?.map { ($0 as? NSNumber)?.intValue ?? -1 } ?? [(p as? NSNumber)?.intValue ?? -1]
            }
            let (rows, cols) =
                n.map { ([$0, $0], [$0, $0]) }
                ?? (pairs?.count == 2
                    ? (
                        pairs![0].count == 1 ? pairs![0] + pairs![0] : pairs![0],
                        pairs![1].count == 1 ? pairs![1] + pairs![1] : pairs![1]
                    ) : ([-1], [-1]))
            guard rows.count == 2, cols.count == 2, (rows + cols).allSatisfy({ $0 >= 0 }),
                try shape(x.layer, label).count == 3
            else { throw fail("\(label): padding must be ((top, bottom), (left, right)) of an image") }
            let before = x.padding ?? [0, 0, 0, 0]
            return KerasValue(
                layer: x.layer,
                padding: [before[0] + rows[0], before[1] + cols[0], before[2] + rows[1], before[3] + cols[1]])
        case "Flatten":
            let s = try shape(x.layer, label)
            return KerasValue(layer: x.layer, flattened: s.count == 3 && channelsLast && s[1] * s[2] > 1 ? s : nil)
        case "Dense":
            let w = try weights(name, ["kernel"] + (bool("use_bias") ? ["bias"] : []), label: label)
            guard var kernel = w["kernel"], kernel.shape.count == 2 else { throw fail("\(label): no 2-D kernel") }
            let units = kernel.shape[1], s = try shape(x.layer, label)
            if let from = x.flattened {
                // Keras flattened (H, W, C); Precis flattens (C, H, W): row (c, h, w) is Keras's (h, w, c).
                let (ch, h, wd) = (from[0], from[1], from[2])
                guard kernel.shape[0] == ch * h * wd else {
                    throw fail("\(label): kernel has \(kernel.shape[0]) rows, the flattened input \(ch * h * wd)")
                }
                let source = kernel.data
                kernel.data = (0..<(ch * h * wd * units)).map { i in
                    let (row, u) = (i / units, i % units)
                    let (cc, y, xx) = (row / (h * wd), row % (h * wd) / wd, row % wd)
                    return source[((y * wd + xx) * ch + cc) * units + u]
                }
            } else if s.count == 3 && s[1] * s[2] > 1 {
                throw fail(
                    "\(label): a Dense layer on an image (each pixel on its own) is not supported; flatten first")
            }
            let dense = append(
                .affine(units: units), ["W": kernel, "b": w["bias"] ?? Tensor(zeros: [units])], reading: [x.layer],
                label: label)
            return try activation(string("activation", "linear"), after: dense)
        case "Dropout":
            notes.append("\(label) skipped: it is the identity at inference")
            return x
        case "ReLU":
            let most = c["max_value"] as? Double, slope = c["negative_slope"] as? Double ?? 0
            guard (c["threshold"] as? Double ?? 0) == 0, slope == 0 || most == nil, most.map({ $0 > 0 }) ?? true else {
                throw fail("\(label): only a ReLU with a positive max_value or a negative_slope is supported")
            }
            let layer: LayerSpec =
                if let most { .activation(.clip(min: 0, max: most)) } else if slope != 0 {
                    .activation(.leakyReLU(alpha: slope))
                } else { .relu }
            return append(layer, reading: [x.layer], label: label)
        case "LeakyReLU":
            let slope = c["negative_slope"] as? Double ?? c["alpha"] as? Double ?? 0.3
            return append(.activation(.leakyReLU(alpha: slope)), reading: [x.layer], label: label)
        case "GlobalAveragePooling2D":
            guard try shape(x.layer, label).count == 3 else { throw fail("\(label): its input is not an image") }
            return append(.globalAveragePooling, reading: [x.layer], label: label)
        case "Activation":
            return try activation(string("activation", "linear"), after: x)
        case "BatchNormalization":
            let s = try shape(x.layer, label), channels = s[0]
            let axis = c["axis"] as? Int ?? -1
            guard s.count == 1 ? [-1, 1].contains(axis) : (channelsLast ? [-1, 3] : [1]).contains(axis) else {
                throw fail("\(label): axis \(axis) is not the channel axis")
            }
            let names = (bool("scale") ? ["gamma"] : []) + (bool("center") ? ["beta"] : [])
            let t = try weights(name, names + ["moving_mean", "moving_variance"], label: label)
            guard let mean = t["moving_mean"], let variance = t["moving_variance"] else {
                throw fail("\(label): no moving mean and variance")
            }
            let epsilon = c["epsilon"] as? Double ?? 1e-3
            if epsilon != 1e-5 {
                notes.append("\(label): epsilon \(epsilon) folded into the moving variance (Precis adds 1e-5)")
            }
            let tensors = [
                "gamma": t["gamma"] ?? Tensor(shape: [channels], data: Array(repeating: 1, count: channels)),
                "beta": t["beta"] ?? Tensor(zeros: [channels]), "running_mean": mean,
                "running_var": Tensor(shape: variance.shape, data: variance.data.map { $0 + epsilon - 1e-5 }),
            ]
            return append(.batchNormalization, tensors, reading: [x.layer], label: label)
        default:
            throw fail("\(label) is not supported")
        }
    }
}
