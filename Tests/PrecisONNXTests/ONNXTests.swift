import Foundation
import PrecisCore
import Testing

@testable import PrecisONNX

/// ONNX export and import: a round trip keeps every layer and every float32 bit, the forms other
/// tools write (transposed Gemm weights, MatMul + Add, Constant nodes, a final Softmax) read the
/// same, and damaged or unsupported models are refused with the node's name.
@Suite struct ONNXTests {
    /// A small network of `layers` (by default one of every layer kind of the book's chains),
    /// random float32-exact weights.
    func network(
        _ layers: String =
            "conv(4,3,stride=2,pad=1) batchnorm relu maxpool(2,pad=1) conv(3,2) avgpool(2,stride=1,pad=1) affine(5) "
            + "relu dropout(0.25) affine(3)"
    ) throws -> (ModelSpec, [String: Tensor<Double>]) {
        let spec = try ModelSpec.named(layers, inputShape: [2, 9, 9])
        var rng = RandomSource(seed: 7)
        var tensors: [String: Tensor<Double>] = [:]
        for layer in try spec.geometry() {
            for t in layer.tensors {
                let n = t.shape.reduce(1, *)
                // Variances positive; every value a float32, as a weight file holds them.
                let shift = t.name == "running_var" || t.name == "std" ? 0.5 : -0.5
                let values = (0..<n).map { _ in Double(Float(rng.uniform() + shift)) }
                tensors[layer.key(t.name)] = Tensor(shape: t.shape, data: values)
            }
        }
        return (spec, tensors)
    }

    func imported(_ model: Onnx_ModelProto) throws -> ImportedNetwork {
        try importONNX(try model.serializedBytes(), file: "m.onnx")
    }

    @Test func aRoundTripKeepsEveryLayerAndEveryBit() throws {
        let (spec, tensors) = try network()
        let back = try importONNX(try exportONNX(spec: spec, tensors: tensors, producer: "test"), file: "m.onnx")
        #expect(back.spec.layers == spec.layers && back.spec.inputShape == spec.inputShape)
        #expect(back.tensors == tensors)
        #expect(back.producer == "test" && back.notes.isEmpty)
    }

    /// Every activation function and global average pooling, with arguments float32 holds exactly.
    @Test func activationsAndGlobalPoolingRoundTrip() throws {
        let (spec, tensors) = try network(
            "conv(4,3,pad=1) hardswish conv(6,1) relu6 leakyrelu(0.25) gap affine(5) sigmoid hardsigmoid(0.25,0.5) "
                + "clip(-1,2) affine(3)")
        let model = try onnxModel(spec: spec, tensors: tensors, producer: "test")
        #expect(
            model.graph.node.map(\.opType) == [
                "Conv", "HardSwish", "Conv", "Clip", "LeakyRelu", "GlobalAveragePool", "Flatten", "Gemm", "Sigmoid",
                "HardSigmoid", "Clip", "Gemm",
            ])
        let back = try imported(model)
        #expect(back.spec.layers == spec.layers && back.tensors == tensors && back.notes.isEmpty)
    }

    /// A graph: residual sums (of two values, and of three as `Sum`), a concatenation, a broadcast
    /// product and convolutions of every geometry (depthwise, rectangular, dilated, unequal strides,
    /// padding on each side) export as ONNX's operators and read back to the same graph and bits.
    @Test func graphsRoundTrip() throws {
        let (spec, tensors) = try network(
            "normalize conv(4,3,pad=1) relu :a conv(4,3,pad=1,groups=4) add(a) :b @a conv(2,1x3,pad=0x2,dilation=2) "
                + ":c concat(b,c) :d gap conv(6,1) sigmoid mul(d) :e add(e,d,e) relu conv(3,3,stride=2x1,pad=0x0x1x1) "
                + "affine(3)")
        let model = try onnxModel(spec: spec, tensors: tensors, producer: "test")
        #expect(
            model.graph.node.map(\.opType) == [
                "Sub", "Div", "Conv", "Relu", "Conv", "Add", "Conv", "Concat", "GlobalAveragePool", "Conv", "Sigmoid",
                "Mul", "Sum",
                "Relu", "Conv", "Flatten", "Gemm",
            ])
        let back = try imported(model)
        #expect(back.spec.layers == spec.layers && back.spec.wiring == spec.wiring && back.tensors == tensors)
    }

    /// An input normalization as other tools write it: the input less a mean of shape (1, C, 1, 1),
    /// divided by one deviation for every channel; without the division, a deviation of 1. A `Sub`
    /// anywhere else is refused.
    @Test func normalizationsOfOtherToolsRead() throws {
        let (spec, tensors) = try network("normalize conv(4,3) relu affine(3)")
        var model = try onnxModel(spec: spec, tensors: tensors, producer: "pytorch")
        let mean = model.graph.initializer.firstIndex { $0.name == "00_normalize1/mean" }!
        let std = model.graph.initializer.firstIndex { $0.name == "00_normalize1/std" }!
        model.graph.initializer[mean].dims = [1, 2, 1, 1]
        model.graph.initializer[std] = Onnx_TensorProto(
            name: "00_normalize1/std", shape: [], values: [0.5], half: false)
        let back = try imported(model)
        #expect(back.spec.layers == spec.layers && back.tensors["00_normalize1/mean"] == tensors["00_normalize1/mean"])
        #expect(back.tensors["00_normalize1/std"]!.data == [0.5, 0.5])
        model.graph.node.remove(at: 1)
        model.graph.node[1].input[0] = "00_normalize1/centred"
        #expect(try imported(model).tensors["00_normalize1/std"]!.data == [1, 1])
        model.graph.node[0].input[0] = "00_conv1"
        #expect(problem(model)?.contains("(Sub)") == true, "\(problem(model) ?? "")")
    }

    /// In the int8 QDQ export, a residual sum reads its skip input through the range of the
    /// convolution that also reads it, as the integer path adds that convolution's input codes; an
    /// input no quantized layer reads goes in as it is.
    @Test func int8MergesReadTheCodesOfTheirQuantizedInputs() throws {
        let (spec, tensors) = try network(
            "conv(4,3,pad=1) relu :a conv(4,3,pad=1) :c add(a) relu conv(4,3,pad=1) add(c) gap affine(3)")
        let inputs = Dictionary(
            uniqueKeysWithValues: quantizedLayers(spec).map { ($0, QuantRange.symmetric(threshold: Double($0 + 1))) })
        let model = try QuantizedModel(
            spec: spec, tensors: tensors, scheme: QuantScheme.all[0], inputs: inputs)
        let graph = try onnxModel(spec: spec, tensors: tensors, form: .int8(model), producer: "test").graph
        let nodes = Dictionary(uniqueKeysWithValues: graph.node.map { ($0.output[0], $0) })
        let add = graph.node.first { $0.name == spec.layerNames[3] }!
        let skip = nodes[add.input[1]]!, quantize = nodes[skip.input[0]]!
        #expect(add.input[0] == spec.layerNames[2] && skip.opType == "DequantizeLinear")
        #expect(quantize.opType == "QuantizeLinear" && quantize.input[0] == spec.layerNames[1])
        #expect(Array(skip.input.dropFirst()) == [spec.layerNames[2] + "/x_scale", spec.layerNames[2] + "/x_zero"])
        // The second convolution's output feeds no quantized layer: the second sum reads it in float.
        #expect(graph.node.first { $0.name == spec.layerNames[6] }!.input == [spec.layerNames[5], spec.layerNames[2]])
    }

    @Test func otherToolsFormsReadTheSame() throws {
        let (spec, tensors) = try network()
        var model = try onnxModel(spec: spec, tensors: tensors, producer: "pytorch")
        var g = model.graph
        // The last Gemm as PyTorch writes it: weights (out, in) with transB = 1, from a Constant node.
        let gemm = g.node.lastIndex { $0.opType == "Gemm" }!, key = g.node[gemm].input[1]
        let w = tensors[key]!
        let stored = g.initializer.firstIndex { $0.name == key }!
        g.initializer.remove(at: stored)
        g.node.insert(
            .with {
                $0.name = "weights"
                $0.opType = "Constant"
                $0.output = [key]
                $0.attribute = [
                    .with {
                        $0.name = "value"
                        $0.type = .tensor
                        $0.t = Onnx_TensorProto(name: key, shape: [3, 5], values: transposed(w).data, half: false)
                    }
                ]
            }, at: 0)
        g.node[gemm + 1].attribute = [.int("transB", 1)]
        // A trailing Softmax, which the import drops.
        g.node.append(
            .with {
                $0.name = "probabilities"
                $0.opType = "Softmax"
                $0.input = ["logits"]
                $0.output = ["p"]
            })
        g.output[0].name = "p"
        model.graph = g
        let back = try imported(model)
        #expect(back.spec.layers == spec.layers && back.tensors == tensors)
        #expect(back.notes.count == 1 && back.notes[0].contains("Softmax"), "\(back.notes)")
    }

    /// The problem `importONNX` reports for `model`, or nil when it reads.
    func problem(_ model: Onnx_ModelProto) -> String? {
        do { _ = try imported(model) } catch let e as DataError { return e.problem } catch { return "\(error)" }
        return nil
    }

    @Test func damagedAndUnsupportedModelsAreRefusedByName() throws {
        let (spec, tensors) = try network()
        let model = try onnxModel(spec: spec, tensors: tensors, producer: "test")
        let bytes: Data = try model.serializedBytes()
        for cut in [1, 10, bytes.count / 3, bytes.count - 7] {
            #expect(throws: DataError.self, "cut at \(cut)") { try importONNX(bytes.prefix(cut), file: "m.onnx") }
        }
        var missing = model
        missing.graph.initializer.removeAll { $0.name == "00_conv1/W" }
        #expect(problem(missing) == "node 00_conv1 (Conv): input 00_conv1/W is not an initializer or a constant")
        var wrong = model
        let w = wrong.graph.initializer.firstIndex { $0.name == "04_conv2/W" }!
        wrong.graph.initializer[w] = Onnx_TensorProto(
            name: "04_conv2/W", shape: [3, 3, 2, 2], values: Array(repeating: 0, count: 36), half: false)
        #expect(problem(wrong) == "node 04_conv2 (Conv): W has shape (3,3,2,2), the layer needs (3,4,2,2)")
        var unknown = model
        unknown.graph.node[3].opType = "Tanh"
        #expect(problem(unknown) == "node 03_maxpool1 (Tanh) is not supported")
        var attribute = model
        attribute.graph.node[0].attribute.append(.int("group", 2))
        #expect(problem(attribute) == "node 00_conv1 (Conv): W has shape (4,2,3,3), the layer needs (4,1,3,3)")
        var extra = model
        extra.graph.node[0].attribute.append(.int("frobnicate", 1))
        #expect(problem(extra) == "node 00_conv1 (Conv): attribute frobnicate is not supported")
        var branch = model
        branch.graph.node[2].input = ["input"]
        #expect(
            problem(branch)
                == "node 01_batchnorm1 (BatchNormalization): its output is used by no later layer and is not "
                + "the output")
        // Every node that cannot be imported is named, one line each, and the chain goes on after it.
        var several = model
        several.graph.node[2].opType = "Tanh"
        several.graph.node[3].opType = "Erf"
        #expect(
            throws: DataError(
                file: "m.onnx", problem: "2 nodes cannot be imported:",
                details: ["node 02_relu1 (Tanh) is not supported", "node 03_maxpool1 (Erf) is not supported"])
        ) { try imported(several) }
    }

    @Test func anotherBatchNormEpsilonIsFoldedIntoTheVariance() throws {
        let (spec, tensors) = try network()
        var model = try onnxModel(spec: spec, tensors: tensors, producer: "keras")
        let bn = model.graph.node.firstIndex { $0.opType == "BatchNormalization" }!
        model.graph.node[bn].attribute = [.float("epsilon", 1e-3)]
        let back = try imported(model)
        let shift = Double(Float(1e-3)) - 1e-5
        let variance = tensors["01_batchnorm1/running_var"]!.data
        #expect(back.tensors["01_batchnorm1/running_var"]!.data == variance.map { $0 + shift })
        let note = "epsilon 0.001 folded into the running variance (Precis adds 1e-5)"
        #expect(back.notes == ["node 01_batchnorm1 (BatchNormalization): " + note])
    }
}
