import Foundation
import PrecisCore
import SwiftProtobuf

/// The ONNX operator set Precis writes (ONNX Runtime 1.14 and later run it).
public let onnxOpset: Int64 = 17

/// ONNX's element type numbers (`TensorProto.DataType`).
enum ONNXType: Int32 {
    case float = 1, uint8 = 2, int8 = 3, int32 = 6, int64 = 7, float16 = 10, double = 11
}

extension Onnx_TensorProto {
    /// An initializer `name` of `shape` holding `values` rounded to float16 when `half`, else to float32.
    init(name: String, shape: [Int], values: [Double], half: Bool) {
        self.init()
        self.name = name
        dims = shape.map(Int64.init)
        dataType = (half ? ONNXType.float16 : ONNXType.float).rawValue
        rawData =
            half
            ? values.map { Float16($0).bitPattern.littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }
            : values.map { Float($0).bitPattern.littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    /// An integer initializer (`int8`, `uint8` or `int32`) `name` of `shape` holding `codes`.
    init(name: String, shape: [Int], codes: [Int], type: ONNXType) {
        self.init()
        self.name = name
        dims = shape.map(Int64.init)
        dataType = type.rawValue
        switch type {
        case .int8: rawData = Data(codes.map { UInt8(bitPattern: Int8($0)) })
        case .uint8: rawData = Data(codes.map { UInt8($0) })
        default: rawData = codes.map { Int32($0).littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }
        }
    }
}

extension Onnx_AttributeProto {
    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        .with {
            $0.name = name
            $0.type = .ints
            $0.ints = values.map(Int64.init)
        }
    }

    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        .with {
            $0.name = name
            $0.type = .int
            $0.i = Int64(value)
        }
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        .with {
            $0.name = name
            $0.type = .float
            $0.f = value
        }
    }
}

/// A float32 tensor value of `shape`, the first axis named `batch` when `shape[0]` is nil.
func valueInfo(_ name: String, batch: String, _ shape: [Int]) -> Onnx_ValueInfoProto {
    .with {
        $0.name = name
        $0.type.tensorType.elemType = ONNXType.float.rawValue
        $0.type.tensorType.shape.dim =
            [.with { $0.dimParam = batch }] + shape.map { d in .with { $0.dimValue = Int64(d) } }
    }
}

/// What an exported ONNX model computes in.
public enum ONNXForm {
    /// float32 throughout.
    case float32
    /// float16 weights and arithmetic, with a Cast from float32 at the input and back at the output.
    case float16
    /// A stored int8 model as QuantizeLinear/DequantizeLinear pairs: each quantized layer's input
    /// quantized with its calibrated range, its weight codes and their per-tensor or per-channel
    /// scales, its int32 bias codes at `input scale × weight scale`; the other layers in float32. A
    /// batch normalization the model folds has no node: the layer before it holds it. A merge reads
    /// an input that a quantized layer also reads through that layer's range, as
    /// `QuantizedModel.mergeInputRanges` says.
    case int8(QuantizedModel)
}

/// What an exported model says about itself, for a program that runs it without Precis: its
/// `doc_string` and `metadata_props` (data set, input layout and scaling, class names).
public struct ONNXDescription {
    public var dataset: String, precision: String, classNames: [String]?

    public init(dataset: String, precision: String, classNames: [String]?) {
        (self.dataset, self.precision, self.classNames) = (dataset, precision, classNames)
    }

    /// `metadata_props` of the model of `spec`.
    func properties(_ spec: ModelSpec) -> [(String, String)] {
        let classes = (0..<spec.classes).map { c in classNames.map { c < $0.count ? "\(c) \($0[c])" : "\(c)" } ?? "\(c)"
        }
        return [
            ("dataset", dataset), ("precision", precision), ("layers", spec.layerText),
            ("input", "input (N, \(spec.inputShape.map(String.init).joined(separator: ", "))) float32"),
            ("input_scaling", "pixel / 255, so values in [0, 1]"),
            ("output", "logits (N, \(spec.classes)) float32, before softmax; the predicted class is the largest"),
            ("classes", classes.joined(separator: ", ")),
        ]
    }
}

/// The network `spec` with `tensors` in `form` as a serialized ONNX model (see `onnxModel`), its
/// `doc_string` and `metadata_props` from `description`.
public func exportONNX(
    spec: ModelSpec, tensors: [String: Tensor<Double>], form: ONNXForm = .float32, producer: String,
    description: ONNXDescription? = nil
) throws -> Data {
    var model = try onnxModel(spec: spec, tensors: tensors, form: form, producer: producer)
    if let description {
        let properties = description.properties(spec)
        model.docString =
            "\(spec.name) (\(spec.layerText)) in \(description.precision), trained on \(description.dataset). "
            + properties.dropFirst(3).map { "\($0): \($1)." }.joined(separator: " ")
        model.metadataProps = properties.map { key, value in .with { ($0.key, $0.value) = (key, value) } }
    }
    return try model.serializedBytes()
}

/// The network `spec` with `tensors` in `form` as an ONNX model: input `input` `(N, C, H, W)` and
/// output `logits` `(N, classes)` in float32, one node per layer named after it, initializers named
/// by tensor key (`00_conv1/W`). Dropout runs as Precis runs it at inference, a `Mul` by
/// `1 - ratio`; an affine layer after a 4-D output gets a `Flatten` before its `Gemm`.
func onnxModel(
    spec: ModelSpec, tensors: [String: Tensor<Double>], form: ONNXForm = .float32, producer: String
) throws -> Onnx_ModelProto {
    var graph = Onnx_GraphProto()
    graph.name = spec.name
    let half: Bool, int8: QuantizedModel?
    switch form {
    case .float32: (half, int8) = (false, nil)
    case .float16: (half, int8) = (true, nil)
    case .int8(let model): (half, int8) = (false, model)
    }
    func constant(_ name: String, _ shape: [Int], _ values: [Double]) {
        graph.initializer.append(Onnx_TensorProto(name: name, shape: shape, values: values, half: half))
    }
    func node(_ op: String, _ name: String, _ inputs: [String], _ out: String, _ attributes: [Onnx_AttributeProto] = [])
    {
        graph.node.append(
            .with {
                $0.name = name
                $0.opType = op
                $0.input = inputs
                $0.output = [out]
                $0.attribute = attributes
            })
    }
    var values = [-1: "input"]
    if half {
        node("Cast", "input/half", ["input"], "input/half", [.int("to", Int(ONNXType.float16.rawValue))])
        values[-1] = "input/half"
    }
    let layers = try spec.geometry(), folded = int8?.folded ?? [], tensors = try spec.folding(folded, in: tensors)
    // The quantized layer whose input codes each merge input is read as, by merge and source.
    let first = int8?.firstReaders(spec) ?? [:]
    let codesOf: [Int: [Int: Int]] =
        int8?.mergeInputRanges(spec).mapValues { inputs in
            Dictionary(uniqueKeysWithValues: inputs.keys.map { ($0, first[$0]!) })
        } ?? [:]
    for layer in layers {
        var from = spec.inputs(of: layer.index).map { values[$0]! }
        for (k, s) in spec.inputs(of: layer.index).enumerated() {
            guard let reader = codesOf[layer.index]?[s] else { continue }
            // Read as the codes the quantized layer `reader` reads: through its range.
            let names = [layers[reader].name + "/x_scale", layers[reader].name + "/x_zero"]
            let q = layer.name + "/x\(k)_q", dq = layer.name + "/x\(k)_dq"
            node("QuantizeLinear", q, [from[k]] + names, q)
            node("DequantizeLinear", dq, [q] + names, dq)
            from[k] = dq
        }
        var x = from[0]
        if folded.contains(layer.index) {
            // Folded into the layer before it, whose weights and bias hold it.
            values[layer.index] = x
            continue
        }
        let last = layer.index == layers.count - 1
        let out = last && !half ? "logits" : layer.name
        var keys = layer.tensors.map { layer.key($0.name) }
        let quantized = int8?.layers[layer.index]
        for (t, key) in zip(layer.tensors, keys) where quantized == nil {
            guard let value = tensors[key] else { throw ModelError.badSpec("no values for \(key)") }
            // An input normalization's statistics broadcast over `(N, C, H, W)` as `(C, 1, 1)`.
            constant(key, layer.spec == .inputNormalization ? t.shape + [1, 1] : t.shape, value.data)
        }
        if let q = quantized {
            // The input through its int8 range; the weights and bias from their codes. One weight
            // scale is a scalar; one per channel runs along the channel axis.
            let r = q.input, unsigned = r.qmin == 0, perChannel = q.weightScales.count > 1
            let scaleShape = perChannel ? [q.weightScales.count] : []
            let codes = unsigned ? ONNXType.uint8 : ONNXType.int8
            graph.initializer += [
                Onnx_TensorProto(name: layer.name + "/x_scale", shape: [], values: [r.scale], half: false),
                Onnx_TensorProto(name: layer.name + "/x_zero", shape: [], codes: [r.zeroPoint], type: codes),
                Onnx_TensorProto(
                    name: layer.name + "/W_q", shape: q.shape, codes: q.weights.map(Int.init), type: .int8),
                Onnx_TensorProto(name: layer.name + "/W_scale", shape: scaleShape, values: q.weightScales, half: false),
                Onnx_TensorProto(
                    name: layer.name + "/W_zero", shape: scaleShape, codes: q.weightScales.map { _ in 0 }, type: .int8),
                Onnx_TensorProto(
                    name: layer.name + "/b_q", shape: [q.channels], codes: q.bias.map(Int.init), type: .int32),
                Onnx_TensorProto(
                    name: layer.name + "/b_scale", shape: [q.channels],
                    values: (0..<q.channels).map { r.scale * q.weightScales[q.weightScales.count == 1 ? 0 : $0] },
                    half: false),
                Onnx_TensorProto(
                    name: layer.name + "/b_zero", shape: [q.channels], codes: Array(repeating: 0, count: q.channels),
                    type: .int32),
            ]
            let axis: [Onnx_AttributeProto] = perChannel ? [.int("axis", q.channelAxis)] : []
            let names = [layer.name + "/x_scale", layer.name + "/x_zero"]
            node("QuantizeLinear", layer.name + "/x_q", [x] + names, layer.name + "/x_q")
            node("DequantizeLinear", layer.name + "/x_dq", [layer.name + "/x_q"] + names, layer.name + "/x_dq")
            node(
                "DequantizeLinear", layer.name + "/W",
                [layer.name + "/W_q", layer.name + "/W_scale", layer.name + "/W_zero"],
                layer.name + "/W", axis)
            node(
                "DequantizeLinear", layer.name + "/b",
                [layer.name + "/b_q", layer.name + "/b_scale", layer.name + "/b_zero"],
                layer.name + "/b", [.int("axis", 0)])
            (x, keys) = (layer.name + "/x_dq", [layer.name + "/W", layer.name + "/b"])
        }
        let window = { (size: Int, stride: Int, pad: Int) -> [Onnx_AttributeProto] in
            [
                .ints("kernel_shape", [size, size]), .ints("strides", [stride, stride]),
                .ints("pads", [pad, pad, pad, pad]),
            ]
        }
        switch layer.spec {
        case .convolution(let c):
            node(
                "Conv", layer.name, [x] + keys, out,
                [.ints("kernel_shape", c.kernel), .ints("strides", c.strides), .ints("pads", c.pads)]
                    + (c.dilations == [1, 1] ? [] : [.ints("dilations", c.dilations)])
                    + (c.groups == 1 ? [] : [.int("group", c.groups)]))
        case .relu:
            node("Relu", layer.name, [x], out)
        case let .maxPooling(size, stride, pad):
            node("MaxPool", layer.name, [x], out, window(size, stride, pad))
        case let .averagePooling(size, stride, pad):
            node("AveragePool", layer.name, [x], out, window(size, stride, pad) + [.int("count_include_pad", 1)])
        case .affine:
            if layer.inputShape.count > 1 {
                node("Flatten", layer.name + "/flat", [x], layer.name + "/flat", [.int("axis", 1)])
                x = layer.name + "/flat"
            }
            node("Gemm", layer.name, [x] + keys, out)
        case .dropout(let ratio):
            constant(layer.name + "/keep", [], [1 - ratio])
            node("Mul", layer.name, [x, layer.name + "/keep"], out)
        case .batchNormalization:
            node("BatchNormalization", layer.name, [x] + keys, out, [.float("epsilon", 1e-5)])
        case .inputNormalization:
            node("Sub", layer.name + "/centred", [x, keys[0]], layer.name + "/centred")
            node("Div", layer.name, [layer.name + "/centred", keys[1]], out)
        case .activation(.clip(let lo, let hi)):
            constant(layer.name + "/min", [], [lo])
            constant(layer.name + "/max", [], [hi])
            node("Clip", layer.name, [x, layer.name + "/min", layer.name + "/max"], out)
        case .activation(.leakyReLU(let alpha)):
            node("LeakyRelu", layer.name, [x], out, [.float("alpha", Float(alpha))])
        case .activation(.sigmoid):
            node("Sigmoid", layer.name, [x], out)
        case .activation(.hardSigmoid(let alpha, let beta)):
            node("HardSigmoid", layer.name, [x], out, [.float("alpha", Float(alpha)), .float("beta", Float(beta))])
        case .activation(.hardSwish):
            node("HardSwish", layer.name, [x], out)
        case .globalAveragePooling:
            node("GlobalAveragePool", layer.name, [x], out)
        case .merge(.add):
            node(from.count == 2 ? "Add" : "Sum", layer.name, from, out)
        case .merge(.concat):
            node("Concat", layer.name, from, out, [.int("axis", 1)])
        case .merge(.multiply):
            node("Mul", layer.name, from, out)
        }
        values[layer.index] = out
    }
    if half {
        node("Cast", "logits", [values[layers.count - 1]!], "logits", [.int("to", Int(ONNXType.float.rawValue))])
    }
    graph.input = [valueInfo("input", batch: "N", spec.inputShape)]
    graph.output = [valueInfo("logits", batch: "N", [spec.classes])]
    return .with {
        $0.irVersion = 8
        $0.producerName = producer
        $0.opsetImport = [.with { $0.version = onnxOpset }]
        $0.graph = graph
    }
}
