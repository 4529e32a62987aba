import Testing

@testable import PrecisCore

struct EqualizationTests {
    /// Convolutions with batch normalization, a depthwise convolution, pooling and affine layers: four
    /// pairs, the last two of which can absorb a shift (no padding after their first layer).
    static let spec = try! ModelSpec.named(
        "conv(6,3,pad=1) batchnorm relu conv(6,3,pad=1,groups=6) relu maxpool(2,stride=2) conv(8,3) relu "
            + "affine(12) relu dropout(0.5) affine(10)",
        inputShape: [2, 10, 10])

    /// Random tensors for `spec`, the batch normalization's statistics and the ranges of the channels far apart.
    static func tensors(_ spec: ModelSpec, seed: UInt64 = 1) throws -> [String: Tensor<Double>] {
        var t = try Network<Double>(spec: spec, seed: seed).tensorValues()
        var rng = RandomSource(seed: seed + 7)
        for (key, v) in t {
            var v = v
            for k in v.data.indices {
                let u = rng.uniform()
                switch key.split(separator: "/").last! {
                case "gamma": v.data[k] = 0.2 + 3 * u
                case "beta", "b": v.data[k] = u - 0.3
                case "running_mean": v.data[k] = u - 0.5
                case "running_var": v.data[k] = 0.5 + u
                default: v.data[k] *= [0.05, 1, 8][k % 3]
                }
            }
            t[key] = v
        }
        return t
    }

    static func logits(_ spec: ModelSpec, _ tensors: [String: Tensor<Double>], _ x: Tensor<Double>) throws -> [Double] {
        try Network<Double>(spec: spec, parameters: tensors).predict(x).data
    }

    @Test func pairsStopAtMergesClipsAndPadding() throws {
        let pairs = try Self.spec.equalizedPairs()
        #expect(pairs.map(\.first) == [0, 3, 6, 8] && pairs.map(\.second) == [3, 6, 8, 11])
        #expect(pairs.map(\.absorbs) == [false, true, true, true] && pairs[0].batchNorm == 1)
        let resnet = try ModelSpec.named("resnet20").equalizedPairs()
        #expect(resnet.count == 9 && resnet.allSatisfy { $0.batchNorm != nil && !$0.absorbs })
        let mobile = try ModelSpec.named("mobilenetv2"), linear = try mobile.equalizedPairs()
        #expect(!linear.isEmpty && linear.allSatisfy { $0.batchNorm != nil && $0.absorbs })
        // Only a projection read by the next block's expansion alone: no ReLU6 between, no residual sum.
        #expect(linear.allSatisfy { mobile.readers[$0.output] == [$0.second] })
        #expect(try ModelSpec.named("conv(4,3) relu6 conv(4,3) relu affine(10)").equalizedPairs().map(\.first) == [2])
    }

    /// The equalized network computes what the master does, and each pair's two weight ranges meet at
    /// the geometric mean: the closed form's fixed point.
    @Test func equalizationKeepsTheFunctionAndEqualizesTheRanges() throws {
        let spec = Self.spec, master = try Self.tensors(spec)
        let e = try Equalization(spec: spec, tensors: master)
        let equalized = try e.applied(to: master, spec: spec)
        let x: Tensor<Double> = randomTensor([4] + spec.inputShape, seed: 3)
        let (before, after) = (try Self.logits(spec, master, x), try Self.logits(spec, equalized, x))
        #expect(zip(before, after).allSatisfy { abs($0 - $1) <= 1e-10 * max(1, abs($0)) })
        #expect(e.scales.values.contains { $0.contains { abs($0 - 1) > 0.5 } })
        let folded = try spec.folding(Set(spec.foldableBatchNorms.keys), in: equalized), geometry = try spec.geometry()
        for p in try spec.equalizedPairs() {
            let a = geometry[p.first].gemm!, rows = try Equalization.rows(geometry[p.first], folded)
            let r1 = (0..<a.channels).map { i in rows[i * a.length..<(i + 1) * a.length].map(abs).max()! }
            let r2 = Equalization.inputRanges(
                geometry[p.second], try Equalization.rows(geometry[p.second], folded), channels: a.channels)
            #expect(zip(r1, r2).allSatisfy { abs($0 - $1) <= 1e-6 * $0 }, "\(geometry[p.first].name)")
        }
    }

    /// High biases move into the next layer: the outputs on the calibration images stay the same and
    /// the absorbing layers' inputs start at zero.
    @Test func highBiasesAreAbsorbedExactlyOnTheCalibrationImages() throws {
        let spec = Self.spec
        var master = try Self.tensors(spec)
        master["08_affine1/b"]!.data = master["08_affine1/b"]!.data.map { $0 + 40 }
        let images: Tensor<Float> = randomTensor([20] + spec.inputShape, seed: 5)
        let e = try Equalization(spec: spec, tensors: master).absorbingHighBiases(
            spec: spec, tensors: master, images: images.data, count: 20)
        #expect(e.shifts[8]!.filter { $0 > 0 }.count >= 3 && e.shifts[0] == nil)
        let equalized = try e.applied(to: master, spec: spec)
        let x = Tensor(shape: images.shape, data: images.data.map(Double.init))
        let (before, after) = (try Self.logits(spec, master, x), try Self.logits(spec, equalized, x))
        #expect(zip(before, after).allSatisfy { abs($0 - $1) <= 1e-9 * max(1, abs($0)) })
        let outs = try Network<Double>(spec: spec, parameters: equalized).forwardAll(x)
        let h = outs[11].data, units = 12
        let least = (0..<units).map { u in stride(from: u, to: h.count, by: units).map { h[$0] }.min()! }
        #expect(zip(least, e.shifts[8]!).allSatisfy { $1 == 0 || abs($0) <= 1e-9 })
    }

    @Test func equalizedNamesParse() {
        #expect(Precision(name: "int4-channel-cle-gptq")?.format?.equalized == true)
        #expect(Precision(name: "int4-channel-cle-gptq")?.format?.formatName == "int4-channel")
        #expect(Precision(name: "nvfp4-cle-mixed")?.name == "nvfp4-cle-mixed")
        for bad in ["int4-channel-gptq-cle", "nvfp4-cle-cle", "cle", "float32-cle"] {
            #expect(Precision(name: bad) == nil)
        }
    }
}
