import Testing

@testable import PrecisCore

/// Mixed-precision training: the loss scaler's rules, gradients through 16-bit storage, skipped
/// steps on overflow, and master weights kept in float32.
@Suite struct MixedPrecisionTests {
    @Test func lossScalerSkipsBacksOffAndGrows() {
        var s = LossScaler(growthInterval: 3)
        #expect(s.scale == 32768)
        #expect(!s.step(finite: false) && s.scale == 16384 && s.cleanSteps == 0)
        #expect(s.step(finite: true) && s.step(finite: true) && s.scale == 16384 && s.cleanSteps == 2)
        #expect(s.step(finite: true) && s.scale == 32768 && s.cleanSteps == 0)
        #expect(!s.step(finite: false) && s.step(finite: true) && s.cleanSteps == 1)
        var fixed = LossScaler(scale: 1, growthInterval: 0)
        #expect(!fixed.step(finite: false) && fixed.scale == 1)
        for _ in 0..<10 { _ = fixed.step(finite: true) }
        #expect(fixed.scale == 1)
        var floor = LossScaler(scale: 1.5)
        _ = floor.step(finite: false)
        #expect(floor.scale == 1)
    }

    static let spec = try! ModelSpec.named("conv(3,3) relu maxpool(2) affine(10)", inputShape: [1, 8, 8])

    static func tiny() -> Dataset { tinyDataset(seed: 9) }

    @Test(arguments: [StorageFormat.float16, .bfloat16])
    func gradientsThroughSixteenBitsAreCloseAndUnscaled(_ storage: StorageFormat) throws {
        let data = Self.tiny(), float = try Network<Float>(spec: Self.spec, seed: 1)
        let mixed = try float.storing(storage, seed: 1)
        let before = mixed.tensorValues()
        let x: Tensor<Float> = data.batch(data.trainImages, Array(0..<10)[...]), t = Array(data.trainLabels[0..<10])
        _ = float.gradient(x, t, inputGradient: false)
        let (_, finite) = mixed.mixedGradient(x, t, scale: 1024)
        #expect(finite && mixed.tensorValues() == before, "master weights are restored")
        let bound = storage == .float16 ? 2e-2 : 5e-2
        for (a, b) in zip(float.parameters, mixed.parameters) where a.parameter.learnable {
            let g = a.parameter.grad.data, h = b.parameter.grad.data
            let err = zip(g, h).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +).squareRoot()
            let norm = g.map { Double($0 * $0) }.reduce(0, +).squareRoot()
            #expect(err <= bound * norm, "\(a.name): relative error \(err / norm)")
        }
        // A scale that overflows half precision is detected.
        if storage == .float16 {
            #expect(!mixed.mixedGradient(x, t, scale: 0x1p40).finite && mixed.tensorValues() == before)
        }
    }

    @Test func overflowingStepsAreSkippedAndRecorded() throws {
        var config = TrainingConfig()
        (config.epochs, config.batchSize, config.precision) = (1, 10, .mixedFloat16)
        config.lossScaler = LossScaler(scale: 0x1p60)
        let net = try Network<Float>(spec: Self.spec, seed: 1).storing(.float16, seed: 1)
        let before = net.tensorValues()
        let history = try Trainer(config).run(net, on: Self.tiny())
        #expect(history.skippedSteps == [1, 2, 3, 4] && history.lossScale == [0x1p60, 0x1p59, 0x1p58, 0x1p57])
        #expect(net.tensorValues() == before)
    }
}

/// Pure float16 training and the counts that show what half loses: gradients below its normal
/// range, and updates rounded away.
@Suite struct Float16TrainingTests {
    @Test func underflowCountsZerosAndSubnormals() {
        var u = GradientUnderflow(layer: "00_conv1")
        u.count([Float(0), 1e-8, 0x1p-20, 1e-3, -0x1p-15, 0x1p-14])
        #expect(u == GradientUnderflow(layer: "00_conv1", zero: 2, subnormal: 2, total: 6))
        var half = GradientUnderflow(layer: "00_conv1")
        half.count([Float16(0), Float16(-0.0), Float16(0x1p-24), Float16(0x1p-15), Float16(0x1p-14)])
        #expect(half == GradientUnderflow(layer: "00_conv1", zero: 2, subnormal: 2, total: 5))
    }

    @Test func halfTrainingRoundsAwayMoreUpdatesThanFloat32() throws {
        var config = TrainingConfig()
        (config.epochs, config.batchSize, config.optimizer) = (1, 10, .momentum)
        let data = tinyDataset(seed: 9), spec = MixedPrecisionTests.spec
        let single = try Trainer(config).run(try Network<Float>(spec: spec, seed: 1), on: data)
        config.precision = .float16
        let half = try Trainer(config).run(try Network<Float16>(spec: spec, seed: 1), on: data)
        #expect(half.gradientUnderflow.map(\.layer) == ["00_conv1", "03_affine1"])
        // 4 steps of 30 and 280 gradient values.
        #expect(half.gradientUnderflow.map(\.total) == [120, 1120])
        #expect(single.gradientUnderflow.map(\.total) == [120, 1120])
        #expect(half.unchangedFraction.count == 1 && single.unchangedFraction.count == 1)
        #expect(half.unchangedFraction[0] > single.unchangedFraction[0] + 0.05, "\(half.unchangedFraction)")
        #expect(half.loss.allSatisfy { $0.isFinite })
    }
}
