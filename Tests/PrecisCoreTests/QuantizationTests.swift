import Foundation
import Testing

@testable import PrecisCore

@Suite struct QuantizationTests {
    @Test func roundingIsHalfToEvenAndSaturates() {
        let r = QuantRange(scale: 1, zeroPoint: 0, qmin: -127, qmax: 127)
        #expect([0.5, 1.5, 2.5, -0.5, -1.5].map(r.quantize) == [0, 2, 2, 0, -2])
        #expect(
            r.quantize(1000) == 127 && r.quantize(-1000) == -127 && r.quantize(.infinity) == 127
                && r.quantize(.nan) == 0)
        let u = QuantRange.asymmetric(low: 0, high: 255, unsigned: true)
        #expect(u.zeroPoint == 0 && u.scale == 1 && u.quantize(-3) == 0 && u.quantize(300) == 255)
    }

    @Test func errorIsWithinHalfAStepInsideTheRange() {
        var rng = RandomSource(seed: 7)
        let values = (0..<2000).map { _ in 6 * rng.uniform() - 2 }  // in [-2, 4)
        let schemes: [QuantRange] = [
            .symmetric(threshold: 4), .asymmetric(low: -2, high: 4, unsigned: false),
            .asymmetric(low: -2, high: 4, unsigned: true),
        ]
        for r in schemes {
            #expect(r.representable.contains(0) && r.fakeQuantize(0) == 0, "\(r)")
            for x in values where r.representable.contains(x) {
                #expect(abs(r.fakeQuantize(x) - x) <= r.scale / 2 * (1 + 1e-12), "\(r) at \(x)")
            }
        }
        // Asymmetric ranges use all 256 codes: a step of 6/255, against 8/254 for the symmetric one.
        #expect(abs(schemes[1].scale - 6.0 / 255) < 1e-15 && abs(schemes[0].scale - 4.0 / 127) < 1e-15)
    }

    @Test func anAllZeroChannelQuantizesExactly() {
        let r = QuantRange.symmetric(threshold: 0)
        #expect(r.scale == 1 && r.quantize(0) == 0 && r.fakeQuantize(0) == 0)
        #expect(QuantRange.asymmetric(low: 0, high: 0, unsigned: true).quantize(0) == 0)
    }

    /// A standard normal sample with ten outliers at ±50.
    func gaussianWithOutliers() -> Observer {
        var rng = RandomSource(seed: 11), o = Observer()
        var xs = (0..<100_000).map { _ in rng.normal() }
        xs += [Double](repeating: 50, count: 5) + [Double](repeating: -50, count: 5)
        o.observe(xs)
        return o
    }

    @Test func calibrationMethodsOnGaussianWithOutliers() {
        let o = gaussianWithOutliers()
        #expect(o.count == 100_010 && o.maximum == 50 && o.minimum == -50)
        #expect(o.threshold(.minmax) == 50)  // min-max never clips
        let p = o.threshold(.percentile, percentile: 99.9)
        #expect(p > 3.2 && p < 3.5, "the 99.9th percentile of |N(0,1)| is 3.29, got \(p)")
        #expect(o.threshold(.percentile, percentile: 99.99) < 6)  // the ten outliers are the top 0.01%
        let e = o.threshold(.entropy)
        #expect(e > 2 && e < 10, "entropy should clip the outliers, got \(e)")
        // MSE weighs ten errors of ~45² against 100,000 rounding errors: on this sample it keeps
        // the outliers. Its threshold must beat min-max and its own half and double on the sample.
        var rng = RandomSource(seed: 11)
        let xs =
            (0..<100_000).map { _ in rng.normal() } + [Double](repeating: 50, count: 5)
            + [Double](repeating: -50, count: 5)
        func mse(_ t: Double) -> Double {
            let r = QuantRange.symmetric(threshold: t)
            return xs.reduce(0) { $0 + ($1 - r.fakeQuantize($1)) * ($1 - r.fakeQuantize($1)) }
        }
        let m = o.threshold(.mse)
        // Analytically: 0.52·T² of rounding noise against 10·(50 − T)² of clipping, least at T ≈ 47.5.
        #expect(m > 45 && m < 50 && mse(m) <= mse(50) && mse(m) < mse(m / 2), "mse threshold \(m)")
    }

    @Test func mseClipsAPureGaussian() {
        var rng = RandomSource(seed: 13), o = Observer()
        o.observe((0..<100_000).map { _ in rng.normal() })
        let m = o.threshold(.mse)
        #expect(m > 3 && m < o.threshold(.minmax), "mse threshold \(m), largest \(o.threshold(.minmax))")
    }

    @Test func asymmetricRangesFollowTheData() {
        var o = Observer()
        o.observe((0..<10_000).map { Float($0) / 1000 })  // post-ReLU-like: 0 ... 9.999
        let r = o.quantRange(.minmax, symmetric: false, unsigned: true)
        #expect(r.zeroPoint == 0 && abs(r.representable.upperBound - 9.999) < 1e-5)
        let s = o.quantRange(.minmax, symmetric: true, unsigned: false)
        #expect(s.zeroPoint == 0 && abs(s.scale - 9.999 / 127) < 1e-7)
    }
}

@Suite struct FakeQuantTests {
    func setUp() throws -> (Network<Float>, [String: Tensor<Double>], [Float]) {
        let spec = ModelSpec(
            name: "custom", inputShape: [1, 8, 8],
            layers: try LayerSpec.parseList("conv(4,3,pad=1) relu maxpool(2) affine(10)"),
            weightInit: .he)
        let net = try Network<Float>(spec: spec, seed: 3)
        var rng = RandomSource(seed: 5)
        return (net, net.tensorValues(), (0..<(40 * 64)).map { _ in Float(rng.uniform()) })
    }

    @Test func weightsSitOnTheirGridAndAZeroChannelStaysZero() throws {
        var (net, tensors, images) = try setUp()
        for k in 0..<9 { tensors["00_conv1/W"]!.data[k] = 0 }  // filter 0 all zero
        let observers = observeActivations(net, images: images, count: 40)
        #expect(observers.keys.sorted() == [0, 3])
        let q = try FakeQuantNetwork(
            spec: net.spec, tensors: tensors, scheme: QuantScheme(weights: .perChannel, activations: .uint8Asymmetric),
            observers: observers, method: .minmax)
        let w = q.network.parameters.first { $0.name == "00_conv1/W" }!.parameter.value.data
        let scales = q.model.layers[0]!.weightScales
        #expect(scales.count == 4 && scales[0] == 1 && w[0..<9].allSatisfy { $0 == 0 })
        for (k, v) in w.enumerated() {
            let code = Double(v) / scales[k / 9]
            #expect(
                abs(code - code.rounded()) < 1e-3 && abs(code) <= 127.0001, "weight \(k) is off the int8 grid: \(code)")
        }
        #expect(q.inputRanges[0]!.zeroPoint == 0 && q.inputRanges[3]!.qmin == 0)
    }

    @Test func fakeQuantStaysCloseToFloat32() throws {
        let (net, tensors, images) = try setUp()
        let observers = observeActivations(net, images: images, count: 40)
        let x = Tensor<Float>(shape: [40, 1, 8, 8], data: images)
        let exact = net.predict(x)
        for scheme in QuantScheme.all {
            let q = try FakeQuantNetwork(
                spec: net.spec, tensors: tensors, scheme: scheme, observers: observers, method: .minmax)
            var e = ErrorStats()
            e.add(q.predict(x).data, reference: exact.data.map(Double.init), minNormal: 1e-38)
            #expect(e.sqnrDB > 25 && e.sqnrDB < 70, "\(scheme): logit SQNR \(e.sqnrDB) dB")
            #expect(q.modelBytes < 4 * tensors.values.reduce(0) { $0 + $1.count } / 3)
        }
    }
}

extension FakeQuantTests {
    /// The network of `layers` on 8×8 images (He init, `seed`), 60 random images and their
    /// observers.
    func randomNetwork(_ layers: String, seed: UInt64, imageSeed: UInt64) throws -> (
        Network<Float>, Tensor<Float>, [Int: Observer]
    ) {
        let spec = try ModelSpec.named(layers, inputShape: [1, 8, 8])
        let net = try Network<Float>(spec: spec, seed: seed)
        var rng = RandomSource(seed: imageSeed)
        let images = (0..<(60 * 64)).map { _ in Float(rng.uniform()) }
        return (net, Tensor(shape: [60, 1, 8, 8], data: images), observeActivations(net, images: images, count: 60))
    }

    /// A network with every kind of layer the integer path folds: two convolutions (one with
    /// stride 2), two affine layers, ReLU, max pooling and dropout; 60 random images.
    func foldingNetwork() throws -> (Network<Float>, Tensor<Float>, [Int: Observer]) {
        try randomNetwork(
            "conv(4,3,pad=1) relu maxpool(2) conv(6,3,stride=2,pad=1) relu affine(12) relu dropout(0.5) affine(10)",
            seed: 8, imageSeed: 9)
    }

    /// The integer path against the simulation: every quantized layer's input codes within 1,
    /// predictions (at most `differ` of 60 apart) and logits.
    func expectAgreement(
        _ fake: FakeQuantNetwork, _ integer: IntegerNetwork, _ x: Tensor<Float>, layers: Int, differ: Int = 1,
        _ what: String
    ) {
        let (a, b) = (fake.inputCodes(x), integer.inputCodes(x))
        #expect(a.count == layers && b.count == layers, "\(what): \(a.count) and \(b.count) quantized inputs")
        for (u, v) in zip(a, b) {
            #expect(
                u.count == v.count && zip(u, v).allSatisfy { abs(Int($0) - Int($1)) <= 1 },
                "\(what): codes differ by more than 1")
        }
        let (p, q) = (argmaxRows(fake.predict(x)), argmaxRows(integer.predict(x)))
        #expect(zip(p, q).filter { $0 != $1 }.count <= differ, "\(what): predictions differ")
        var e = ErrorStats()
        e.add(integer.predict(x).data, reference: fake.predict(x).data.map(Double.init), minNormal: 1e-38)
        #expect(e.sqnrDB > 30, "\(what): logits \(e.sqnrDB) dB from fake-quant")
    }

    @Test func integerPathAgreesWithFakeQuantWithinOneStep() throws {
        let (net, x, observers) = try foldingNetwork()
        for scheme in QuantScheme.all {
            for method in CalibrationMethod.allCases {
                let fake = try FakeQuantNetwork(
                    spec: net.spec, tensors: net.tensorValues(), scheme: scheme, observers: observers, method: method)
                let integer = try IntegerNetwork(spec: net.spec, model: fake.model, tensors: net.tensorValues())
                expectAgreement(fake, integer, x, layers: 4, "\(scheme) \(method)")
                #expect(integer.floatLayers.isEmpty && integer.stages.map(\.output) == [2, 4, 7, 8])
            }
        }
    }

    /// Stride-1 convolutions read their windows in place: in the first network (4 and 8 input
    /// channels, pads 1 and 2) as one GEMM over the grid with the kernel levels whose tiles do not fill
    /// a row; in the second (32 and 64 filters, 8 wide) one GEMM per output row at every level, which
    /// leaves out the window rows in the padding and corrects for them.
    @Test(arguments: [
        ("conv(4,3,pad=1) relu conv(8,3,pad=1) relu conv(8,3,pad=2) relu maxpool(2) affine(10)", 4),
        ("conv(32,3,pad=1) relu conv(64,3,pad=1) relu maxpool(2) affine(10)", 3),
    ])
    func stride1ConvolutionsReadTheirWindowsInPlace(layers: String, quantized: Int) throws {
        let (net, x, observers) = try randomNetwork(layers, seed: 6, imageSeed: 12)
        let spec = net.spec
        for scheme in QuantScheme.all {
            for method in [CalibrationMethod.minmax, .mse] {
                let fake = try FakeQuantNetwork(
                    spec: spec, tensors: net.tensorValues(), scheme: scheme, observers: observers, method: method)
                expectAgreement(
                    fake, try IntegerNetwork(spec: spec, model: fake.model, tensors: net.tensorValues()), x,
                    layers: quantized, "\(scheme) \(method) stride 1")
            }
        }
    }

    /// A graph on the integer path. A residual add of a convolution's sums and the codes of a value
    /// a quantized layer read before is requantized in the step with the ReLU after it; a step's
    /// output that a merge reads besides the next layer stays codes. A quantized layer whose output
    /// two quantized layers read dequantizes, and the add after it runs in float on the codes it
    /// reads. The branches of a concatenation requantize to the next layer's range and the
    /// concatenation joins their codes; a chain of ReLU and pooling between two convolutions folds.
    @Test func graphsRunOnTheIntegerPath() throws {
        let (net, x, observers) = try randomNetwork(
            "conv(4,3,pad=1) relu :a conv(4,3,pad=1) add(a) relu :b conv(4,1) add(b) :c @c conv(3,1) relu :d "
                + "@c conv(3,3,pad=1) :e concat(d,e) conv(6,3,pad=1) relu maxpool(2) affine(10)",
            seed: 21, imageSeed: 22)
        for scheme in QuantScheme.all {
            let fake = try FakeQuantNetwork(
                spec: net.spec, tensors: net.tensorValues(), scheme: scheme, observers: observers, method: .minmax)
            let integer = try IntegerNetwork(spec: net.spec, model: fake.model, tensors: net.tensorValues())
            expectAgreement(fake, integer, x, layers: 7, "\(scheme) graph")
            #expect(integer.stages.map(\.output) == [1, 4, 5, 8, 9, 13, 14], "\(integer.stages)")
            #expect(integer.floatLayers == [6], "\(integer.floatLayers)")
            // The simulation's adds read the codes of `a` and `b`, as conv2 and conv5 quantize them.
            let outs = fake.forwardAll(x), ranges = fake.model.layers.mapValues(\.input)
            for (add, branch, skip, reader) in [(3, 2, 1, 2), (6, 5, 4, 5)] {
                let expected = zip(outs[branch + 1].data, outs[skip + 1].data).map {
                    $0 + Float(ranges[reader]!.fakeQuantize(Double($1)))
                }
                #expect(outs[add + 1].data == expected, "\(scheme) add \(add)")
            }
        }
    }

    @Test func mixedAndDynamicIntegerPathsAgreeWithTheirSimulations() throws {
        let (net, x, observers) = try foldingNetwork()
        let tensors = net.tensorValues()
        for scheme in QuantScheme.all {
            let model = try QuantizedModel(
                spec: net.spec, tensors: tensors, scheme: scheme, observers: observers, method: .minmax)
            // conv2 (layer 3) in float: conv1's sums are dequantized, and affine1 quantizes its input again.
            let mixed = model.only([0, 5, 8])
            let fake = try FakeQuantNetwork(spec: net.spec, model: mixed, tensors: tensors)
            let integer = try IntegerNetwork(spec: net.spec, model: mixed, tensors: tensors)
            expectAgreement(fake, integer, x, layers: 3, "\(scheme) mixed")
            #expect(integer.floatLayers == [1, 2, 3, 4] && integer.modelBytes == mixed.bytes + 4 * (6 * 4 * 9 + 6))
            var dynamicModel = model
            dynamicModel.form = .dynamic
            let dynamic = try IntegerNetwork(spec: net.spec, model: dynamicModel, tensors: tensors)
            expectAgreement(
                try FakeQuantNetwork(spec: net.spec, model: dynamicModel, tensors: tensors), dynamic, x, layers: 4,
                differ: 2, "\(scheme) dynamic")
        }
        // A layer that cannot fold (batch normalization, average pooling) runs in Float between two quantized ones.
        let bnSpec = ModelSpec(
            name: "custom", inputShape: [1, 8, 8],
            layers: try LayerSpec.parseList("conv(4,3,pad=1) batchnorm relu avgpool(2) affine(10)"), weightInit: .he)
        let bn = try Network<Float>(spec: bnSpec, seed: 2)
        let bnModel = try QuantizedModel(
            spec: bnSpec, tensors: bn.tensorValues(), scheme: QuantScheme.all[2],
            observers: observeActivations(bn, images: x.data, count: 60), method: .minmax)
        let bnInteger = try IntegerNetwork(spec: bnSpec, model: bnModel, tensors: bn.tensorValues())
        expectAgreement(
            try FakeQuantNetwork(spec: bnSpec, model: bnModel, tensors: bn.tensorValues()), bnInteger, x, layers: 2,
            "batchnorm")
        #expect(bnInteger.floatLayers == [1, 2, 3])
        // Without the batch normalization's tensors it is refused, not filled with defaults.
        #expect(throws: ModelError.self) { try IntegerNetwork(spec: bnSpec, model: bnModel, tensors: [:]) }
        // Without the float weights of the layers it leaves out, the mixed model is refused.
        #expect(throws: ModelError.self) {
            try IntegerNetwork(
                spec: net.spec, model: QuantizedModel(scheme: QuantScheme.all[0], layers: [:]), tensors: [:])
        }
    }

    /// `spec`'s tensors from seed 3 with every batch normalization's scale, shift and running
    /// statistics drawn at random, so that folding it changes the layer before it.
    func trainedLookingTensors(_ spec: ModelSpec) throws -> [String: Tensor<Double>] {
        var t = try Network<Double>(spec: spec, seed: 3).tensorValues(), rng = RandomSource(seed: 4)
        for layer in try spec.geometry() {
            for (name, range) in [
                ("gamma", 0.5...1.5), ("beta", -0.2...0.2), ("running_mean", -0.3...0.3),
                ("running_var", 0.5...2.0),
            ] where t[layer.key(name)] != nil {
                t[layer.key(name)]!.data = t[layer.key(name)]!.data.map { _ in
                    range.lowerBound + (range.upperBound - range.lowerBound) * rng.uniform()
                }
            }
        }
        return t
    }

    /// The network of `layers` on `inputShape` with `trainedLookingTensors`, 60 random images from
    /// `seed` and the observers of its quantized layers' inputs on them.
    func trainedLookingNetwork(_ layers: String, inputShape: [Int], seed: UInt64) throws
        -> (spec: ModelSpec, tensors: [String: Tensor<Double>], x: Tensor<Float>, observers: [Int: Observer])
    {
        let spec = try ModelSpec.named(layers, inputShape: inputShape)
        let t = try trainedLookingTensors(spec)
        var rng = RandomSource(seed: seed)
        let images = (0..<(60 * inputShape.reduce(1, *))).map { _ in Float(rng.uniform()) }
        let observers = observeActivations(try Network<Float>(spec: spec, parameters: t), images: images, count: 60)
        return (spec, t, Tensor(shape: [60] + inputShape, data: images), observers)
    }

    /// A batch normalization that reads a convolution (of any groups) or affine layer which nothing
    /// else reads folds into it: the folded network computes the same function in Double, and one
    /// whose layer has another reader stays.
    @Test func batchNormalizationFoldsIntoTheLayerBeforeIt() throws {
        let spec = try ModelSpec.named(
            "conv(4,3,pad=1) :c batchnorm relu add(c) conv(8,1) batchnorm relu6 conv(8,3,pad=1,groups=8) batchnorm "
                + "gap affine(6) batchnorm affine(10)", inputShape: [1, 8, 8])
        let folds = spec.foldableBatchNorms
        #expect(folds == [5: 4, 8: 7, 11: 10])
        let t = try trainedLookingTensors(spec)
        let plain = try Network<Double>(spec: spec, parameters: t)
        let folded = try Network<Double>(
            spec: spec, parameters: try spec.folding(Set(folds.keys), in: t), folded: Set(folds.keys))
        var rng = RandomSource(seed: 5)
        let x = Tensor<Double>(shape: [20, 1, 8, 8], data: (0..<1280).map { _ in rng.uniform() })
        let (a, b) = (plain.predict(x), folded.predict(x))
        let largest = a.data.map(abs).max()!
        #expect(largest > 0.1 && zip(a.data, b.data).allSatisfy { abs($0 - $1) <= 1e-12 * largest })
        // The normalization's own values changed the function: leaving it out would not.
        let unfoldedWithout = try Network<Double>(spec: spec, parameters: t, folded: Set(folds.keys))
        #expect(zip(a.data, unfoldedWithout.predict(x).data).contains { abs($0 - $1) > 1e-3 * largest })
        #expect(throws: ModelError.self) { try Network<Double>(spec: spec, parameters: t, folded: [1]) }
        #expect(throws: ModelError.self) { try spec.folding([1], in: t) }
        #expect(throws: ModelError.self) { try spec.folding([99], in: t) }
    }

    /// int8 folds every batch normalization it can before quantizing, and the integer path runs the
    /// folded layers with the clips after them (ReLU6, and a clip below the next layer's range) in
    /// its requantization clamp, as the simulation clips.
    @Test func theIntegerPathRunsFoldedNormalizationsAndClips() throws {
        let (spec, t, x, observers) = try trainedLookingNetwork(
            "conv(4,3,pad=1) :c batchnorm relu add(c) conv(8,1) batchnorm clip(0,0.3) conv(8,3,pad=1) batchnorm "
                + "relu6 maxpool(2) affine(6) batchnorm affine(10)", inputShape: [1, 8, 8], seed: 6)
        for scheme in QuantScheme.all {
            let model = try QuantizedModel(
                spec: spec, tensors: t, scheme: scheme, observers: observers, method: .minmax)
            #expect(model.folded == [5, 8, 12])
            var inputs = model.layers.mapValues(\.input)
            // conv 7's input range reaches far beyond the clip's 0.3: only the clamp keeps the codes at 0.3.
            inputs[7] = .asymmetric(low: -1, high: 2, unsigned: scheme.activations == .uint8Asymmetric)
            if scheme.activations == .int8Symmetric { inputs[7] = .symmetric(threshold: 2) }
            for m in [model, try QuantizedModel(spec: spec, tensors: t, scheme: scheme, inputs: inputs)] {
                let fake = try FakeQuantNetwork(spec: spec, model: m, tensors: t)
                let integer = try IntegerNetwork(spec: spec, model: m, tensors: t)
                expectAgreement(fake, integer, x, layers: 5, "\(scheme) folded")
                #expect(integer.stages.map(\.output) == [0, 6, 10, 12, 13], "\(integer.stages)")
            }
        }
        // A folded layer whose output goes to a merge that runs in float: its stage leaves the
        // normalization's output.
        let merged = try ModelSpec.named(
            "conv(4,3,pad=1) :a relu conv(4,3,pad=1) batchnorm add(a) relu affine(10)", inputShape: [1, 8, 8])
        let mt = try trainedLookingTensors(merged)
        let mnet = try Network<Float>(spec: merged, parameters: mt)
        let m = try QuantizedModel(
            spec: merged, tensors: mt, scheme: QuantScheme.all[2],
            observers: observeActivations(mnet, images: x.data, count: 60),
            method: .minmax)
        let mi = try IntegerNetwork(spec: merged, model: m, tensors: mt)
        expectAgreement(try FakeQuantNetwork(spec: merged, model: m, tensors: mt), mi, x, layers: 3, "merge")
        #expect(mi.stages.map(\.output) == [0, 3, 6] && mi.forwardAll(x)[3] == nil && mi.forwardAll(x)[4] != nil)
        let unfolded = try QuantizedModel(
            spec: spec, tensors: t, scheme: QuantScheme.all[0], observers: observers, method: .minmax, fold: false)
        #expect(unfolded.folded.isEmpty)
        #expect(try IntegerNetwork(spec: spec, model: unfolded, tensors: t).stages.map(\.output) == [0, 4, 7, 11, 13])
        // A number format encodes the folded weights: close to them, far from the unfolded ones.
        let format = try FormatModel(
            spec: spec, tensors: t, mode: Precision(name: "float8-e4m3")!.format!, observers: observers)
        #expect(format.folded == [5, 8, 12])
        let sqnr = try format.weightSQNR(spec: spec, tensors: t)
        #expect(sqnr.values.allSatisfy { $0 > 25 }, "\(sqnr)")
    }

    /// Depthwise convolutions of any geometry (square and rectangular kernels, strides per axis,
    /// asymmetric padding, dilation) run on the integer path with their own kernel, one step each:
    /// 1×1, depthwise, 1×1 with folded normalizations and ReLU6 between them requantize from one to
    /// the next, and the whole agrees with its simulation.
    @Test func depthwiseConvolutionsRunOnTheIntegerPath() throws {
        let (spec, t, x, observers) = try trainedLookingNetwork(
            "conv(8,1) batchnorm relu6 conv(8,3,pad=1,groups=8) batchnorm relu6 conv(12,1) batchnorm relu "
                + "conv(12,size=1x3,stride=2x1,pad=0x1x1x2,dilation=1x2,groups=12) relu6 "
                + "conv(12,3,stride=2,pad=1,groups=12) gap affine(10)", inputShape: [3, 9, 9], seed: 8)
        for scheme in QuantScheme.all {
            let model = try QuantizedModel(
                spec: spec, tensors: t, scheme: scheme, observers: observers, method: .minmax)
            let integer = try IntegerNetwork(spec: spec, model: model, tensors: t)
            expectAgreement(
                try FakeQuantNetwork(spec: spec, model: model, tensors: t), integer, x, layers: 6, "\(scheme)")
            #expect(integer.stages.map(\.output) == [2, 5, 8, 10, 11, 13], "\(integer.stages)")
            #expect(integer.floatLayers == [12], "\(integer.floatLayers)")
        }
    }

    @Test func integerLayerOutputsMatchTheSimulationsWhereTheyExist() throws {
        let (net, x, observers) = try foldingNetwork()
        let fake = try FakeQuantNetwork(
            spec: net.spec, tensors: net.tensorValues(), scheme: QuantScheme.all[5], observers: observers, method: .mse)
        let integer = try IntegerNetwork(spec: net.spec, model: fake.model, tensors: net.tensorValues())
        let (a, b) = (fake.forwardAll(x), integer.forwardAll(x))
        #expect(a.count == 10 && b.count == 10)
        #expect(b.indices.filter { b[$0] != nil } == [0, 3, 5, 8, 9])
        for k in b.indices {
            guard let y = b[k] else { continue }
            var e = ErrorStats()
            e.add(y.data, reference: a[k].data.map(Double.init), minNormal: 0)
            #expect(y.shape == a[k].shape && e.sqnrDB > 30, "layer output \(k): \(e.sqnrDB) dB")
        }
    }
}

extension FakeQuantTests {
    @Test func biasCorrectionRemovesTheMeanShiftOfTheFirstLayer() throws {
        let (net, tensors, images) = try setUp()
        let observers = observeActivations(net, images: images, count: 40)
        let fake = try FakeQuantNetwork(
            spec: net.spec, tensors: tensors, scheme: QuantScheme(weights: .perTensor, activations: .int8Symmetric),
            observers: observers, method: .minmax)
        let corrected = try FakeQuantNetwork(
            spec: net.spec, model: try fake.biasCorrected(spec: net.spec, tensors: tensors, images: images, count: 40),
            tensors: tensors)
        let x = Tensor<Float>(shape: [40, 1, 8, 8], data: images)
        let exact = net.forward(x, layers: 0..<1)
        func meanShift(_ q: FakeQuantNetwork) -> [Double] {
            let y = q.forwardAll(x)[1]
            var s = [Double](repeating: 0, count: 4)
            for k in y.data.indices { s[k / 64 % 4] += Double(exact.data[k] - y.data[k]) / (40 * 64) }
            return s
        }
        let (before, after) = (meanShift(fake), meanShift(corrected))
        let layer = corrected.model.layers[0]!, step = layer.input.scale * layer.weightScales[0]
        #expect(after.allSatisfy { abs($0) <= step / 2 + 1e-6 }, "shift after \(after), bias step \(step)")
        #expect(zip(before, after).allSatisfy { abs($1) <= abs($0) + 1e-6 }, "before \(before), after \(after)")
    }
}
