import Testing

@testable import PrecisCore

/// Data augmentation: the transforms on known images, the parser, and the same images (and
/// weights) for the same seed.
@Suite struct AugmentationTests {
    /// A 4×5 image whose pixel (x, y) is 1 + x + 10·y.
    static let image: [Float] = (0..<20).map { (i: Int) -> Float in Float(1 + i % 5 + 10 * (i / 5)) }

    func transformed(_ d: Augmentation.Draw, _ image: [Float] = image) -> [Float] {
        var out = image, scratch = image
        out.withUnsafeMutableBufferPointer { p in
            Augmentation.transform(p.baseAddress!, channels: 1, height: 4, width: 5, d, scratch: &scratch)
        }
        return out
    }

    @Test func shiftsAndMirrorsMovePixelsExactly() {
        // One pixel right and one down: row 0 and column 0 are zeros, the rest the pixel up and left.
        let shifted = transformed(Augmentation.Draw(dx: 1, dy: 1))
        #expect(shifted == [0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 11, 12, 13, 14, 0, 21, 22, 23, 24])
        let mirrored = transformed(Augmentation.Draw(mirror: true))
        #expect(Array(mirrored.prefix(5)) == [5, 4, 3, 2, 1])
        #expect(transformed(Augmentation.Draw()) == Self.image)
    }

    @Test func rotationAndScaleSampleBilinearly() {
        // A 3×3 image turned a quarter (output (x, y) samples (y, 2 − x)): the centre stays.
        let square: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        var out = square, scratch = square
        out.withUnsafeMutableBufferPointer { p in
            Augmentation.transform(
                p.baseAddress!, channels: 1, height: 3, width: 3, Augmentation.Draw(angle: .pi / 2), scratch: &scratch)
        }
        let expected: [Float] = [7, 4, 1, 8, 5, 2, 9, 6, 3]
        #expect(zip(out, expected).allSatisfy { abs($0 - $1) < 1e-5 }, "\(out)")
        // Scaled by 2 about the centre (2, 1.5): pixel (3, 1) samples (2.5, 1.25), and (3, 2) samples
        // (2.5, 1.75); the image is linear, 1 + x + 10·y, so bilinear sampling gives 16 and 21.
        let zoomed = transformed(Augmentation.Draw(factor: 2))
        #expect(abs(zoomed[1 * 5 + 3] - 16) < 1e-5 && abs(zoomed[2 * 5 + 3] - 21) < 1e-5)
    }

    @Test func parsingAndItsErrors() throws {
        let a = try Augmentation(parsing: "shift:2,rotate:10,scale:0.1,crop:3,flip")
        #expect(a == Augmentation(shift: 2, rotation: 10, scale: 0.1, crop: 3, flip: true))
        #expect(try Augmentation(parsing: a.description) == a)
        for bad in ["", "shift", "shift:0", "shift:2,shift:3", "rotate:200", "scale:1", "flip:1", "blur:2", "shift:2,"]
        {
            #expect(throws: ModelError.self, "\(bad)") { try Augmentation(parsing: bad) }
        }
        #expect(a.refusal(for: "mnist5k") != nil && a.refusal(for: "fashion-mnist") == nil)
        #expect(Augmentation(shift: 1).refusal(for: "mnist5k") == nil)
    }

    @Test func theSameSeedGivesTheSameImages() {
        let a = Augmentation(shift: 2, rotation: 15, scale: 0.2, crop: 1)
        var rng = RandomSource(seed: 4)
        let images = (0..<(8 * 64)).map { _ in Float(rng.uniform()) }
        func run(_ seed: UInt64) -> [Float] {
            var x = images, r = RandomSource(seed: seed)
            a.apply(&x, count: 8, shape: [1, 8, 8], rng: &r)
            return x
        }
        #expect(run(1) == run(1) && run(1) != run(2) && run(1) != images)
    }

    @Test func augmentedTrainingIsReproducible() throws {
        let spec = try ModelSpec.named("conv(3,3) relu maxpool(2) affine(10)", inputShape: [1, 8, 8])
        let data = tinyDataset(seed: 6)
        var config = TrainingConfig()
        (config.epochs, config.batchSize, config.augmentation) = (2, 10, Augmentation(shift: 1, rotation: 10))
        func train(_ c: TrainingConfig) throws -> [String: Tensor<Double>] {
            let net = try Network<Float>(spec: spec, seed: 1)
            _ = try Trainer(c).run(net, on: data)
            return net.tensorValues()
        }
        var plain = config
        plain.augmentation = nil
        #expect(try train(config) == train(config) && train(config) != train(plain))
    }
}

/// Checkpoints: a run stopped after an epoch and continued from its state ends with exactly the
/// weights and history of the run that did not stop.
@Suite struct CheckpointTests {
    @Test(arguments: [TrainingPrecision.float32, .mixedFloat16])
    func resumingGivesTheUninterruptedRun(_ precision: TrainingPrecision) throws {
        let spec = try ModelSpec.named("conv(3,3) relu dropout(0.3) maxpool(2) affine(10)", inputShape: [1, 8, 8])
        let data = tinyDataset(seed: 8)
        var config = TrainingConfig()
        (config.epochs, config.batchSize, config.augmentation) = (3, 10, Augmentation(shift: 1))
        (config.precision, config.lossScaler) = (precision, LossScaler(growthInterval: 2))
        let whole = try Network<Float>(spec: spec, seed: 2).storing(precision.storage, seed: 2)
        var states: [TrainingCheckpoint] = [], tensors: [[String: Tensor<Double>]] = []
        let history = try Trainer(config).run(
            whole, on: data,
            checkpoint: { state in
                states.append(state)
                tensors.append(whole.tensorValues())
            })
        #expect(states.map(\.epochsDone) == [1, 2, 3] && states[0].optimizerIteration == 4)
        let resumed = try Network<Float>(spec: spec, parameters: tensors[0], seed: 2).storing(
            precision.storage, seed: 2)
        var again = try Trainer(config).run(resumed, on: data, resume: states[0])
        #expect(resumed.tensorValues() == whole.tensorValues())
        (again.seconds, again.trainingSeconds, again.epochSeconds) = (
            history.seconds, history.trainingSeconds, history.epochSeconds
        )
        #expect(again == history)
        #expect(RandomSource(state: states[0].order.state) == states[0].order && RandomSource(state: [0, 0]) == nil)
    }
}
