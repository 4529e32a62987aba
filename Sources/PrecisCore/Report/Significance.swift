import Foundation

/// Tests and intervals for comparing several runs with one reference on the same test images.
public enum Significance {
    /// The two-sided 5% level the reports use.
    public static let alpha = 0.05
    /// z for a two-sided 5% test, and for a power of 0.8.
    static let z975 = 1.959963984540054, z80 = 0.8416212335729143

    /// McNemar's two-sided p-value (normal approximation, no continuity correction) for `gained`
    /// images one run answers right and the reference wrong, and `lost` the reverse: 1 with none of either.
    public static func mcnemarP(gained: Int, lost: Int) -> Double {
        let d = gained + lost
        guard d > 0 else { return 1 }
        return erfc(abs(Double(gained - lost)) / Double(d).squareRoot() / 2.0.squareRoot())
    }

    /// Holm's step-down correction of `p` for their number at level `alpha`: whether each is
    /// rejected. The smallest is compared with α/m, the next with α/(m−1), and so on until one is not.
    public static func holm(_ p: [Double], alpha: Double = alpha) -> [Bool] {
        var rejected = [Bool](repeating: false, count: p.count)
        for (rank, i) in p.indices.sorted(by: { (p[$0], $0) < (p[$1], $1) }).enumerated() {
            guard p[i] <= alpha / Double(p.count - rank) else { break }
            rejected[i] = true
        }
        return rejected
    }

    /// The smallest accuracy change (a fraction) McNemar's test at 5% detects with power 0.8, when
    /// `discordant` of `images` are answered right by one run and wrong by the other:
    /// `(z₀.₉₇₅ + z₀.₈)·√discordant / images`.
    public static func detectableChange(discordant: Int, images: Int) -> Double {
        (z975 + z80) * Double(max(discordant, 1)).squareRoot() / Double(max(images, 1))
    }

    /// The `level` percentile interval of `values` (linear between order statistics).
    public static func percentileInterval(_ values: [Double], level: Double = 0.95) -> (low: Double, high: Double) {
        let s = values.sorted()
        guard !s.isEmpty else { return (.nan, .nan) }
        func quantile(_ q: Double) -> Double {
            let x = q * Double(s.count - 1), k = Int(x.rounded(.down)), f = x - Double(k)
            return k + 1 < s.count ? s[k] + f * (s[k + 1] - s[k]) : s[k]
        }
        return (quantile((1 - level) / 2), quantile((1 + level) / 2))
    }
}
