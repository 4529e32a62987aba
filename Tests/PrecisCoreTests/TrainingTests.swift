import Foundation
import Testing

@testable import PrecisCore

@Suite(.serialized) struct TrainingTests {
    @Test func simpleConvNetLearnsMNIST5kInTwoEpochs() throws {
        let data = try Dataset.load(named: "mnist5k")
        let net = try Network<Float>(spec: .simpleConvNet, seed: 0)
        var config = TrainingConfig()
        config.epochs = 2
        let history = try Trainer(config).run(net, on: data)
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
            _ = try Trainer(config).run(net, on: data)
            return net.tensorValues()
        }
        let a = try train()
        #expect(a == (try train()))
        config.seed = 12
        #expect(a != (try train()))
    }

    @Test func divergenceStopsTrainingAndNamesTheIteration() throws {
        // 100 training images of every class (mnist5k is sorted by class).
        var data = try Dataset.load(named: "mnist5k")
        let picked = (0..<100).map { $0 * data.trainCount / 100 }
        data.trainImages = picked.flatMap { data.trainImages[$0 * 784..<($0 + 1) * 784] }
        data.trainLabels = picked.map { data.trainLabels[$0] }
        var config = TrainingConfig()
        config.epochs = 3
        config.batchSize = 20
        config.optimizer = .sgd
        config.learningRate = 1e10
        let net = try Network<Float>(spec: .simpleConvNet, seed: 0)
        #expect { try Trainer(config).run(net, on: data) } throws: { error in
            guard case let .diverged(iteration, epoch, _, _)? = error as? TrainingError else { return false }
            return iteration >= 2 && epoch >= 1 && "\(error)".contains("training diverged at iteration \(iteration)")
        }
    }

    @Test func scheduleFactorsMustBeFiniteAndPositive() throws {
        for bad in ["step:1:inf", "step:1:0", "step:0:0.5", "step:1:nan", "step:1", "linear"] {
            #expect(throws: ModelError.self, "\(bad)") { try LearningRateSchedule(parsing: bad) }
        }
        #expect(try LearningRateSchedule(parsing: "step:2:0.5") == .stepDecay(every: 2, factor: 0.5))
    }

    @Test func stepScheduleDecaysTheRate() {
        let s = LearningRateSchedule.stepDecay(every: 5, factor: 0.5)
        #expect(s.rate(base: 0.1, epoch: 4) == 0.1)
        #expect(s.rate(base: 0.1, epoch: 5) == 0.05)
        #expect(s.rate(base: 0.1, epoch: 12) == 0.025)
    }
}
