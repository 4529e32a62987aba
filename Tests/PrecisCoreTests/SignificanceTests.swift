import Foundation
import Testing

@testable import PrecisCore

struct SignificanceTests {
    @Test func holmStepsDownAndStops() {
        #expect(Significance.holm([0.01, 0.04, 0.03, 0.005]) == [true, false, false, true])
        #expect(Significance.holm([0.01, 0.02]) == [true, true])
        #expect(Significance.holm([0.03, 0.03]) == [false, false])
        #expect(Significance.holm([]) == [])
    }

    @Test func mcnemarMatchesTheNormalTail() {
        // z = 10 / √10: the two-sided tail is 0.001565.
        #expect(abs(Significance.mcnemarP(gained: 10, lost: 0) - 0.001565) < 1e-6)
        #expect(Significance.mcnemarP(gained: 7, lost: 7) == 1 && Significance.mcnemarP(gained: 0, lost: 0) == 1)
    }

    /// At the detectable change, McNemar's test at 5% rejects in about 80% of simulated test sets.
    @Test func theDetectableChangeHasPowerEighty() {
        let n = 2000, discordant = 0.04, trials = 2000
        let delta = Significance.detectableChange(discordant: Int(discordant * Double(n)), images: n)
        let (pGained, pLost) = ((discordant - delta) / 2, (discordant + delta) / 2)
        var rng = RandomSource(seed: 11), rejected = 0
        for _ in 0..<trials {
            var (gained, lost) = (0, 0)
            for _ in 0..<n {
                let u = rng.uniform()
                if u < pGained { gained += 1 } else if u < pGained + pLost { lost += 1 }
            }
            if Significance.mcnemarP(gained: gained, lost: lost) < Significance.alpha { rejected += 1 }
        }
        #expect(abs(Double(rejected) / Double(trials) - 0.8) < 0.04, "power \(Double(rejected) / Double(trials))")
    }

    /// A calibration set drawn from a large pool, its statistic bootstrapped as `--bootstrap` does (as many
    /// draws, with replacement): the 95% percentile interval holds the whole pool's figure in about 95%
    /// of simulated sets.
    @Test func bootstrapIntervalsCoverAtTheirStatedRate() {
        var rng = RandomSource(seed: 5)
        let pool = (0..<20_000).map { _ in -log(1 - rng.uniform()) }, truth = pool.reduce(0, +) / 20_000
        let (size, resamples, trials) = (200, 200, 400)
        var covered = 0
        for _ in 0..<trials {
            let set = (0..<size).map { _ in pool[Int(rng.next() % UInt64(pool.count))] }
            let means = (0..<resamples).map { _ in
                (0..<size).reduce(0.0) { s, _ in s + set[Int(rng.next() % UInt64(size))] } / Double(size)
            }
            let (low, high) = Significance.percentileInterval(means)
            if low <= truth && truth <= high { covered += 1 }
        }
        #expect(abs(Double(covered) / Double(trials) - 0.95) < 0.035, "coverage \(Double(covered) / Double(trials))")
    }

    @Test func percentileIntervalsInterpolate() {
        let (low, high) = Significance.percentileInterval((0...100).map(Double.init).reversed())
        #expect(abs(low - 2.5) < 1e-12 && abs(high - 97.5) < 1e-12)
    }
}
