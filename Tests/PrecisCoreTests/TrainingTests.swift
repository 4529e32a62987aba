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
}
