import Testing

@testable import PrecisCore

/// Quantization-aware training: the straight-through gradients against a numerical check, the master
/// weights kept in float32, and the warm-up that freezes the input ranges.
@Suite struct QATTests {
    static let data = tinyDataset(seed: 4)

    /// A network for `spec`, its QAT for `target` (no warm-up: inputs rounded from the start), and a
    /// batch of 10 training images with their labels.
    func setup(_ spec: String, _ target: String) throws -> (
        Network<Float>, QuantizationAwareTraining, Tensor<Float>, [Int]
    ) {
        let spec = try ModelSpec.named(spec, inputShape: [1, 8, 8])
        let net = try Network<Float>(spec: spec, seed: 2)
        let observers = observeActivations(net, images: Self.data.trainImages, count: 40)
        let qat = try QuantizationAwareTraining(
            network: net, target: QATTarget(parsing: target), observers: observers, warmup: 0)
        let x: Tensor<Float> = Self.data.batch(Self.data.trainImages, Array(0..<10)[...])
        return (net, qat, x, Array(Self.data.trainLabels[0..<10]))
    }

    /// The straight-through estimator makes QAT's gradient the exact gradient of a surrogate: the
    /// network with the quantized weights, whose quantized layers add to their input the rounding
    /// error it had in the step, held fixed. Central differences of that surrogate in Double must
    /// match every learnable gradient the float32 step computed. Rounding is elementwise for int8; an
    /// affine layer's MX blocks are its input rows, so its rounding error is elementwise too. The loss
    /// has no derivative where a max-pooling window ties or a ReLU input is exactly 0, which values
    /// on integer grids make likely (symmetric int8 with one weight scale makes such zeros here);
    /// these networks and seeds have none.
    @Test(arguments: [
        ("conv(3,3) relu affine(10)", "int8"),
        ("conv(3,3) relu affine(10)", "int8-wtensor-as8z"),
        ("affine(16) relu affine(10)", "mxfp4"),
        ("affine(16) relu affine(10)", "int4-g32-a8"),
    ])
    func straightThroughGradientMatchesNumericalCheck(_ spec: String, _ target: String) throws {
        let (net, qat, x, t) = try setup(spec, target)
        let masters = net.tensorValues()
        try qat.around(x) { _ = net.gradient(x, t, inputGradient: false) }
        #expect(net.tensorValues() == masters, "the masters are put back")
        // The rounding error each quantized layer's input had, from the float32 pass's own values.
        let quantized = try qat.fakeQuantized()
        var offsets: [Int: [Float]] = [:]
        try qat.around(nil) {
            let inputs = net.forwardAll(x)
            for i in qat.layers {
                var rounded = inputs[i].data
                let (n, per) = (x.shape[0], inputs[i].count / x.shape[0])
                let rounding: OperandRounding? =
                    switch net.nodes[i] {
                    case .convolution(let l): l.inputRounding
                    case .affine(let l): l.inputRounding
                    default: nil
                    }
                rounded.withUnsafeMutableBufferPointer { rounding?($0.baseAddress!, .rows(n, per)) }
                offsets[i] = zip(rounded, inputs[i].data).map { $0 - $1 }
            }
        }
        let surrogate = try Network<Double>(spec: net.spec, parameters: masters.merging(quantized) { $1 })
        let x64: Tensor<Double> = x.converted()
        func loss() -> Double {
            var y = x64
            for i in net.layerNames.indices {
                if let r = offsets[i] { for k in y.data.indices { y.data[k] += Double(r[k]) } }
                y = surrogate.forward(y, layers: i..<(i + 1))
            }
            return surrogate.lossLayer.forward(y, t)
        }
        let h = 1e-6
        for (a, b) in zip(net.parameters, surrogate.parameters) where a.parameter.learnable {
            let g = a.parameter.grad.data.map(Double.init), p = b.parameter
            let largest = g.map(abs).max() ?? 0
            for j in g.indices {
                let v = p.value.data[j]
                p.value.data[j] = v + h
                let up = loss()
                p.value.data[j] = v - h
                let down = loss()
                p.value.data[j] = v
                let numerical = (up - down) / (2 * h)
                #expect(
                    abs(numerical - g[j]) <= 1e-4 * largest + 1e-7,
                    "\(target) \(a.name)[\(j)]: straight-through \(g[j]), numerical \(numerical)")
            }
        }
    }

    @Test func warmupObservesThenFreezes() throws {
        let (net, qat, x, t) = try setup("conv(3,3) relu maxpool(2) affine(10)", "int8")
        #expect(qat.frozen, "no warm-up: frozen at the start")
        let late = try QuantizationAwareTraining(
            network: net, target: .int8(QuantScheme(weights: .perChannel, activations: .uint8Asymmetric), .minmax),
            observers: observeActivations(net, images: Self.data.trainImages, count: 10), warmup: 2)
        let seen = late.observers[0]!.count
        for _ in 0..<3 {
            #expect(!late.frozen)
            try late.around(x) { _ = net.gradient(x, t, inputGradient: false) }
        }
        #expect(late.frozen, "frozen as the third step began")
        #expect(late.observers[0]!.count == seen + 2 * x.count, "two warm-up batches observed, none after")
        #expect(late.steps == 3)
    }

    @Test func targetsParseAndRefuseWithClearMessages() throws {
        #expect(try QATTarget(parsing: "int8").description == "int8-wchannel-au8z")
        #expect(try QATTarget(parsing: "int8-wtensor-as8", calibration: .percentile).description == "int8-wtensor-as8")
        #expect(try QATTarget(parsing: "int4-g32").description == "int4-g32")
        #expect(throws: ModelError.self) { try QATTarget(parsing: "int8-wrong") }
        #expect(throws: ModelError.self) { try QATTarget(parsing: "float7") }
        #expect(throws: ModelError.self) { try QATTarget(parsing: "mxfp4", calibration: .mse) }
    }
}
