import Foundation
import PrecisCore
import Testing

@testable import PrecisWeights

/// What quantization-aware training stores is what it trained: the variant read back from the file
/// and run as `eval` runs it (the integer path for int8) predicts as the fake-quantized network did.
@Suite struct QATVariantTests {
    @Test(arguments: [
        ("int8", false), ("int8-wtensor-as8z", false), ("int4-channel", false), ("int4-g32-a8", false),
        ("mxfp4", false), ("float8-e4m3", false), ("int8", true), ("int4-channel", true), ("int4-g32-a8", true),
    ])
    func storedVariantRunsAsTheFakeQuantizedNetwork(_ name: String, _ learnSteps: Bool) throws {
        let (dir, path, file) = try WeightFileTests().written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = RandomSource(seed: 8)
        let data = Dataset(
            name: "tiny", imageShape: [1, 8, 8], classes: 10,
            trainImages: (0..<(40 * 64)).map { _ in Float(rng.uniform()) }, trainLabels: (0..<40).map { $0 % 10 },
            testImages: (0..<(20 * 64)).map { _ in Float(rng.uniform()) }, testLabels: (0..<20).map { $0 % 10 })
        let net = try Network<Float>(spec: file.spec, parameters: file.tensors)
        let qat = try QuantizationAwareTraining(
            network: net, target: QATTarget(parsing: name),
            observers: observeActivations(net, images: data.trainImages, count: 40), warmup: 2,
            learnSteps: learnSteps ? (.adam, 0.001) : nil)
        var config = TrainingConfig()
        (config.epochs, config.batchSize) = (2, 10)
        _ = try Trainer(config).run(net, on: data, around: qat.around)
        #expect(qat.frozen && qat.steps == 8)
        #expect((try qat.quantized() != qat.nearest()) == learnSteps, "learned steps move the scales")
        let x = Tensor<Float>(shape: [20, 1, 8, 8], data: data.testImages)
        var fake = Tensor<Float>(zeros: [0])
        try qat.around(nil) { fake = net.predict(x) }
        // The fine-tuned network, written as train --qat writes it, with its variant.
        let tuned = WeightFile(spec: file.spec, dataset: "tiny", training: file.training, tensors: net.tensorValues())
        try tuned.write(to: path, overwrite: true)
        let store = try WeightStore(path)
        let stored: Tensor<Float>
        switch try qat.quantized() {
        case .int8(let model):
            let variant = try store.variant(try store.store(model, calibration: []), of: QuantizedModel.self)
            #expect(variant.model == model)
            stored = try IntegerNetwork(spec: file.spec, model: variant.model, tensors: variant.tensors)
                .predict(x)
        case .format(let model):
            stored = try store.variant(try store.store(model, calibration: []), of: FormatModel.self).network.predict(x)
        }
        #expect(argmaxRows(stored) == argmaxRows(fake))
        let largest = fake.data.map(abs).max()!
        let worst = zip(stored.data, fake.data).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4 * largest, "\(name): logits differ by \(worst) of \(largest)")
    }
}
