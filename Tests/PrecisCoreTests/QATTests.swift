import Testing

@testable import PrecisCore

/// Quantization-aware training: the straight-through gradients against a numerical check, the master
/// weights kept in float32, and the warm-up that freezes the input ranges.
@Suite struct QATTests {
    static let data = tinyDataset(seed: 4)

    /// A network for `spec`, its QAT for `target` (no warm-up: inputs rounded from the start), and a
    /// batch of 10 training images with their labels.
    func setup(_ spec: String, _ target: String, learnSteps: Bool = false) throws -> (
        Network<Float>, QuantizationAwareTraining, Tensor<Float>, [Int]
    ) {
        let spec = try ModelSpec.named(spec, inputShape: [1, 8, 8])
        let net = try Network<Float>(spec: spec, seed: 2)
        let observers = observeActivations(net, images: Self.data.trainImages, count: 40)
        let qat = try QuantizationAwareTraining(
            network: net, target: QATTarget(parsing: target), observers: observers, warmup: 0,
            learnSteps: learnSteps ? (.sgd, 0) : nil)
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

    /// LSQ's step gradients are the exact derivatives of a surrogate: each quantized value `x̂ = s·(q − z)`
    /// becomes `x + s·(q − z − x/s₀)` where `x` is inside the range (the rounding's derivative taken
    /// as 1) and `s·(q − z)` where it saturates, with the codes `q` of the step `s₀` held fixed.
    /// Central differences of that surrogate in Double, for every weight step and input step, must
    /// match the gradients the float32 step computed, with the paper's scale `1/√(N·Qp)` taken out.
    @Test(arguments: [
        ("conv(3,3) relu affine(10)", "int8"),
        ("conv(3,3) relu affine(10)", "int8-wtensor-as8z"),
        ("conv(3,3) relu affine(10)", "int4-channel"),
        ("affine(16) relu affine(10)", "int4-g32-z"),
    ])
    func learnedStepGradientsMatchNumericalCheck(_ spec: String, _ target: String) throws {
        let (net, qat, x, t) = try setup(spec, target, learnSteps: true)
        let masters = net.tensorValues()
        try qat.around(x) { _ = net.gradient(x, t, inputGradient: false) }
        let learned = try #require(qat.learned)
        let quantized = try qat.fakeQuantized()
        var inputs: [Tensor<Float>] = []
        try qat.around(nil) { inputs = net.forwardAll(x) }
        let surrogate = try Network<Double>(spec: net.spec, parameters: masters.merging(quantized) { $1 })
        /// The surrogate's value of `x` quantized with `r` at step `s`.
        func value(_ x: Double, _ r: QuantRange, _ s: Double) -> Double {
            let q = Double(r.quantize(x) - r.zeroPoint)
            return LearnedStep.derivative(x, r).passes ? x + s * (q - x / r.scale) : s * q
        }
        /// The loss with weight step `(layer, group)` or the input step of `layer` at `s`.
        func loss(weight: (Int, Int)? = nil, input: Int? = nil, _ s: Double = 0) -> Double {
            for (i, (set, group)) in learned.weights {
                let p = surrogate.nodes[i].layer!.parameters.first { $0.name == "W" }!
                let w = masters[tensorKey(net.layerNames[i], "W")]!, ranges = set.ranges
                for k in w.data.indices {
                    let r = ranges[group[k]], g = (i, group[k])
                    p.value.data[k] = value(w.data[k], r, weight.map { $0 == g } == true ? s : r.scale)
                }
            }
            var y: Tensor<Double> = x.converted()
            for i in net.layerNames.indices {
                if let r = learned.inputs[i]?.ranges[0] {
                    let seen = inputs[net.spec.inputs(of: i)[0] + 1].data.map(Double.init)
                    for k in y.data.indices {
                        y.data[k] += value(seen[k], r, input == i ? s : r.scale) - seen[k]
                    }
                }
                y = surrogate.forward(y, layers: i..<(i + 1))
            }
            return surrogate.lossLayer.forward(y, t)
        }
        var checks: [(name: String, analytic: Double, numerical: Double)] = []
        let h = 1e-7
        for (i, (set, group)) in learned.weights.sorted(by: { $0.key < $1.key }) {
            for (g, r) in set.ranges.enumerated() {
                let n = group.filter { $0 == g }.count
                let numerical = (loss(weight: (i, g), r.scale + h) - loss(weight: (i, g), r.scale - h)) / (2 * h)
                let analytic = Double(set.steps.grad.data[g]) / LearnedStep.gradientScale(values: n, r)
                checks.append(("\(net.layerNames[i]) weight step \(g)", analytic, numerical))
            }
        }
        for (i, set) in learned.inputs.sorted(by: { $0.key < $1.key }) {
            let r = set.ranges[0], n = inputs[net.spec.inputs(of: i)[0] + 1].count / x.shape[0]
            let numerical = (loss(input: i, r.scale + h) - loss(input: i, r.scale - h)) / (2 * h)
            let analytic = Double(set.steps.grad.data[0]) / LearnedStep.gradientScale(values: n, r)
            checks.append(("\(net.layerNames[i]) input step", analytic, numerical))
        }
        #expect(checks.count > 1 + (target.hasPrefix("int8") ? 2 : 0))
        let largest = checks.map { abs($0.numerical) }.max() ?? 0
        #expect(largest > 0, "\(target): the steps have a gradient")
        for c in checks {
            #expect(
                abs(c.analytic - c.numerical) <= 1e-3 * largest + 1e-6,
                "\(target) \(c.name): learned \(c.analytic), numerical \(c.numerical)")
        }
    }

    /// The paper's step derivative on one value: inside the range, `⌊x/s⌉ − x/s`; saturated, the
    /// code at the end less the zero point; and the value's own gradient stopped there.
    @Test func stepDerivativeFollowsThePaper() {
        let r = QuantRange(scale: 0.5, zeroPoint: 3, qmin: 0, qmax: 15)
        #expect(LearnedStep.derivative(1.2, r).step == 2 - 2.4)
        #expect(LearnedStep.derivative(1.2, r).passes)
        #expect(LearnedStep.derivative(-9, r) == (-3, false))
        #expect(LearnedStep.derivative(9, r) == (12, false))
        var dx: [Float] = [1, 1, 1]
        let sum = LearnedStep.backward([1.2, -9, 9], &dx, r)
        #expect(abs(sum - (2 - 2.4 - 3 + 12)) < 1e-6)
        #expect(dx == [1, 0, 0])
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
