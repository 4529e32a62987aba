import Testing

@testable import PrecisCore

/// Numerical gradient checks in Double: norm-wise relative error below 1e-6 for every parameter
/// tensor and the input gradient, entries whose steps cross a ReLU kink or a max-pool tie skipped.
@Suite struct GradientCheckTests {
    static let bound = 1e-6

    /// Checks one layer with loss `sum(forward(x) ⊙ R)` for a fixed random R.
    func checkLayer(
        _ layer: some Layer<Double>, input: Tensor<Double>, extraSignature: @escaping () -> [[Int32]] = { [] },
        samples: Int = 200
    ) -> [GradientReport] {
        let x = Variable(input)
        let y = layer.forward(x.tensor, isTraining: true)
        let r: Tensor<Double> = randomTensor(y.shape, seed: 99)
        let dx = layer.backward(r)
        func loss() -> Double { zip(layer.forward(x.tensor, isTraining: true).data, r.data).map(*).reduce(0, +) }
        func sig() -> [[Int32]] { signature(of: [layer]) + extraSignature() }
        var reports = [
            numericalCheck(
                name: "dx", get: { x.tensor.data[$0] }, set: { x.tensor.data[$0] = $1 }, analytic: dx.data,
                indices: sampleIndices(input.count, samples, seed: 1), loss: loss, signature: sig)
        ]
        for p in layer.parameters where p.learnable {
            reports.append(
                numericalCheck(
                    name: p.name, get: { p.value.data[$0] }, set: { p.value.data[$0] = $1 }, analytic: p.grad.data,
                    indices: sampleIndices(p.value.count, samples, seed: 2), loss: loss, signature: sig))
        }
        return reports
    }

    func expectPasses(_ reports: [GradientReport], minimumChecked: Int = 1) {
        for r in reports {
            #expect(r.error < Self.bound, "\(r)")
            #expect(r.checked >= minimumChecked, "\(r)")
        }
    }

    @Test(arguments: [(1, 0), (1, 1), (2, 1), (2, 2)])
    func convolution(stride: Int, pad: Int) {
        let conv = Convolution<Double>(
            W: randomTensor([4, 3, 3, 3], seed: 3), b: randomTensor([4], seed: 4), stride: stride, pad: pad)
        expectPasses(checkLayer(conv, input: randomTensor([2, 3, 7, 6], seed: 5, as: Double.self)))
    }

    /// Convolutions of every geometry: groups (depthwise, and two groups of three channels),
    /// rectangular kernels, unequal strides, padding on each side, dilation.
    @Test(arguments: [
        ConvolutionSpec(filters: 6, kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], groups: 6),
        ConvolutionSpec(filters: 4, kernel: [1, 3], strides: [2, 1], pads: [0, 1, 0, 1], groups: 2),
        ConvolutionSpec(filters: 5, kernel: [3, 2], strides: [1, 2], pads: [0, 0, 2, 1], dilations: [2, 1]),
        ConvolutionSpec(
            filters: 12, kernel: [3, 3], strides: [2, 2], pads: [1, 0, 1, 2], dilations: [1, 2], groups: 6),
    ])
    func generalConvolution(spec: ConvolutionSpec) {
        let conv = GeneralConvolution<Double>(
            W: randomTensor([spec.filters, 6 / spec.groups] + spec.kernel, seed: 13),
            b: randomTensor([spec.filters], seed: 14),
            spec: spec)
        let reports = checkLayer(conv, input: randomTensor([2, 6, 7, 8], seed: 15, as: Double.self))
        expectPasses(reports, minimumChecked: 4)
        #expect(reports.count == 3)
    }

    /// With the book's geometry the general convolution computes what `Convolution` does: bit for
    /// bit forward (the same chain of multiply-adds for every output), and its gradients to rounding
    /// (they add in another order).
    @Test func generalConvolutionOfThePlainKindIsTheConvolution() {
        func check<T: NetworkScalar>(_: T.Type) {
            let (w, b): (Tensor<T>, Tensor<T>) = (randomTensor([5, 3, 3, 3], seed: 16), randomTensor([5], seed: 17))
            let x: Tensor<T> = randomTensor([3, 3, 8, 7], seed: 18),
                d: Tensor<T> = randomTensor([3, 5, 4, 4], seed: 19)
            let plain = Convolution(W: w, b: b, stride: 2, pad: 1)
            let general = GeneralConvolution(W: w, b: b, spec: ConvolutionSpec(filters: 5, size: 3, stride: 2, pad: 1))
            #expect(plain.forward(x, isTraining: true) == general.forward(x, isTraining: true), "\(T.self)")
            let bound = T.self == Double.self ? 1e-13 : 1e-6
            for (p, g) in [
                (plain.backward(d), general.backward(d)), (plain.W.grad, general.W.grad),
                (plain.b.grad, general.b.grad),
            ] {
                let scale = p.data.map { abs(Double($0)) }.max()!
                #expect(zip(p.data, g.data).allSatisfy { abs(Double($0) - Double($1)) <= bound * scale }, "\(T.self)")
            }
        }
        check(Float.self)
        check(Double.self)
    }

    /// A depthwise convolution sums directly what the unfolded path sums, in its order: the same bits
    /// forward and back (a rounding that changes nothing makes a Float layer unfold). With one filter
    /// per channel the C kernels run (20 channels: a partial block of vectors at every level), with two
    /// the Swift loops.
    @Test(arguments: [1, 2])
    func depthwiseSumsDirectlyWhatTheGEMMsSum(multiplier: Int) {
        let channels = multiplier == 1 ? 20 : 4, filters = channels * multiplier
        let spec = ConvolutionSpec(
            filters: filters, kernel: [3, 3], strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2],
            groups: channels)
        let (w, b): (Tensor<Float>, Tensor<Float>) = (
            randomTensor([filters, 1, 3, 3], seed: 20), randomTensor([filters], seed: 21)
        )
        let x: Tensor<Float> = randomTensor([3, channels, 9, 8], seed: 22)
        let direct = GeneralConvolution(W: w, b: b, spec: spec)
        let unfolded = GeneralConvolution(W: w, b: b, spec: spec, inputRounding: OperandRounding { _, _ in })
        let y = direct.forward(x, isTraining: true)
        #expect(y == unfolded.forward(x, isTraining: true))
        let d: Tensor<Float> = randomTensor(y.shape, seed: 23)
        #expect(direct.backward(d) == unfolded.backward(d))
        #expect(direct.W.grad == unfolded.W.grad && direct.b.grad == unfolded.b.grad)
    }

    /// Float training gradients (the C kernels with AVX-512: weight gradients pixel by pixel, input
    /// gradients by the direct kernel with the filters turned over; else the GEMMs) agree with Double's
    /// to float32 accuracy, through fused ReLUs, pad 2, 5×5 windows, partial blocks of 16 filters and
    /// chunks of several images, with and without the first layer's input gradient.
    @Test(arguments: [true, false])
    func floatConvolutionGradientsAgreeWithDouble(inputGradient: Bool) throws {
        let spec = try ModelSpec.named(
            "conv(16,3,pad=1) relu conv(40,3,pad=2) relu maxpool(2) conv(16,5,pad=2) relu conv(24,3) relu affine(10)",
            inputShape: [3, 12, 11])
        var rng = RandomSource(seed: 31)
        let x = Tensor<Double>(shape: [9, 3, 12, 11], data: (0..<(9 * 3 * 12 * 11)).map { _ in rng.normal() })
        let t = (0..<9).map { $0 % 10 }
        let tensors = try Network<Double>(spec: spec, seed: 8).tensorValues()
        let exact = try Network<Double>(spec: spec, parameters: tensors),
            single = try Network<Float>(spec: spec, parameters: tensors)
        let (_, dx64) = exact.gradient(x, t, inputGradient: inputGradient),
            (_, dx32) = single.gradient(x.converted(to: Float.self), t, inputGradient: inputGradient)
        func relativeError(_ a: [Float], _ b: [Double]) -> Double {
            let diff = zip(a, b).map { (Double($0) - $1) * (Double($0) - $1) }.reduce(0, +)
            return (diff / max(b.map { $0 * $0 }.reduce(0, +), 1e-300)).squareRoot()
        }
        #expect(dx32.count == dx64.count && relativeError(dx32.data, dx64.data) < 1e-5, "input gradient")
        for (a, b) in zip(single.parameters, exact.parameters) {
            #expect(relativeError(a.parameter.grad.data, b.parameter.grad.data) < 1e-5, "\(a.name)")
        }
    }

    @Test func convolutionRectangularFilter() {
        let conv = Convolution<Double>(
            W: randomTensor([2, 2, 2, 3], seed: 6), b: randomTensor([2], seed: 7), stride: 1, pad: 1)
        expectPasses(checkLayer(conv, input: randomTensor([2, 2, 5, 5], seed: 8, as: Double.self)))
    }

    @Test(arguments: [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
    func maxPooling(size: Int, stride: Int, pad: Int) {
        // Distinct values at least 1e-3 apart: no ±1e-5 step can create a tie.
        var rng = RandomSource(seed: 10)
        let n = 2 * 3 * 6 * 6
        let values = rng.permutation(n).map { Double($0) * 1e-3 - 0.3 }
        let pool = MaxPooling<Double>(size: size, stride: stride, pad: pad)
        let reports = checkLayer(pool, input: Tensor(shape: [2, 3, 6, 6], data: values))
        expectPasses(reports)
        #expect(reports[0].skipped == 0)
    }

    @Test(arguments: [(2, 2, 0), (3, 2, 1)])
    func averagePooling(size: Int, stride: Int, pad: Int) {
        expectPasses(
            checkLayer(
                AveragePooling<Double>(size: size, stride: stride, pad: pad),
                input: randomTensor([2, 3, 6, 6], seed: 11, as: Double.self)))
    }

    @Test func affineFlattensImages() {
        let affine = Affine<Double>(W: randomTensor([3 * 4 * 4, 5], seed: 12), b: randomTensor([5], seed: 13))
        let reports = checkLayer(affine, input: randomTensor([3, 3, 4, 4], seed: 14, as: Double.self))
        expectPasses(reports)
        #expect(reports.count == 3)
    }

    @Test func relu() {
        let reports = checkLayer(ReLU<Double>(), input: awayFromZero([2, 3, 4, 4], seed: 15))
        expectPasses(reports)
        #expect(reports[0].skipped == 0)
    }

    /// Every activation function, on inputs spread over all of its pieces (beyond ±3 and 6).
    @Test(arguments: [
        (ActivationFunction.clip(min: 0, max: 6), 3), (.clip(min: -1, max: 0.5), 3), (.leakyReLU(alpha: 0.1), 2),
        (.sigmoid, 1), (.hardSigmoid(alpha: 1.0 / 6, beta: 0.5), 3), (.hardSigmoid(alpha: 0.2, beta: 0.5), 3),
        (.hardSwish, 3),
    ])
    func activation(_ f: ActivationFunction, pieces: Int) {
        let x: Tensor<Double> = randomTensor([2, 3, 6, 6], seed: 21, in: -8...8)
        let layer = Elementwise<Double>(f)
        expectPasses(checkLayer(layer, input: x))
        _ = layer.forward(x, isTraining: true)
        #expect(Set(layer.lastPieces).count == pieces)
    }

    @Test func globalAveragePooling() {
        expectPasses(checkLayer(GlobalAveragePooling<Double>(), input: randomTensor([3, 4, 5, 6], seed: 22)))
    }

    @Test func dropoutWithFrozenMask() {
        let dropout = Dropout<Double>(ratio: 0.5, seed: 16)
        _ = dropout.forward(randomTensor([4, 10], seed: 17, as: Double.self), isTraining: true)
        dropout.freezesMask = true
        expectPasses(checkLayer(dropout, input: randomTensor([4, 10], seed: 17, as: Double.self)))
    }

    @Test(arguments: [[4, 3, 5, 5], [6, 7]])
    func batchNormalization(shape: [Int]) {
        let bn = BatchNormalization<Double>(channels: shape[1])
        bn.gamma.value = randomTensor([shape[1]], seed: 18, in: 0.5...1.5)
        bn.beta.value = randomTensor([shape[1]], seed: 19)
        expectPasses(checkLayer(bn, input: randomTensor(shape, seed: 20, as: Double.self)))
    }

    @Test func inputNormalization() {
        let n = InputNormalization<Double>(channels: 3)
        n.mean.value = randomTensor([3], seed: 23)
        n.std.value = randomTensor([3], seed: 24, in: 0.2...2)
        expectPasses(checkLayer(n, input: randomTensor([2, 3, 4, 5], seed: 25, as: Double.self)))
    }

    @Test func softmaxWithLoss() {
        let layer = SoftmaxWithLoss<Double>()
        layer.logDelta = 0
        let x = Variable(randomTensor([5, 4], seed: 21, in: -3...3))
        let t = [0, 3, 1, 1, 2]
        _ = layer.forward(x.tensor, t)
        let dx = layer.backward()
        let report = numericalCheck(
            name: "dx", get: { x.tensor.data[$0] }, set: { x.tensor.data[$0] = $1 }, analytic: dx.data,
            indices: Array(0..<20), loss: { Double(layer.forward(x.tensor, t)) }, signature: { [] })
        #expect(report.error < Self.bound, "\(report)")
    }

    /// The whole network, loss included: every parameter tensor (a sample of its entries) and the input.
    func checkNetwork(_ spec: ModelSpec, seed: UInt64, samples: Int) {
        let net = try! Network<Double>(spec: spec, seed: seed)
        net.lossLayer.logDelta = 0
        let x = Variable(randomTensor([2] + spec.inputShape, seed: seed + 1, in: 0...1))
        let t = [3, 7]
        let dx = net.gradient(x.tensor, t).dx
        for case let d as Dropout<Double> in net.layers { d.freezesMask = true }
        func loss() -> Double { Double(net.loss(x.tensor, t)) }
        func sig() -> [[Int32]] { signature(of: net.layers) }
        var reports = [
            numericalCheck(
                name: "input", get: { x.tensor.data[$0] }, set: { x.tensor.data[$0] = $1 }, analytic: dx.data,
                indices: sampleIndices(dx.count, samples, seed: 3), loss: loss, signature: sig)
        ]
        for (name, p) in net.parameters where p.learnable {
            reports.append(
                numericalCheck(
                    name: name, get: { p.value.data[$0] }, set: { p.value.data[$0] = $1 }, analytic: p.grad.data,
                    indices: sampleIndices(p.value.count, samples, seed: 4), loss: loss, signature: sig))
        }
        #expect(reports.count == 1 + net.parameters.filter(\.parameter.learnable).count)
        for r in reports { #expect(r.checked >= 4, "\(r)") }
        expectPasses(reports)
    }

    @Test func simpleConvNet() {
        checkNetwork(.simpleConvNet, seed: 30, samples: 40)
    }

    @Test func deepConvNet() {
        checkNetwork(.deepConvNet, seed: 31, samples: 25)
    }

    /// Custom networks: input and batch normalization with average pooling, every other activation with
    /// global average pooling, and a graph: residual sums (one of a value with itself, one reading
    /// the input), a broadcast product, a concatenation of three branches.
    @Test(arguments: [
        (
            "normalize conv(4,3,pad=1) batchnorm relu avgpool(2) conv(6,3,stride=2) relu maxpool(2) affine(8) "
                + "batchnorm relu affine(10)", [1, 12, 12], UInt64(32)
        ),
        (
            "conv(4,3,pad=1) hardswish conv(6,3) relu6 maxpool(2) conv(5,1) leakyrelu(0.1) gap affine(8) sigmoid "
                + "affine(6) hardsigmoid clip(-1,2) affine(10)", [2, 10, 10], 33
        ),
        (
            "conv(4,3,pad=1) relu :a conv(4,3,pad=1) add(a) relu :b gap conv(4,1) sigmoid mul(b) :c @b conv(4,1) :d "
                + "@a conv(4,3,pad=1) :e concat(c,d,e) sigmoid :f add(f,f) conv(12,1) add(f) avgpool(2) :g "
                + "@input avgpool(2) conv(12,1) add(g) affine(10)", [2, 8, 8], 34
        ),
    ])
    func customModel(layers: String, inputShape: [Int], seed: UInt64) throws {
        checkNetwork(try ModelSpec.named(layers, inputShape: inputShape), seed: seed, samples: 30)
    }
}
