import Foundation
import Testing

@testable import PrecisCore

@Suite struct ModelTests {
    @Test func bookModelsHaveTheBookShapes() throws {
        #expect(
            try ModelSpec.simpleConvNet.shapes().map { $0 } == [
                [30, 24, 24], [30, 24, 24], [30, 12, 12], [100], [100], [10],
            ])
        let deep = try ModelSpec.deepConvNet.shapes()
        #expect(deep[7] == [32, 16, 16] && deep[14] == [64, 4, 4] && deep.last == [10])
        let net = try Network<Float>(spec: .deepConvNet, seed: 0)
        #expect(net.parameters.map(\.name).first == "00_conv1/W")
        #expect(net.parameters.first { $0.name == "15_affine1/W" }?.parameter.value.shape == [1024, 50])
    }

    /// Inference runs convolution, ReLU and max pooling chunk by chunk; every value must be the one
    /// the layers give one at a time, in every scalar type and storage format: rows narrower and
    /// wider than a vector, odd sizes (the last row and column are not pooled), other pools, NaN
    /// inputs (NaN wherever the layers give NaN), and whole blocks of 16 filters (Float convolves
    /// those directly in inference, the layers one at a time through the GEMM).
    @Test(arguments: [
        (
            "conv(6,3,pad=1) relu maxpool(2) conv(8,3,pad=1) relu conv(8,3,stride=2) relu maxpool(2,stride=1,pad=1) "
                + "affine(10)", [1, 12, 12]
        ),
        ("conv(5,3,pad=1) relu maxpool(2) conv(4,3) relu maxpool(2) affine(10)", [2, 41, 37]),
        (
            "conv(16,3,pad=1) relu maxpool(2) conv(32,3,pad=2) relu maxpool(2) conv(16,3,pad=1) relu affine(10)",
            [3, 30, 27]
        ),
        ("conv(32,5,pad=2) relu conv(16,1) relu maxpool(2) affine(10)", [2, 17, 33]),
    ])
    func fusedInferenceChangesNoValue(layers: String, input: [Int]) throws {
        let spec = try ModelSpec.named(layers, inputShape: input)
        var rng = RandomSource(seed: 21)
        var x = Tensor<Double>(shape: [7] + input, data: (0..<(7 * input.reduce(1, *))).map { _ in rng.normal() })
        for i in stride(from: 5, to: x.count / 7, by: 97) { x.data[i] = .nan }
        // Values that differ (NaN equals NaN), or -1 for different sizes.
        func differing<T: NetworkScalar>(_ a: Tensor<T>, _ b: Tensor<T>) -> Int {
            a.count != b.count ? -1 : zip(a.data, b.data).filter { $0 != $1 && !($0.isNaN && $1.isNaN) }.count
        }
        func check<T: NetworkScalar>(_ net: Network<T>, _ what: String) {
            let xt = x.converted(to: T.self)
            let layered = net.forwardAll(xt)
            #expect(layered.last!.data.contains { $0.isNaN } && layered.last!.data.contains { !$0.isNaN })
            #expect(differing(net.predict(xt), layered.last!) == 0, "\(what)")
            #expect(differing(net.forward(xt, layers: 0..<3), layered[3]) == 0, "\(what): conv, ReLU, pool")
        }
        let tensors = try Network<Double>(spec: spec, seed: 5).tensorValues()
        check(try Network<Double>(spec: spec, parameters: tensors), "float64")
        check(try Network<Float16>(spec: spec, parameters: tensors), "float16")
        for storage in StorageFormat.allCases {
            check(try Network<Float>(spec: spec, parameters: tensors, storage: storage), "float32 \(storage)")
        }
    }

    /// A training step runs each convolution with the ReLU after it as one step (the ReLU on each
    /// chunk of outputs, its mask on each chunk of gradients); the loss, every parameter gradient
    /// and the input gradient are those of the layers run one at a time, in every scalar type.
    @Test(arguments: [
        ("conv(6,3,pad=1) relu maxpool(2) conv(32,3,pad=1) relu conv(8,3,stride=2) relu affine(10)", [1, 12, 12]),
        ("conv(32,3,pad=1) relu conv(16,1) relu maxpool(2) affine(10)", [2, 7, 7]),
    ])
    func fusedTrainingChangesNoGradient(layers: String, input: [Int]) throws {
        let spec = try ModelSpec.named(layers, inputShape: input)
        var rng = RandomSource(seed: 22)
        let x = Tensor<Double>(shape: [5] + input, data: (0..<(5 * input.reduce(1, *))).map { _ in rng.normal() })
        let t = [1, 4, 9, 0, 4]
        func check<T: NetworkScalar>(_: T.Type) throws {
            let tensors = try Network<Double>(spec: spec, seed: 6).tensorValues()
            let fused = try Network<T>(spec: spec, parameters: tensors),
                layered = try Network<T>(
                    spec: spec, parameters: tensors)
            let xt = x.converted(to: T.self)
            let (loss, dx) = fused.gradient(xt, t)
            var y = xt
            for layer in layered.layers { y = layer.forward(y, isTraining: true) }
            let layeredLoss = layered.lossLayer.forward(y, t)
            var d = layered.lossLayer.backward()
            for layer in layered.layers.reversed() { d = layer.backward(d) }
            #expect(loss == layeredLoss && dx.data == d.data, "\(T.self): loss or input gradient")
            for (a, b) in zip(fused.parameters, layered.parameters) {
                #expect(a.parameter.grad.data == b.parameter.grad.data, "\(T.self) \(a.name)")
            }
            #expect(fused.parameters.allSatisfy { p in p.parameter.grad.data.contains { $0 != 0 } })
        }
        try check(Double.self)
        try check(Float.self)
        try check(Float16.self)
    }

    @Test func heInitHasTheBookScale() throws {
        let net = try Network<Double>(spec: .deepConvNet, seed: 3)
        let w = net.parameters.first { $0.name == "15_affine1/W" }!.parameter.value.data
        let std = (w.map { $0 * $0 }.reduce(0, +) / Double(w.count)).squareRoot()
        #expect(abs(std - (2.0 / 1024).squareRoot()) < 0.002)
    }

    @Test func textSyntaxRoundTrips() throws {
        let text =
            "conv(6,5,pad=2) relu maxpool(2) conv(16,5) relu maxpool(2) affine(120) relu affine(84) relu dropout(0.25) "
            + "affine(10)"
        let spec = try ModelSpec.named(text)
        #expect(spec.layers.count == 12)
        #expect(try LayerSpec.parseList(spec.layerText) == spec.layers)
        #expect(try LayerSpec.parseList(ModelSpec.deepConvNet.layerText) == ModelSpec.deepConvNet.layers)
        #expect(spec.layerNames[3] == "03_conv2")
    }

    /// Graphs: names and `@` wire the layers, merges list their inputs, the text of a graph reads
    /// back to the same graph, and every way of wiring it wrong is refused with the layer's name.
    @Test func graphsAreWrittenWithNamesAndChecked() throws {
        let spec = try ModelSpec.named(
            "conv(4,3,pad=1) relu :x conv(4,3,pad=1) add(x) :y @x conv(2,1) :z concat(y,z) gap conv(4,1) "
                + "hardsigmoid mul(00_conv1) affine(10)", inputShape: [1, 6, 6])
        #expect(spec.wiring == [3: [2, 1], 4: [1], 5: [3, 4], 9: [8, 0]])
        #expect(spec.inputs(of: 2) == [1] && !spec.isChain && ModelSpec.deepConvNet.isChain)
        #expect(try spec.shapes()[5] == [6, 6, 6] && spec.shapes()[9] == [4, 6, 6])
        #expect(spec.layerNames[3] == "03_add1" && spec.layerNames[9] == "09_mul1")
        let back = try LayerSpec.parseGraph(spec.layerText)
        #expect(back.layers == spec.layers && back.wiring == spec.wiring)
        #expect(throws: ModelError.badSpec("'@input' follows another '@'")) {
            try LayerSpec.parseGraph("@input @input conv(4,3) affine(10)")
        }
        #expect(throws: ModelError.badSpec("'add(q)': no layer is named 'q' before it")) {
            try LayerSpec.parseGraph("conv(4,3) add(q) affine(10)")
        }
        #expect(throws: ModelError.badSpec("':x': the name is taken")) {
            try LayerSpec.parseGraph("conv(4,3) :x relu :x affine(10)")
        }
        #expect(throws: ModelError.badSpec("'conv(4,3) @input affine(10)': a chain of layers is needed here")) {
            _ = try LayerSpec.parseList("conv(4,3) @input affine(10)")
        }
        let bad: [(String, String)] = [
            ("conv(4,3) :a conv(4,3) add(a) affine(10)", "02_add1: add cannot broadcast (4,4,4) and (4,6,6)"),
            ("conv(4,3) :a conv(5,3,pad=1) add(a) affine(10)", "02_add1: add cannot broadcast (5,6,6) and (4,6,6)"),
            ("conv(4,3) :a maxpool(2) concat(a) affine(10)", "02_concat1: concat needs inputs equal but for channels"),
            ("conv(4,3) :a relu :b relu :c mul(a,b,c) affine(10)", "03_mul1: mul takes two inputs, got 3"),
            ("conv(4,3) :a relu @a affine(10)", "01_relu1's output is not used by any later layer"),
            ("conv(4,3) gap :a affine(4) add(a) affine(10)", "03_add1: inputs of different ranks"),
        ]
        for (text, message) in bad {
            #expect(throws: ModelError.self) { try ModelSpec.named(text, inputShape: [1, 8, 8]) }
            do { _ = try ModelSpec.named(text, inputShape: [1, 8, 8]) } catch {
                #expect("\(error)".hasPrefix(message), "\(text): \(error)")
            }
        }
    }

    /// The presets: ResNet-20 has He et al.'s 19 3×3 convolutions, 2 projections, 9 residual sums and
    /// 0.27M weights; the MobileNetV2 has 9 inverted residual blocks, one depthwise convolution
    /// each, residual sums where the stride is 1 and the channels match, resolutions 28, 14, 7, 4.
    @Test func presetsHaveTheirArchitectures() throws {
        let resnet = try ModelSpec.named("resnet20"), mobile = try ModelSpec.named("mobilenetv2")
        func convs(_ spec: ModelSpec) -> [ConvolutionSpec] {
            spec.layers.compactMap { if case .convolution(let c) = $0 { c } else { nil } }
        }
        func count(_ spec: ModelSpec, _ layer: LayerSpec) -> Int { spec.layers.filter { $0 == layer }.count }
        #expect(
            convs(resnet).filter { $0.kernel == [3, 3] }.count == 19
                && convs(resnet).filter { $0.kernel == [1, 1] }.count == 2)
        #expect(count(resnet, .merge(.add)) == 9 && count(resnet, .batchNormalization) == 21)
        #expect(
            try resnet.parameterCount() == 274_538 && resnet.shapes().suffix(3) == [[64, 7, 7], [64, 1, 1], [10]])
        #expect(try ModelSpec.named(resnet.layerText).wiring == resnet.wiring)
        let depthwise = convs(mobile).filter { $0.groups > 1 }
        #expect(depthwise.count == 9 && depthwise.allSatisfy { $0.groups == $0.filters })
        #expect(count(mobile, .merge(.add)) == 5 && count(mobile, .activation(.clip(min: 0, max: 6))) == 19)
        let sides = Set(try mobile.shapes().filter { $0.count == 3 }.map { $0[1] })
        #expect(try sides == [28, 14, 7, 4, 1] && mobile.parameterCount() == 243_402)
    }

    /// Convolutions beyond the book's: the text forms of sizes, strides, pads and dilations read
    /// back from text and JSON; a plain one keeps the book's form; groups must divide the channels.
    @Test func generalConvolutionsAreWrittenAndChecked() throws {
        let spec = try ModelSpec.named(
            "conv(6,3,pad=1) conv(6,3,stride=2,pad=1,groups=6) conv(4,1x3,pad=0x1) conv(4,3,stride=2x1,pad=0x0x1x1,"
                + "dilation=2) affine(10)", inputShape: [2, 9, 9])
        #expect(
            spec.layers[1]
                == .convolution(
                    ConvolutionSpec(filters: 6, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], groups: 6)))
        #expect(
            spec.layers[2]
                == .convolution(ConvolutionSpec(filters: 4, kernel: [1, 3], strides: [1, 1], pads: [0, 1, 0, 1])))
        #expect(try spec.shapes() == [[6, 9, 9], [6, 5, 5], [4, 5, 5], [4, 1, 2], [10]])
        #expect(spec.layers[0].description == "conv(6,3,stride=1,pad=1)")
        #expect(spec.layers[3].description == "conv(4,3,stride=2x1,pad=0x0x1x1,dilation=2)")
        #expect(try LayerSpec.parseList(spec.layerText) == spec.layers)
        #expect(try JSONDecoder().decode([LayerSpec].self, from: try JSONEncoder().encode(spec.layers)) == spec.layers)
        #expect(try spec.geometry()[1].tensors[0].shape == [6, 1, 3, 3] && spec.geometry()[1].window == nil)
        #expect(
            throws: ModelError.badSpec("00_conv1: 4 groups must divide both the 6 input channels and the 8 filters")
        ) {
            try ModelSpec.named("conv(8,3,groups=4) affine(10)", inputShape: [6, 9, 9])
        }
        #expect(throws: ModelError.badSpec("'conv(4,1x3x5)': size must be N or NxN in whole numbers, got '1x3x5'")) {
            try LayerSpec.parse("conv(4,1x3x5)")
        }
    }

    /// The activations and global pooling read back from their text and their JSON, and refuse
    /// arguments they cannot take.
    @Test func activationsRoundTripAndCheckTheirArguments() throws {
        let spec = try ModelSpec.named(
            "conv(4,3) relu6 clip(-1,2.5) leakyrelu leakyrelu(alpha=0.2) sigmoid hardsigmoid hardsigmoid(0.2,0.5) "
                + "hardswish gap affine(10)")
        #expect(
            spec.layers[1...9] == [
                .activation(.clip(min: 0, max: 6)), .activation(.clip(min: -1, max: 2.5)),
                .activation(.leakyReLU(alpha: 0.01)), .activation(.leakyReLU(alpha: 0.2)), .activation(.sigmoid),
                .activation(.hardSigmoid(alpha: 1.0 / 6, beta: 0.5)), .activation(.hardSigmoid(alpha: 0.2, beta: 0.5)),
                .activation(.hardSwish), .globalAveragePooling,
            ])
        #expect(spec.layerNames[1] == "01_clip1" && spec.layerNames[2] == "02_clip2" && spec.layerNames[9] == "09_gap1")
        #expect(try spec.shapes()[9] == [4, 1, 1])
        #expect(try LayerSpec.parseList(spec.layerText) == spec.layers)
        let json = try JSONEncoder().encode(spec.layers)
        #expect(try JSONDecoder().decode([LayerSpec].self, from: json) == spec.layers)
        #expect(throws: ModelError.badSpec("01_clip1: clip needs finite min < max, got 2.0, 1.0")) {
            try ModelSpec.named("conv(4,3) clip(2,1) affine(10)").shapes()
        }
        #expect(throws: ModelError.badSpec("01_gap1: gap needs (C,H,W) input, got (5)")) {
            try ModelSpec(
                name: "custom", inputShape: [1, 4, 4], layers: [.affine(units: 5), .globalAveragePooling],
                weightInit: .he
            ).layerShapes()
        }
    }

    @Test func badSpecsThrowClearErrors() {
        #expect(
            throws: ModelError.badSpec(
                "unknown layer 'convolve' (conv, maxpool, avgpool, gap, affine, relu, relu6, clip, leakyrelu, "
                    + "sigmoid, hardsigmoid, hardswish, dropout, batchnorm, normalize, add, concat, mul)")
        ) {
            try ModelSpec.named("convolve(3,3) affine(10)")
        }
        #expect(throws: ModelError.badSpec("'conv(3)': conv needs size")) { try ModelSpec.named("conv(3) affine(10)") }
        #expect(throws: ModelError.badSpec("01_conv2: window 30 does not fit input (4,24,24) with pad 0")) {
            try ModelSpec.named("conv(4,5) conv(4,30) affine(10)")
        }
        #expect(throws: ModelError.badSpec("the last layer must produce class scores (an affine layer), got (4,24,24)"))
        {
            try ModelSpec.named("conv(4,5)")
        }
        #expect(throws: ModelError.self) { try ModelSpec.named("conv(4,5,bogus=1) affine(10)") }
        #expect(throws: ModelError.self) { try WeightInit(parsing: "normal:-1") }
    }

    @Test(arguments: [
        ("conv(6 5,3) affine(10)", "a space inside the argument '6 5'"),
        ("conv(6,5,1,stride=2) affine(10)", "'stride' is given twice (by position and by name)"),
        ("conv(6,5,pad=1,pad=2) affine(10)", "'pad' is given twice"),
        ("conv(6,,5) affine(10)", "an empty argument"),
        ("conv(6,5,) affine(10)", "an empty argument"),
        ("conv(6,size=5,1) affine(10)", "the positional argument '1' follows a named one"),
        ("dropout(0.5,ratio=0.2) affine(10)", "'ratio' is given twice"),
        ("conv(6,5)) affine(10)", "unbalanced parentheses"),
        ("conv(6,5 affine(10)", "unbalanced parentheses"),
        ("conv(6,5,pad=9223372036854775807) affine(10)", "pad 0...1024"),
        ("conv(3037000500,5) affine(10)", "needs 1...65536 filters"),
        ("affine(20000000)", "needs 1...16777216 units"),
        ("affine(10000000) affine(10000000) affine(10)", "is too many weights"),
    ])
    func specsAreReadStrictlyAndBounded(_ text: String, _ message: String) {
        #expect { try ModelSpec.named(text) } throws: { "\($0)".contains(message) }
    }

    @Test func spacesAroundArgumentsAreFine() throws {
        #expect(
            try LayerSpec.parseList("conv( 6, 5, pad=1 ) relu") == [
                .convolution(filters: 6, size: 5, stride: 1, pad: 1), .relu,
            ])
    }

    @Test func memoryIsEstimatedBeforeAnythingIsAllocated() throws {
        let deep = ModelSpec.deepConvNet
        let parameters = try deep.parameterCount()
        #expect(parameters == 123_552)
        let outputs = try deep.shapes().reduce(784) { $0 + $1.reduce(1, *) }
        #expect(try deep.memoryBytes(batch: 100, training: true) == parameters * 16 + outputs * 100 * 12)
        #expect(try deep.memoryBytes(batch: 100, training: false) == parameters * 4 + outputs * 100 * 8)
        try deep.checkMemory(batch: 100, training: true)
        let huge = try ModelSpec.named("affine(1000000) affine(1000000) affine(10)")
        #expect { try huge.checkMemory(batch: 100, training: true, available: 1 << 36) } throws: {
            "\($0)".contains("the model needs about") && "\($0)".contains("more than the 64.0 GiB of memory here")
        }
    }

    @Test func sameSeedSameWeightsDifferentSeedDifferentWeights() throws {
        let a = try Network<Float>(spec: .simpleConvNet, seed: 5).tensorValues()
        #expect(a == (try Network<Float>(spec: .simpleConvNet, seed: 5).tensorValues()))
        #expect(a != (try Network<Float>(spec: .simpleConvNet, seed: 6).tensorValues()))
    }

    /// An input normalization in front of a graph: every layer that read the input reads it, the text
    /// round-trips, the network computes on `(x - mean) / std` what the network without it computes on
    /// inputs normalized by hand, and bad statistics or a normalization elsewhere are refused.
    @Test func inputNormalizationSitsInFrontOfTheNetwork() throws {
        let spec = try ModelSpec.named(
            "conv(4,3,pad=1) relu :a @input conv(4,1) add(a) gap affine(5)", inputShape: [2, 6, 6])
        let normalized = spec.normalizingInput()
        #expect(normalized.layers.first == .inputNormalization && normalized.normalizesInput)
        #expect(normalized.inputs(of: 1) == [0] && normalized.inputs(of: 3) == [0])
        #expect(normalized.inputs(of: 4) == [3, 2])
        #expect(normalized.normalizingInput() == normalized && !spec.normalizesInput)
        let back = try LayerSpec.parseGraph(normalized.layerText)
        #expect(back.layers == normalized.layers && back.wiring == normalized.wiring)
        #expect(normalized.layerText.hasPrefix("normalize conv("))
        let plain = try Network<Double>(spec: spec, seed: 7)
        let statistics = ChannelStatistics(mean: [0.25, -0.5], std: [0.5, 2])
        let imported = try ImportedNetwork(spec: spec, tensors: plain.tensorValues(), producer: "", notes: [])
            .normalizingInput(statistics)
        #expect(imported.spec == normalized && imported.tensors["01_conv1/W"] == plain.tensorValues()["00_conv1/W"])
        let net = try Network<Double>(spec: normalized, parameters: imported.tensors)
        let x: Tensor<Double> = randomTensor([3, 2, 6, 6], seed: 8, in: 0...1)
        var byHand = x
        for at in byHand.data.indices {
            byHand.data[at] = (x.data[at] - statistics.mean[at / 36 % 2]) / statistics.std[at / 36 % 2]
        }
        #expect(net.predict(x).data == plain.predict(byHand).data)
        #expect(net.predict(x).data != plain.predict(x).data)
        let fresh = try Network<Double>(spec: normalized, seed: 7)
        try fresh.setInputNormalization(statistics)
        #expect(fresh.tensorValues() == net.tensorValues())
        #expect(throws: ModelError.self) { try fresh.setInputNormalization(ChannelStatistics(mean: [0], std: [0])) }
        #expect(throws: ModelError.self) {
            try fresh.setInputNormalization(ChannelStatistics(mean: [0, 0, 0], std: [1, 1, 1]))
        }
        var bad = net.tensorValues()
        bad["00_normalize1/std"] = Tensor(shape: [2], data: [1, -1])
        #expect(throws: ModelError.self) { try Network<Float>(spec: normalized, parameters: bad) }
        #expect(throws: ModelError.badSpec("01_normalize1: normalize must read the input")) {
            try ModelSpec.named("conv(2,3) normalize affine(10)")
        }
        #expect(
            try ChannelStatistics(parsing: "0.5/0.25").spread(over: 3)
                == ChannelStatistics(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]))
        for text in ["0.5", "0.5/0", "a/1", "0.1,0.2/1,", "1/2/3"] {
            #expect(throws: ModelError.self, "\(text)") { try ChannelStatistics(parsing: text) }
        }
    }

    @Test func weightsMustMatchTheSpec() throws {
        var values = try Network<Double>(spec: .simpleConvNet, seed: 0).tensorValues()
        values["03_affine1/W"] = Tensor(zeros: [4320, 99])
        #expect(throws: ModelError.badSpec("03_affine1/W has shape (4320,99), spec expects (4320,100)")) {
            try Network<Float>(spec: .simpleConvNet, parameters: values)
        }
        values["03_affine1/W"] = nil
        #expect(throws: ModelError.badSpec("missing tensor 03_affine1/W")) {
            try Network<Float>(spec: .simpleConvNet, parameters: values)
        }
    }

    @Test func optimizersFollowTheBookRules() {
        // One step on p = 1 with g = 0.5 from zero state.
        let expected: [OptimizerKind: Float] = [
            .sgd: 1 - 0.01 * 0.5, .momentum: 1 - 0.01 * 0.5, .nesterov: 1 + 0.81 * -0.005 - 1.9 * 0.005,
            .adagrad: 1 - 0.01 * 0.5 / (0.5 + 1e-7),
            .rmsprop: 1 - 0.01 * 0.5 / ((0.01 * 0.25 as Float).squareRoot() + 1e-7),
            .adam: 1 - 0.001 * (0.001 as Float).squareRoot() / 0.1 * 0.05 / ((0.00025 as Float).squareRoot() + 1e-7),
        ]
        for kind in OptimizerKind.allCases {
            let p = Parameter("W", Tensor<Float>(shape: [1], data: [1]))
            p.grad = Tensor(shape: [1], data: [0.5])
            Optimizer<Float>(kind).update([p])
            #expect(abs(p.value.data[0] - expected[kind]!) < 1e-6, "\(kind): \(p.value.data[0])")
        }
    }

    @Test func dropoutInferenceScalesByKeepProbability() {
        let d = Dropout<Double>(ratio: 0.5, seed: 1)
        #expect(d.forward(Tensor(shape: [1, 2], data: [2, 4]), isTraining: false).data == [1, 2])
        let y = d.forward(Tensor(shape: [1, 1000], data: [Double](repeating: 1, count: 1000)), isTraining: true)
        #expect(Set(y.data) == [0, 1])
        #expect(abs(y.data.reduce(0, +) - 500) < 60)
    }
}
