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
    /// A float32 initializer `name` of `shape` holding `values` rounded to Float.
    init(name: String, shape: [Int], floats values: [Double]) {
        self.init()
        self.name = name
        dims = shape.map(Int64.init)
        dataType = ONNXType.float.rawValue
        rawData = values.map { Float($0) }.withUnsafeBufferPointer { Data(buffer: $0) }
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

/// The float32 network `spec` with `tensors` as a serialized ONNX model (see `onnxModel`).
public func exportONNX(spec: ModelSpec, tensors: [String: Tensor<Double>], producer: String) throws -> Data {
    try onnxModel(spec: spec, tensors: tensors, producer: producer).serializedBytes()
}

/// The float32 network `spec` with `tensors` as an ONNX model: input `input` `(N, C, H, W)`, output
/// `logits` `(N, classes)`, one node per layer named after it, initializers named by tensor key
/// (`00_conv1/W`). Dropout runs as Precis runs it at inference, a `Mul` by `1 - ratio`; an affine
/// layer after a 4-D output gets a `Flatten` before its `Gemm`.
func onnxModel(spec: ModelSpec, tensors: [String: Tensor<Double>], producer: String) throws -> Onnx_ModelProto {
    var graph = Onnx_GraphProto()
    graph.name = spec.name
    var x = "input"
    let layers = try spec.geometry()
    for layer in layers {
        let out = layer.index == layers.count - 1 ? "logits" : layer.name
        func node(_ op: String, _ inputs: [String], _ attributes: [Onnx_AttributeProto] = [], output: String? = nil) {
            graph.node.append(
                .with {
                    $0.name = output ?? layer.name
                    $0.opType = op
                    $0.input = inputs
                    $0.output = [output ?? out]
                    $0.attribute = attributes
                })
        }
        for t in layer.tensors {
            guard let value = tensors[layer.key(t.name)] else {
                throw ModelError.badSpec("no values for \(layer.key(t.name))")
            }
            graph.initializer.append(Onnx_TensorProto(name: layer.key(t.name), shape: t.shape, floats: value.data))
        }
        let keys = layer.tensors.map { layer.key($0.name) }
        switch layer.spec {
        case let .convolution(_, size, stride, pad):
            node(
                "Conv", [x] + keys,
                [
                    .ints("kernel_shape", [size, size]), .ints("strides", [stride, stride]),
                    .ints("pads", [pad, pad, pad, pad]),
                ])
        case .relu:
            node("Relu", [x])
        case let .maxPooling(size, stride, pad):
            node(
                "MaxPool", [x],
                [
                    .ints("kernel_shape", [size, size]), .ints("strides", [stride, stride]),
                    .ints("pads", [pad, pad, pad, pad]),
                ])
        case let .averagePooling(size, stride, pad):
            node(
                "AveragePool", [x],
                [
                    .ints("kernel_shape", [size, size]), .ints("strides", [stride, stride]),
                    .ints("pads", [pad, pad, pad, pad]), .int("count_include_pad", 1),
                ])
        case .affine:
            if layer.inputShape.count > 1 {
                node("Flatten", [x], [.int("axis", 1)], output: layer.name + "/flat")
                x = layer.name + "/flat"
            }
            node("Gemm", [x] + keys)
        case .dropout(let ratio):
            let keep = layer.name + "/keep"
            graph.initializer.append(Onnx_TensorProto(name: keep, shape: [], floats: [1 - ratio]))
            node("Mul", [x, keep])
        case .batchNormalization:
            node("BatchNormalization", [x] + keys, [.float("epsilon", 1e-5)])
        }
        x = out
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
