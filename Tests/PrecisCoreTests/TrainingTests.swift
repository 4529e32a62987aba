import Foundation
import Testing
@testable import PrecisCore

@Suite(.serialized) struct TrainingTests {
    @Test func simpleConvNetLearnsMNIST5kInTwoEpochs() throws {
        let data = try Dataset.load(named: "mnist5k")
        let net = try Network<Float>(spec: .simpleConvNet, seed: 0)
        var config = TrainingConfig()
        config.epochs = 2
        let history = Trainer(config).run(net, on: data)
        #expect(history.iterations == 80)
        #expect(history.loss.count == 80)
        #expect(history.loss.last! < history.loss.first!)
        #expect(history.testAccuracy.last! > 0.85, "test accuracy \(history.testAccuracy)")
    }

    /// A small slice of mnist5k, so repeated runs stay quick.
    func slice() throws -> Dataset {
        var d = try Dataset.load(named: "mnist5k")
        d.trainImages = Array(d.trainImages[0..<(784 * 300)])
        d.trainLabels = Array(d.trainLabels[0..<300])
        return d
    }

    @Test func sameSeedGivesIdenticalWeights() throws {
        let data = try slice()
        var config = TrainingConfig()
        config.epochs = 1
        config.batchSize = 32
        config.seed = 11
        func train() throws -> [String: Tensor<Double>] {
            let net = try Network<Float>(spec: .deepConvNet, seed: 11)
            _ = Trainer(config).run(net, on: data)
            return net.tensorValues()
        }
        let a = try train()
        #expect(a == (try train()))
        config.seed = 12
        #expect(a != (try train()))
    }

    @Test func stepScheduleDecaysTheRate() {
        let s = LearningRateSchedule.stepDecay(every: 5, factor: 0.5)
        #expect(s.rate(base: 0.1, epoch: 4) == 0.1)
        #expect(s.rate(base: 0.1, epoch: 5) == 0.05)
        #expect(s.rate(base: 0.1, epoch: 12) == 0.025)
    }

    @Test func weightFileRoundTripsAndRejectsDamage() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/w.precis"
        let net = try Network<Float>(spec: .simpleConvNet, seed: 2)
        let file = WeightFile(spec: .simpleConvNet, dataset: "mnist5k", training: nil, tensors: net.tensorValues())
        try file.write(to: path)
        let back = try WeightFile(path: path)
        #expect(back.tensors == file.tensors)
        #expect(back.spec == file.spec)
        #expect(throws: DataError(file: path, problem: "file exists (use --force to replace it)")) { try file.write(to: path) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 3).write(to: URL(fileURLWithPath: path))
        #expect(throws: DataError.self) { try WeightFile(path: path) }
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: DataError(file: path, problem: "not a Precis weight file")) { try WeightFile(path: path) }
    }
}
