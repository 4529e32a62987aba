import Foundation
import Testing

@testable import PrecisCore

@Suite struct ReportTests {
    @Test func errorStatsOnKnownValues() {
        var e = ErrorStats()
        e.add([1, 2, 3] as [Double], reference: [1, 2.5, 3], minNormal: Double.leastNormalMagnitude)
        #expect(e.count == 3 && e.signal == 1 + 6.25 + 9 && e.noise == 0.25)
        #expect(abs(e.relativeL2 - (0.25 / 16.25).squareRoot()) < 1e-15)
        #expect(abs(e.sqnrDB - 10 * log10(65.0)) < 1e-12)
        #expect(e.maxAbsolute == 0.5 && abs(e.meanAbsolute - 0.5 / 3) < 1e-15)
        var exact = ErrorStats()
        exact.add([1, -2] as [Float], reference: [1, -2], minNormal: 1e-38)
        #expect(exact.sqnrDB == .infinity && exact.relativeL2 == 0)
    }

    @Test func errorStatsCountInfNaNSubnormalAndFlushed() {
        var e = ErrorStats()
        let tiny = Float16(1e-5)  // a half subnormal
        e.add(
            [.infinity, .nan, tiny, 0, 0] as [Float16], reference: [1, 1, 1e-5, 1e-6, 0],
            minNormal: PrecisionMode.float16.minNormal)
        #expect(e.infinities == 1 && e.nans == 1 && e.subnormals == 1 && e.flushed == 1)
        #expect(e.sqnrDB == -.infinity && e.maxAbsolute == .infinity)
    }

    /// The vector kernels give the Swift loop's figures bit for bit: sums in element order, every
    /// count, for each scalar type, with NaN, infinities, subnormals, flushed zeros and a tail that
    /// is not a whole vector.
    @Test func vectorErrorStatsEqualTheLoop() {
        var rng = RandomSource(seed: 8)
        let reference = (0..<1_003).map { i in i % 97 == 3 ? 1e-7 : rng.normal() * (i % 5 == 0 ? 1e-3 : 10) }
        func check<T: NetworkScalar>(_: T.Type, minNormal: Double) {
            // Without vector kernels (PRECIS_KERNELS=portable) half has no C version to compare.
            guard errorKernels || T.self != Float16.self else { return }
            var values = reference.map { T($0 * 1.01) }
            for i in stride(from: 0, to: values.count, by: 89) { values[i] = .nan }
            for i in stride(from: 7, to: values.count, by: 131) { values[i] = -.infinity }
            for i in stride(from: 3, to: values.count, by: 97) { values[i] = 0 }
            values[11] = T(minNormal / 4)
            var loop = ErrorStats(), vector = ErrorStats()
            for part in [0..<1_003, 0..<5, 200..<1_003] {
                let v = Array(values[part]), r = Array(reference[part])
                loop.add(v, reference: r, minNormal: minNormal, vector: false)
                vector.add(v, reference: r, minNormal: minNormal, vector: true)
            }
            #expect(loop.nans > 0 && loop.infinities > 0 && loop.subnormals > 0 && loop.flushed > 0, "\(T.self)")
            #expect(vector == loop, "\(T.self)")
            var finite = ErrorStats(), finiteLoop = ErrorStats()
            let clean = reference.map { T($0 * 1.01) }
            finite.add(clean, reference: reference, minNormal: minNormal, vector: true)
            finiteLoop.add(clean, reference: reference, minNormal: minNormal, vector: false)
            #expect(finite == finiteLoop && finite.noise > 0 && finite.noise.isFinite, "\(T.self)")
        }
        check(Float.self, minNormal: 1e-6)
        check(Double.self, minNormal: 1e-4)
        check(Float16.self, minNormal: PrecisionMode.float16.minNormal)
    }

    @Test func mergeEqualsOneAdd() {
        let a: Tensor<Double> = randomTensor([64], seed: 1), r: Tensor<Double> = randomTensor([64], seed: 2)
        var whole = ErrorStats(), left = ErrorStats(), right = ErrorStats()
        whole.add(a.data, reference: r.data, minNormal: 1e-300)
        left.add(Array(a.data[0..<30]), reference: Array(r.data[0..<30]), minNormal: 1e-300)
        right.add(Array(a.data[30...]), reference: Array(r.data[30...]), minNormal: 1e-300)
        left.merge(right)
        #expect(left.count == whole.count && left.maxAbsolute == whole.maxAbsolute)
        #expect(abs(left.noise - whole.noise) < 1e-12 && abs(left.signal - whole.signal) < 1e-12)
    }

    @Test func pairedChangeAndInterval() {
        let labels = [0, 0, 0, 0, 0], reference = [0, 0, 1, 1, 0], predicted = [0, 1, 0, 1, 1]
        let c = PairedChange(predicted: predicted, reference: reference, labels: labels)
        #expect(c.gained == 1 && c.lost == 2 && c.differs == 3 && c.unanswered == 0)
        #expect(abs(c.change - -0.2) < 1e-15 && abs(c.agreement - 0.4) < 1e-15)
        #expect(c.interval.low < c.change && c.change < c.interval.high)
        // Agrees with McNemar's exact test at 10,000 images: 5 lost of 5 (p = 0.0625) holds 0,
        // 6 of 6 (p = 0.031) does not.
        func interval(lost: Int) -> (low: Double, high: Double) {
            let labels = [Int](repeating: 0, count: 10_000)
            return PairedChange(predicted: (0..<10_000).map { $0 < lost ? 1 : 0 }, reference: labels, labels: labels)
                .interval
        }
        #expect(interval(lost: 5).high > 0 && interval(lost: 6).high < 0)
    }

    /// With no changed answer the interval is the continuity-corrected Wilson bound of 0 of n on
    /// either side, (z² + 1 + z·√(z² + 2 − 1/n)) / (2(n + z²)): ±94.5 points for one image, ±34.5 for
    /// 10 and ±0.048 for 10,000; never the point [0, 0].
    @Test(arguments: [(1, 0.945), (10, 0.345), (10_000, 0.00048)])
    func noChangedAnswerIsNoCertainty(n: Int, rounded: Double) {
        let labels = [Int](repeating: 0, count: n),
            c = PairedChange(predicted: labels, reference: labels, labels: labels)
        let z = 1.959963984540054, m = Double(n)
        let bound = (z * z + 1 + z * (z * z + 2 - 1 / m).squareRoot()) / (2 * (m + z * z))
        #expect(abs(c.interval.high - bound) < 1e-12 && abs(c.interval.low + bound) < 1e-12)
        #expect(abs(c.interval.high - rounded) < 0.01 * rounded)
    }

    /// The interval's exact coverage, summed over every outcome of n paired images (multinomial in
    /// gained, lost and the rest), is 95% or more for n = 1, 10 and 30 over rates of change from 0 to
    /// 30%, where the Wald interval's falls to 1%.
    @Test(arguments: [1, 10, 30])
    func intervalCoversTheTrueChange(n: Int) {
        func logFactorial(_ k: Int) -> Double { (1...max(k, 1)).reduce(0.0) { $0 + log(Double($1)) } }
        let rates = [0, 0.001, 0.01, 0.05, 0.1, 0.3]
        var worst = 1.0
        for pg in rates {
            for pl in rates {
                var covered = 0.0
                for g in 0...n {
                    for l in 0...(n - g) {
                        let logP =
                            logFactorial(n) - logFactorial(g) - logFactorial(l) - logFactorial(n - g - l)
                            + (g > 0 ? Double(g) * log(pg) : 0) + (l > 0 ? Double(l) * log(pl) : 0)
                            + (n - g - l > 0 ? Double(n - g - l) * log(1 - pg - pl) : 0)
                        let p = (g > 0 && pg == 0) || (l > 0 && pl == 0) ? 0 : exp(logP)
                        // The first g images gained (right, float32 wrong), the next l lost.
                        let c = PairedChange(
                            predicted: (0..<n).map { $0 >= g && $0 < g + l ? 1 : 0 },
                            reference: (0..<n).map { $0 < g ? 1 : 0 }, labels: [Int](repeating: 0, count: n))
                        if c.interval.low - 1e-12 <= pg - pl && pg - pl <= c.interval.high + 1e-12 { covered += p }
                    }
                }
                worst = min(worst, covered)
            }
        }
        #expect(worst >= 0.95, "coverage \(worst)")
    }

    @Test func noAnswerIsWrongAndNeverAgrees() {
        let logits = Tensor<Float>(shape: [3, 3], data: [1, 2, 0, .nan, 5, 1, .infinity, 0, 0])
        #expect(argmaxRows(logits) == [1, -1, -1])
        let c = PairedChange(predicted: [1, -1, -1], reference: [1, 1, -1], labels: [1, 1, 1])
        #expect(c.differs == 2 && c.unanswered == 2 && c.lost == 1 && c.gained == 0 && c.agreement < 0.34)
    }

    /// A small network with random weights, and 30 random images with labels.
    func setUp() throws -> (Network<Double>, [Float], [Int]) {
        let spec = ModelSpec(
            name: "custom", inputShape: [1, 8, 8],
            layers: try LayerSpec.parseList("conv(4,3,pad=1) relu maxpool(2) affine(10)"),
            weightInit: .he)
        let net = try Network<Double>(spec: spec, seed: 3)
        var rng = RandomSource(seed: 5)
        let images = (0..<(30 * 64)).map { _ in Float(rng.uniform()) }
        return (net, images, (0..<30).map { $0 % 10 })
    }

    @Test func reportRanksModesByTheirPrecision() throws {
        let (net, images, _) = try setUp()
        let tensors = net.tensorValues()
        let f32 = ModeReport(.float32, try Network<Float>(spec: net.spec, parameters: tensors))
        let f16 = ModeReport(.float16Acc32, try Network<Float>(spec: net.spec, parameters: tensors, storage: .float16))
        let f64 = ModeReport(.float64, net)
        runPrecisionReport(reference: net, [f64, f32, f16], images: images, count: 30, batchSize: 7)
        #expect(f64.predicted == argmaxRows(net.predict(Tensor(shape: [30, 1, 8, 8], data: images.map(Double.init)))))
        #expect(f64.logits.sqnrDB == .infinity && f64.predicted.count == 30)
        #expect(f32.layers.count == 4 && f32.layers.allSatisfy { $0.count > 0 && $0.relativeL2 < 1e-6 })
        #expect(f16.layers.allSatisfy { $0.relativeL2 > 1e-6 && $0.relativeL2 < 1e-2 })
        #expect(f16.logits.sqnrDB < f32.logits.sqnrDB)
        #expect(f32.modelBytes == 2 * f16.modelBytes && f64.modelBytes == 2 * f32.modelBytes)
    }

    @Test func inputScaleOverflowsHalfButNotBfloat16() throws {
        let (net, images, _) = try setUp()
        let tensors = net.tensorValues()
        let half = ModeReport(.float16, try Network<Float16>(spec: net.spec, parameters: tensors), inputScale: 1e6)
        let brain = ModeReport(
            .bfloat16Acc32, try Network<Float>(spec: net.spec, parameters: tensors, storage: .bfloat16), inputScale: 1e6
        )
        runPrecisionReport(reference: net, [half, brain], images: images, count: 30, inputScale: 1e6)
        #expect(half.layers[0].infinities > 0 && half.logits.sqnrDB == -.infinity)
        #expect(brain.layers.allSatisfy { $0.infinities == 0 && $0.nans == 0 })
    }

    @Test func explainIsolatesOneLayer() throws {
        let (net, images, labels) = try setUp()
        let tensors = net.tensorValues()
        let net32 = try Network<Float>(spec: net.spec, parameters: tensors)
        let predicted32 = argmaxRows(net32.predict(Tensor(shape: [30, 1, 8, 8], data: images)))
        let effects = explainLayers(
            float32: net32, reduced: try Network<Float>(spec: net.spec, parameters: tensors, storage: .bfloat16),
            reference: net, images: images, labels: labels, float32Predicted: predicted32, batchSize: 8)
        #expect(effects.map(\.layer) == net.layerNames)
        // Each effect is smaller than running every layer in bfloat16, and larger than float32 alone.
        let all = ModeReport(
            .bfloat16Acc32, try Network<Float>(spec: net.spec, parameters: tensors, storage: .bfloat16))
        let f32 = ModeReport(.float32, net32)
        runPrecisionReport(reference: net, [all, f32], images: images, count: 30)
        #expect(effects.allSatisfy { $0.logits.sqnrDB > all.logits.sqnrDB && $0.logits.sqnrDB < f32.logits.sqnrDB })
        // With float32 itself as the "reduced" network nothing changes.
        let none = explainLayers(
            float32: net32, reduced: net32, reference: net, images: images, labels: labels,
            float32Predicted: predicted32)
        #expect(none.allSatisfy { $0.change.differs == 0 && abs($0.logits.sqnrDB - f32.logits.sqnrDB) < 1e-9 })
    }
}
