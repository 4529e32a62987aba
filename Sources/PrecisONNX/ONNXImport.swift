import Foundation
import PrecisCore
import SwiftProtobuf

/// Reads an ONNX model whose nodes are layers Precis runs: Conv (any groups, kernel, strides, pads
/// and dilations), Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, MaxPool, AveragePool,
/// GlobalAveragePool (or ReduceMean over H and W), Gemm, MatMul followed by Add, Flatten or
/// Reshape to 2-D before them, BatchNormalization, Dropout and Identity (skipped at inference), a
/// `Mul` by a constant in (0, 1] (Precis's own inference-time dropout), and a final Softmax
/// (dropped: Precis reports logits);
/// and the merges of a graph: Add or Sum of computed values, Concat along channels, Mul of two;
/// the input less a constant per channel (`Sub`), then maybe divided by one (`Div`): an input normalization.
/// Weights come from initializers or Constant nodes, as float32, float64 or float16. Anything else
/// is refused with the node's name and operator: every such node, one line each, in one error.
/// `file` names the model in errors.
public func importONNX(_ data: Data, file: String) throws -> ImportedNetwork {
    func fail(_ problem: String) -> DataError { DataError(file: file, problem: problem) }
    let model: Onnx_ModelProto
    do { model = try Onnx_ModelProto(serializedBytes: data) } catch {
        throw fail("is not a readable ONNX model (the protobuf does not parse: \(error))")
    }
    guard model.hasGraph, !model.graph.node.isEmpty else { throw fail("is not an ONNX model (it has no graph)") }
    let graph = model.graph
    var constants: [String: Onnx_TensorProto] = [:]
    for t in graph.initializer { constants[t.name] = t }
    for n in graph.node where n.opType == "Constant" {
        guard let value = n.attribute.first(where: { $0.name == "value" }), value.hasT, n.output.count == 1 else {
            throw fail("node \(n.name) (Constant) holds no tensor value")
        }
        constants[n.output[0]] = value.t
    }
    func values(_ name: String, of n: Onnx_NodeProto) throws -> Tensor<Double> {
        guard let t = constants[name] else {
            throw fail("node \(n.name) (\(n.opType)): input \(name) is not an initializer or a constant")
        }
        return try tensor(t, file: file, node: n)
    }
    guard let input = graph.input.first(where: { constants[$0.name] == nil }) else {
        throw fail("the graph has no input")
    }
    let dims = input.type.tensorType.shape.dim
    guard dims.count == 4, dims.dropFirst().allSatisfy({ $0.dimValue > 0 && $0.dimValue <= 4096 }) else {
        throw fail("input \(input.name) must be (N, C, H, W) with known C, H and W")
    }
    let channels = Int(dims[1].dimValue)
    var layers: [ImportedLayer] = []
    var notes: [String] = []
    // The layer that computes each value by name (-1: the input); a node Precis skips passes its
    // input's layer on.
    var producers = [input.name: -1]
    /// The output of an input less its mean, which a division by a deviation may follow.
    var centred: String?
    var pendingMatMul: (node: Onnx_NodeProto, w: Tensor<Double>, from: Int)?
    func source(_ name: String, of n: Onnx_NodeProto) throws -> Int {
        guard let j = producers[name] else {
            throw fail("node \(n.name) (\(n.opType)): input \(name) is computed by no node Precis imports")
        }
        return j
    }
    func append(_ layer: LayerSpec, _ tensors: [String: Tensor<Double>], _ n: Onnx_NodeProto, from: [Int]) {
        layers.append(ImportedLayer(layer, tensors, inputs: from, label: "node \(n.name) (\(n.opType))"))
        producers[n.output[0]] = layers.count - 1
    }
    func flushMatMul() {
        guard let (n, w, from) = pendingMatMul else { return }
        append(.affine(units: w.shape.last ?? 0), ["W": w, "b": Tensor(zeros: [w.shape.last ?? 0])], n, from: [from])
        pendingMatMul = nil
    }
    let outputName = graph.output.first?.name ?? ""
    /// Adds node `n` (the `k`th) to `layers`, or throws what keeps it out.
    func importNode(_ k: Int, _ n: Onnx_NodeProto) throws {
        let what = "node \(n.name) (\(n.opType))"
        guard n.domain.isEmpty || n.domain == "ai.onnx" else {
            throw fail("\(what): operator domain \(n.domain) is not supported")
        }
        guard let first = n.input.first, n.output.count >= 1 else { throw fail("\(what) has no input or output") }
        var a = Attributes(n, file: file)
        // Inputs that are values computed in the graph, not constants.
        let computed = n.input.filter { !$0.isEmpty && constants[$0] == nil }
        let biasAdd = n.opType == "Add" && computed.count == 1 && pendingMatMul?.node.output.first == computed[0]
        if !biasAdd { flushMatMul() }
        func add(_ layer: LayerSpec, _ tensors: [String: Tensor<Double>] = [:]) throws {
            append(layer, tensors, n, from: [try source(first, of: n)])
        }
        /// The `channels` values of constant `name`, one per channel or one for all.
        func perChannel(_ name: String, _ operation: String) throws -> Tensor<Double> {
            let t = try values(name, of: n)
            guard t.count == channels || t.count == 1 else {
                throw fail("\(what): only \(operation) one value or one per channel (\(channels)) is supported")
            }
            return Tensor(shape: [channels], data: t.count == 1 ? Array(repeating: t.data[0], count: channels) : t.data)
        }
        func merge(_ kind: MergeKind) throws {
            guard computed.count == n.input.count, computed.count >= 2 else {
                throw fail("\(what): only \(kind.rawValue) of computed values (not of constants) is supported")
            }
            append(.merge(kind), [:], n, from: try computed.map { try source($0, of: n) })
        }
        switch n.opType {
        case "Conv":
            let w = try values(n.input[1], of: n)
            guard w.shape.count == 4 else {
                throw fail("\(what): weight \(n.input[1]) must be 4-D, has \(shapeText(w.shape))")
            }
            let b =
                n.input.count > 2 && !n.input[2].isEmpty ? try values(n.input[2], of: n) : Tensor(zeros: [w.shape[0]])
            let groups = try a.int("group", 1)
            guard groups >= 1, w.shape[0] % groups == 0 else {
                throw fail("\(what): group \(groups) does not divide the \(w.shape[0]) filters")
            }
            try add(
                .convolution(try a.convolution(filters: w.shape[0], kernel: Array(w.shape.suffix(2)), groups: groups)),
                ["W": w, "b": b])
        case "Relu":
            try add(.relu)
        case "Clip":
            // Bounds are inputs since opset 11 (attributes before); a missing one is unbounded.
            func bound(_ i: Int, _ attribute: String) throws -> Double? {
                if n.input.count > i && !n.input[i].isEmpty {
                    let v = try values(n.input[i], of: n)
                    guard v.count == 1 else { throw fail("\(what): \(n.input[i]) must be one value") }
                    return v.data[0]
                }
                return try a.optionalFloat(attribute).map(Double.init)
            }
            switch (try bound(1, "min"), try bound(2, "max")) {
            case (0?, nil): try add(.relu)
            case let (lo?, hi?) where lo < hi && lo.isFinite && hi.isFinite:
                try add(.activation(.clip(min: lo, max: hi)))
            default: throw fail("\(what): only finite bounds min < max, or min 0 alone, are supported")
            }
        case "LeakyRelu":
            try add(.activation(.leakyReLU(alpha: Double(try a.float("alpha", 0.01)))))
        case "Sigmoid":
            try add(.activation(.sigmoid))
        case "HardSigmoid":
            let (alpha, beta) = (try a.float("alpha", 0.2), try a.float("beta", 0.5))
            try add(.activation(.hardSigmoid(alpha: Double(alpha), beta: Double(beta))))
        case "HardSwish":
            try add(.activation(.hardSwish))
        case "GlobalAveragePool":
            try add(.globalAveragePooling)
        case "ReduceMean":
            // The mean over H and W, as PyTorch's dynamo exporter writes adaptive average pooling to 1×1
            // (axes an input since opset 18, an attribute before; keepdims 0 leaves (N, C), which
            // Precis keeps as (N, C, 1, 1): only layers that flatten may follow either).
            let axes =
                n.input.count > 1 && !n.input[1].isEmpty
                ? try values(n.input[1], of: n).data.map { Int($0) } : try a.ints("axes")
            _ = try a.int("keepdims", 1)
            guard try a.int("noop_with_empty_axes", 0) == 0, let axes, Set(axes.map { ($0 + 4) % 4 }) == [2, 3] else {
                throw fail("\(what): only the mean over the last two axes (global average pooling) is supported")
            }
            try add(.globalAveragePooling)
        case "MaxPool", "AveragePool":
            guard n.output.count == 1 else { throw fail("\(what): the indices output is not supported") }
            guard try a.int("ceil_mode", 0) == 0 else { throw fail("\(what): ceil_mode 1 is not supported") }
            _ = try a.int("storage_order", 0)
            let (size, stride, pad) = try a.window()
            if n.opType == "MaxPool" {
                try add(.maxPooling(size: size, stride: stride, pad: pad))
            } else {
                guard try a.int("count_include_pad", 0) == 1 || pad == 0 else {
                    throw fail("\(what): count_include_pad 0 with padding is not supported (Precis counts padding)")
                }
                try add(.averagePooling(size: size, stride: stride, pad: pad))
            }
        case "Flatten":
            guard try a.int("axis", 1) == 1 else { throw fail("\(what): only axis 1 is supported") }
            producers[n.output[0]] = try source(first, of: n)
        case "Reshape":
            let shape = try values(n.input[1], of: n).data
            _ = try a.int("allowzero", 0)
            // A model exported with a fixed batch names it (1 for `torch.onnx.export` of one image).
            let batch = dims[0].dimValue > 0 ? Double(dims[0].dimValue) : -1
            guard shape.count == 2, [0, -1, batch].contains(shape[0]) || shape[1] == -1 else {
                throw fail("\(what): only a reshape to (N, features) is supported")
            }
            producers[n.output[0]] = try source(first, of: n)
        case "Gemm":
            guard try a.float("alpha", 1) == 1, try a.float("beta", 1) == 1, try a.int("transA", 0) == 0 else {
                throw fail("\(what): only alpha 1, beta 1 and transA 0 are supported")
            }
            var w = try values(n.input[1], of: n)
            guard w.shape.count == 2 else { throw fail("\(what): weight \(n.input[1]) must be 2-D") }
            if try a.int("transB", 0) == 1 { w = transposed(w) }
            var b =
                n.input.count > 2 && !n.input[2].isEmpty ? try values(n.input[2], of: n) : Tensor(zeros: [w.shape[1]])
            guard b.count == w.shape[1] else {
                throw fail("\(what): bias \(n.input[2]) must hold \(w.shape[1]) values")
            }
            b = Tensor(shape: [w.shape[1]], data: b.data)
            try add(.affine(units: w.shape[1]), ["W": w, "b": b])
        case "MatMul":
            let w = try values(n.input[1], of: n)
            guard w.shape.count == 2 else { throw fail("\(what): weight \(n.input[1]) must be 2-D") }
            pendingMatMul = (n, w, try source(first, of: n))
        case "Add" where biasAdd:
            let (m, w, from) = pendingMatMul!
            let b = try values(n.input.first { $0 != computed[0] } ?? "", of: n)
            guard b.count == w.shape[1] else {
                throw fail("\(what): the bias must hold \(w.shape[1]) values")
            }
            append(
                .affine(units: w.shape[1]), ["W": w, "b": Tensor(shape: [w.shape[1]], data: b.data)], m, from: [from])
            producers[n.output[0]] = layers.count - 1
            pendingMatMul = nil
        case "Add", "Sum":
            try merge(.add)
        case "Concat":
            guard try a.int("axis", 1) == 1 else { throw fail("\(what): only concatenation along channels (axis 1)") }
            try merge(.concat)
        case "Mul" where computed.count == 2:
            try merge(.multiply)
        case "BatchNormalization":
            guard n.input.count == 5, n.output.count == 1, try a.int("training_mode", 0) == 0 else {
                throw fail("\(what): only inference with scale, bias, mean and variance is supported")
            }
            // ONNX stores epsilon as a float: 1e-5 arrives as the float nearest to it.
            let epsilon = try a.float("epsilon", 1e-5)
            _ = try a.float("momentum", 0.9)
            var t: [String: Tensor<Double>] = [:]
            for (i, key) in ["gamma", "beta", "running_mean", "running_var"].enumerated() {
                let v = try values(n.input[i + 1], of: n)
                t[key] = Tensor(shape: [v.count], data: v.data)
            }
            if epsilon != Float(1e-5) {
                // Precis's batch normalization adds 1e-5: the variance takes the difference.
                t["running_var"] = Tensor(
                    shape: t["running_var"]!.shape, data: t["running_var"]!.data.map { $0 + Double(epsilon) - 1e-5 })
                notes.append("\(what): epsilon \(epsilon) folded into the running variance (Precis adds 1e-5)")
            }
            try add(.batchNormalization, t)
        case "Sub" where computed == [first] && n.input.count == 2 && producers[first] == -1:
            // The input less a mean per channel, maybe divided by a deviation next: an input normalization.
            let ones = Tensor<Double>(shape: [channels], data: Array(repeating: 1, count: channels))
            try add(.inputNormalization, ["mean": try perChannel(n.input[1], "the input less"), "std": ones])
            let readers = graph.node.filter { $0.input.contains(n.output[0]) }.count
            centred = readers == 1 ? n.output[0] : nil
        case "Div" where computed == [first] && n.input.count == 2 && first == centred:
            layers[layers.count - 1].tensors["std"] = try perChannel(n.input[1], "a division by")
            producers[n.output[0]] = layers.count - 1
            centred = nil
        case "Mul":
            let c = try values(n.input[1], of: n)
            guard c.count == 1, c.data[0] > 0, c.data[0] <= 1 else {
                throw fail(
                    "\(what): only a multiplication by one constant in (0, 1] (inference-time dropout) is supported")
            }
            try add(.dropout(ratio: 1 - c.data[0]))
        case "Dropout", "Identity":
            _ = try a.float("ratio", 0.5)
            _ = try a.int("seed", 0)
            notes.append("\(what) skipped: it is the identity at inference")
            producers[n.output[0]] = try source(first, of: n)
        case "Softmax" where k == graph.node.count - 1:
            _ = try a.int("axis", -1)
            notes.append("\(what) at the end dropped: Precis reports logits, and the argmax is the same")
            producers[n.output[0]] = try source(first, of: n)
        default:
            throw fail("\(what) is not supported")
        }
        try a.checkAllUsed()
    }
    // Every node is tried: a node that cannot be imported is noted, and its output taken as its
    // first input's, so that the nodes after it are tried too.
    var problems: [String] = []
    for (k, n) in graph.node.enumerated() where n.opType != "Constant" {
        do {
            try importNode(k, n)
        } catch let e as DataError where e.file == file {
            problems.append(e.problem)
            if let out = n.output.first, producers[out] == nil {
                producers[out] = n.input.lazy.compactMap { producers[$0] }.first ?? -1
            }
        }
    }
    if problems.count == 1 { throw fail(problems[0]) }
    if problems.count > 1 {
        throw DataError(file: file, problem: "\(problems.count) nodes cannot be imported:", details: problems)
    }
    flushMatMul()
    guard graph.output.count == 1, !layers.isEmpty, producers[outputName] == layers.count - 1 else {
        throw fail("the graph's one output \(outputName) is not the value of its last layer")
    }
    let producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
    return try ImportedNetwork(
        name: "onnx", inputShape: dims.dropFirst().map { Int($0.dimValue) }, layers: layers,
        producer: producer.isEmpty ? "unknown" : producer, notes: notes, file: file)
}

/// A 2-D tensor transposed.
func transposed(_ w: Tensor<Double>) -> Tensor<Double> {
    let (r, c) = (w.shape[0], w.shape[1])
    return Tensor(shape: [c, r], data: (0..<(r * c)).map { w.data[($0 % r) * c + $0 / r] })
}

/// The bytes of a tensor stored outside the model (PyTorch's exporter writes them so): in the file
/// its `location` names, in the model's folder, from `offset` for `length` bytes.
func externalData(_ t: Onnx_TensorProto, file: String, what: String) throws -> [UInt8] {
    let entries = Dictionary(t.externalData.map { ($0.key, $0.value) }) { a, _ in a }
    guard let location = entries["location"], !location.hasPrefix("/"), !location.split(separator: "/").contains("..")
    else { throw DataError(file: file, problem: "\(what) names no external file inside the model's folder") }
    let path = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(location).path
    guard let data = FileManager.default.contents(atPath: path) else {
        throw DataError(file: file, problem: "\(what) is stored in \(location), which cannot be read")
    }
    let offset = Int(entries["offset"] ?? "0") ?? -1, length = entries["length"].map { Int($0) ?? -1 }
    guard offset >= 0, offset <= data.count, (length ?? 0) >= 0, offset + (length ?? data.count - offset) <= data.count
    else {
        throw DataError(file: file, problem: "\(what) lies outside \(location) (\(data.count) bytes)")
    }
    return [UInt8](data[offset..<(offset + (length ?? data.count - offset))])
}

/// The values of an ONNX tensor (float32, float64, float16, int64 or int32), from its raw data (in
/// the model or in an external file) or its typed fields.
func tensor(_ t: Onnx_TensorProto, file: String, node n: Onnx_NodeProto) throws -> Tensor<Double> {
    let what = "node \(n.name) (\(n.opType)): tensor \(t.name)"
    let shape = t.dims.map { Int($0) }
    guard shape.allSatisfy({ $0 >= 0 && $0 < Int(Int32.max) }) else {
        throw DataError(file: file, problem: "\(what) has a bad shape")
    }
    let count = shape.reduce(1, *)
    let raw = t.dataLocation == .external ? try externalData(t, file: file, what: what) : [UInt8](t.rawData)
    /// The raw data as `count` little-endian values of `R`, each converted.
    func fromRaw<R: FixedWidthInteger>(_: R.Type, _ convert: (R) -> Double) throws -> [Double] {
        let size = MemoryLayout<R>.size
        guard raw.count == count * size else {
            throw DataError(
                file: file,
                problem: "\(what) holds \(raw.count) bytes, its shape \(shapeText(shape)) needs \(count * size)")
        }
        return raw.withUnsafeBytes { b in
            (0..<count).map { convert(R(littleEndian: b.loadUnaligned(fromByteOffset: $0 * size, as: R.self))) }
        }
    }
    /// Typed values when the raw data is empty and there is one per element.
    func typed<E>(_ values: [E]) -> [E]? { raw.isEmpty && values.count == count ? values : nil }
    let values: [Double]
    switch ONNXType(rawValue: t.dataType) {
    case .float?:
        values = try typed(t.floatData)?.map(Double.init) ?? fromRaw(UInt32.self) { Double(Float(bitPattern: $0)) }
    case .double?:
        values = try typed(t.doubleData) ?? fromRaw(UInt64.self) { Double(bitPattern: $0) }
    case .float16?:
        values =
            try typed(t.int32Data)?.map { Double(Float16(bitPattern: UInt16(truncatingIfNeeded: $0))) }
            ?? fromRaw(UInt16.self) { Double(Float16(bitPattern: $0)) }
    case .int64?:
        values = try typed(t.int64Data)?.map(Double.init) ?? fromRaw(Int64.self) { Double($0) }
    case .int32?:
        values = try typed(t.int32Data)?.map(Double.init) ?? fromRaw(Int32.self) { Double($0) }
    default:
        throw DataError(file: file, problem: "\(what) has element type \(t.dataType), which is not supported")
    }
    return Tensor(shape: shape, data: values)
}

/// A node's attributes, read by name with defaults; `checkAllUsed` refuses any the import did not
/// read, so an unknown attribute is never silently ignored.
struct Attributes {
    let node: Onnx_NodeProto, file: String
    private var used: Set<String> = []

    init(_ node: Onnx_NodeProto, file: String) { (self.node, self.file) = (node, file) }

    private func fail(_ problem: String) -> DataError {
        DataError(file: file, problem: "node \(node.name) (\(node.opType)): \(problem)")
    }

    private mutating func find(_ name: String) -> Onnx_AttributeProto? {
        used.insert(name)
        return node.attribute.first { $0.name == name }
    }

    mutating func int(_ name: String, _ fallback: Int) throws -> Int {
        guard let a = find(name) else { return fallback }
        guard a.type == .int else { throw fail("attribute \(name) must be an integer") }
        return Int(a.i)
    }

    mutating func float(_ name: String, _ fallback: Float) throws -> Float {
        guard let a = find(name) else { return fallback }
        guard a.type == .float else { throw fail("attribute \(name) must be a float") }
        return a.f
    }

    /// The float attribute `name`, or nil when the node has none.
    mutating func optionalFloat(_ name: String) throws -> Float? {
        try find(name) == nil ? nil : float(name, 0)
    }

    mutating func ints(_ name: String) throws -> [Int]? {
        guard let a = find(name) else { return nil }
        guard a.type == .ints else { throw fail("attribute \(name) must be a list of integers") }
        return a.ints.map { Int($0) }
    }

    /// A square window with one stride and one padding on every side: `(size, stride, pad)`.
    /// `kernel` is the weight's spatial shape, which `kernel_shape` must match when given.
    /// A Conv node's geometry: kernel, strides, pads (top, left, bottom, right) and dilations.
    mutating func convolution(filters: Int, kernel: [Int], groups: Int) throws -> ConvolutionSpec {
        let shape = try ints("kernel_shape") ?? kernel
        guard shape == kernel, kernel.allSatisfy({ $0 > 0 }) else {
            throw fail("kernel_shape \(shape) is not the weights' \(kernel)")
        }
        let strides = try ints("strides") ?? [1, 1], pads = try ints("pads") ?? [0, 0, 0, 0]
        let dilations = try ints("dilations") ?? [1, 1]
        guard strides.count == 2, strides.allSatisfy({ $0 > 0 }), dilations.count == 2, dilations.allSatisfy({ $0 > 0 })
        else {
            throw fail("only 2-D strides and dilations of at least 1 are supported")
        }
        guard pads.count == 4, pads.allSatisfy({ $0 >= 0 }) else {
            throw fail("only 2-D pads of at least 0 are supported")
        }
        if let a = find("auto_pad"), !["NOTSET", "VALID"].contains(String(decoding: a.s, as: UTF8.self)) {
            throw fail("auto_pad \(String(decoding: a.s, as: UTF8.self)) is not supported (explicit pads are)")
        }
        return ConvolutionSpec(
            filters: filters, kernel: kernel, strides: strides, pads: [pads[0], pads[1], pads[2], pads[3]],
            dilations: dilations, groups: groups)
    }

    /// A pooling node's window: square, one stride, the same padding on every side.
    mutating func window() throws -> (Int, Int, Int) {
        let shape = try ints("kernel_shape") ?? []
        guard shape.count == 2, shape[0] == shape[1], shape[0] > 0 else {
            throw fail("only square 2-D kernels are supported (kernel \(shape))")
        }
        let strides = try ints("strides") ?? [1, 1], pads = try ints("pads") ?? [0, 0, 0, 0]
        guard strides.count == 2, strides[0] == strides[1], strides[0] > 0 else {
            throw fail("only equal strides are supported (strides \(strides))")
        }
        guard pads.count == 4, Set(pads).count == 1, pads[0] >= 0 else {
            throw fail("only the same padding on every side is supported (pads \(pads))")
        }
        guard (try ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }) else {
            throw fail("dilations are not supported")
        }
        if let a = find("auto_pad"), !["NOTSET", "VALID"].contains(String(decoding: a.s, as: UTF8.self)) {
            throw fail("auto_pad \(String(decoding: a.s, as: UTF8.self)) is not supported")
        }
        return (shape[0], strides[0], pads[0])
    }

    /// Refuses an attribute the import did not read.
    func checkAllUsed() throws {
        if let extra = node.attribute.first(where: { !used.contains($0.name) }) {
            throw fail("attribute \(extra.name) is not supported")
        }
    }
}
