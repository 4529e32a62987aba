import Foundation

/// How calibration turns the observed values of a tensor into a clipping range.
public enum CalibrationMethod: String, CaseIterable, Sendable {
    /// The observed minimum and maximum: nothing is clipped.
    case minmax
    /// The given percentile of |x| (symmetric) or of x at both ends (asymmetric).
    case percentile
    /// The threshold whose quantized histogram is closest to the observed one in KL divergence
    /// (TensorRT's entropy calibration).
    case entropy
    /// The threshold with the least expected squared error: clipping error plus rounding noise.
    case mse
}

/// Statistics of one tensor over a calibration set, gathered in one pass: the exact minimum and
/// maximum, and a histogram over `[−R, R)` in `2·half` bins whose range `R` doubles (merging
/// neighbouring bins) whenever a value falls outside it.
public struct Observer: Sendable {
    public private(set) var minimum = Double.infinity, maximum = -Double.infinity
    public private(set) var count = 0
    /// `R`: the histogram covers `[−R, R)`.
    public private(set) var range = 0.0
    private var bins: [Double]
    private let half: Int

    public init(bins half: Int = 1024) {
        precondition(half >= 128 && half % 2 == 0, "an observer needs an even number of bins, at least 128")
        self.half = half
        bins = [Double](repeating: 0, count: 2 * half)
    }

    /// Adds the finite values of `xs`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public mutating func observe<T: NetworkScalar>(_ xs: [T]) {
        for x in xs.lazy.map(Double.init) where x.isFinite {
            minimum = min(minimum, x)
            maximum = max(maximum, x)
            count += 1
            if abs(x) >= range { grow(to: abs(x)) }
            let width = range / Double(half)
            bins[min(2 * half - 1, max(0, Int((x + range) / width)))] += 1
        }
    }

    /// Doubles `R` until `|x| < R`, merging bins pairwise into the middle half.
    private mutating func grow(to x: Double) {
        if range == 0 {
            range = x > 0 ? exp2((log2(x)).rounded(.down) + 1) : 1
            return
        }
        while x >= range {
            var merged = [Double](repeating: 0, count: 2 * half)
            for j in bins.indices { merged[half / 2 + j / 2] += bins[j] }
            bins = merged
            range *= 2
        }
    }

    /// Counts of |x| in `half` bins over `[0, R)`.
    private var magnitudes: [Double] { (0..<half).map { bins[half + $0] + bins[half - 1 - $0] } }

    /// The symmetric clipping threshold of `method`; `levels` is the number of quantization steps
    /// between 0 and the threshold (127 for int8, 255 for uint8 over non-negative values).
    public func threshold(_ method: CalibrationMethod, percentile: Double = 99.99, levels: Int = 127) -> Double {
        let largest = max(abs(minimum), abs(maximum))
        guard count > 0, largest > 0 else { return 0 }
        let a = magnitudes, width = range / Double(half)
        switch method {
        case .minmax:
            return largest
        case .percentile:
            let wanted = percentile / 100 * Double(count)
            var total = 0.0
            for k in a.indices {
                total += a[k]
                if total >= wanted { return min(largest, Double(k + 1) * width) }
            }
            return largest
        case .entropy:
            return Double(entropyBins(a, levels: levels + 1)) * width
        case .mse:
            var best = (error: Double.infinity, bins: half)
            for t in 1...half {
                let threshold = Double(t) * width, step = threshold / Double(levels)
                var error = 0.0
                for j in a.indices where a[j] > 0 {
                    let c = (Double(j) + 0.5) * width
                    error += a[j] * (c > threshold ? (c - threshold) * (c - threshold) : step * step / 12)
                }
                if error < best.error { best = (error, t) }
            }
            return min(largest, Double(best.bins) * width)
        }
    }

    /// The number of bins of `a` whose clipped histogram, quantized to `target` bins, has the least
    /// KL divergence from the clipped histogram (outliers added to its last bin).
    private func entropyBins(_ a: [Double], levels target: Int) -> Int {
        var best = (divergence: Double.infinity, bins: a.count)
        let outliersAfter = a.reversed().reduce(into: [Double]()) { $0.append(($0.last ?? 0) + $1) }.reversed().map {
            $0
        }
        for i in stride(from: target, through: a.count, by: 1) {
            var p = Array(a[0..<i])
            if i < a.count { p[i - 1] += outliersAfter[i] }
            var q = [Double](repeating: 0, count: i)
            for g in 0..<target {
                let lo = g * i / target, hi = (g + 1) * i / target
                let total = a[lo..<hi].reduce(0, +), used = a[lo..<hi].filter { $0 > 0 }.count
                if used > 0 { for j in lo..<hi where a[j] > 0 { q[j] = total / Double(used) } }
            }
            let ps = p.reduce(0, +), qs = q.reduce(0, +)
            guard ps > 0, qs > 0 else { continue }
            var divergence = 0.0
            for j in 0..<i where p[j] > 0 {
                // A bin the quantized histogram left empty gets a small share, as TensorRT smooths.
                divergence += p[j] / ps * log((p[j] / ps) / max(q[j] / qs, 1e-12))
            }
            if divergence < best.divergence { best = (divergence, i) }
        }
        return best.bins
    }

    /// The quantization range for the observed tensor: symmetric int8, or asymmetric int8/uint8.
    public func quantRange(_ method: CalibrationMethod, percentile: Double = 99.99, symmetric: Bool, unsigned: Bool)
        -> QuantRange
    {
        if symmetric { return .symmetric(threshold: threshold(method, percentile: percentile)) }
        guard count > 0 else { return .asymmetric(low: 0, high: 0, unsigned: unsigned) }
        switch method {
        case .minmax:
            return .asymmetric(low: minimum, high: maximum, unsigned: unsigned)
        case .percentile:
            return .asymmetric(
                low: max(minimum, quantile((100 - percentile) / 100)), high: min(maximum, quantile(percentile / 100)),
                unsigned: unsigned)
        case .entropy, .mse:
            let t = threshold(method, percentile: percentile, levels: minimum >= 0 && unsigned ? 255 : 127)
            return .asymmetric(low: max(minimum, -t), high: min(maximum, t), unsigned: unsigned)
        }
    }

    /// The value below which a fraction `f` of the observed values lie (a bin edge).
    private func quantile(_ f: Double) -> Double {
        let wanted = f * Double(count), width = range / Double(half)
        var total = 0.0
        for (j, c) in bins.enumerated() {
            total += c
            if total >= wanted && c > 0 { return -range + Double(j + 1) * width }
        }
        return maximum
    }
}

/// `count` images of the training set of `dataset`, a sample stratified by class and drawn by a
/// generator seeded with `seed` (row-major, in file order), and how many: never more than the set
/// holds. Calibration sees training images only, never test images.
public func drawCalibrationImages(_ dataset: Dataset, count: Int, seed: UInt64) -> (images: [Float], count: Int) {
    let per = dataset.imageShape.reduce(1, *)
    let picked = ImageSelection.stratified(count: count, seed: seed).indices(dataset.trainLabels)
    return (picked.flatMap { dataset.trainImages[$0 * per..<($0 + 1) * per] }, picked.count)
}
