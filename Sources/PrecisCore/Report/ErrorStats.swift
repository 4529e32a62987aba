import CKernels
import Foundation

/// Error statistics of a tensor computed in a reduced precision against the same tensor computed
/// in float64, accumulated over batches. Infinite and NaN values are counted, and their error is
/// infinite: one of them makes the relative and largest errors +∞ and the SQNR −∞ dB.
public struct ErrorStats: Sendable, Equatable {
    /// Values compared.
    public var count = 0
    /// Σ reference², Σ (value − reference)², Σ |value − reference| and max |value − reference|.
    public var signal = 0.0, noise = 0.0, absoluteSum = 0.0, maxAbsolute = 0.0
    /// Values that are ±infinity or NaN.
    public var infinities = 0, nans = 0
    /// Nonzero values below the smallest normal magnitude of the storage format, and zeros whose
    /// reference is nonzero but below it (underflow flushed to zero).
    public var subnormals = 0, flushed = 0

    public init() {}

    /// Adds `values` against `reference`, element by element; `minNormal` is the smallest normal
    /// magnitude of the format the values are stored in.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    public mutating func add<T: NetworkScalar>(_ values: [T], reference: [Double], minNormal: Double) {
        add(values, reference: reference, minNormal: minNormal, vector: errorKernels)
    }

    /// `add`, in C with vectors when `vector` (and the scalar type is Float, Double or Float16), else in Swift.
    mutating func add<T: NetworkScalar>(_ values: [T], reference: [Double], minNormal: Double, vector: Bool) {
        precondition(
            values.count == reference.count, "compared tensors differ in size: \(values.count) vs \(reference.count)")
        var s = precis_error_sums(
            signal: signal, noise: noise, absolute_sum: absoluteSum, max_absolute: maxAbsolute,
            nans: Int64(nans), infinities: Int64(infinities), subnormals: Int64(subnormals), flushed: Int64(flushed))
        if vector && !values.isEmpty
            && values.withUnsafeBufferPointer({ vs in
                reference.withUnsafeBufferPointer {
                    T.errorSums(vs.baseAddress!, $0.baseAddress!, count: values.count, minNormal: minNormal, &s)
                }
            })
        {
            count += values.count
            (signal, noise, absoluteSum, maxAbsolute) = (s.signal, s.noise, s.absolute_sum, s.max_absolute)
            (nans, infinities, subnormals, flushed) = (
                Int(s.nans), Int(s.infinities), Int(s.subnormals), Int(s.flushed)
            )
            return
        }
        // The sums run in locals (kept in registers), in the same order as ever.
        var (signal, noise, absoluteSum, maxAbsolute) = (signal, noise, absoluteSum, maxAbsolute)
        var (nans, infinities, subnormals, flushed) = (nans, infinities, subnormals, flushed)
        values.withUnsafeBufferPointer { vs in
            reference.withUnsafeBufferPointer { rs in
                for i in vs.indices {
                    let v = Double(vs[i]), r = rs[i]
                    if v.isNaN { nans += 1 } else if v.isInfinite { infinities += 1 }
                    let e = v.isFinite ? abs(v - r) : .infinity
                    signal += r * r
                    noise += e * e
                    absoluteSum += e
                    maxAbsolute = max(maxAbsolute, e)
                    if v != 0 && abs(v) < minNormal { subnormals += 1 }
                    if v == 0 && r != 0 && abs(r) < minNormal { flushed += 1 }
                }
            }
        }
        count += values.count
        (self.signal, self.noise, self.absoluteSum, self.maxAbsolute) = (signal, noise, absoluteSum, maxAbsolute)
        (self.nans, self.infinities, self.subnormals, self.flushed) = (nans, infinities, subnormals, flushed)
    }

    /// Adds the counts and sums of `other` (statistics of more values).
    public mutating func merge(_ other: ErrorStats) {
        count += other.count
        signal += other.signal
        noise += other.noise
        absoluteSum += other.absoluteSum
        maxAbsolute = max(maxAbsolute, other.maxAbsolute)
        infinities += other.infinities
        nans += other.nans
        subnormals += other.subnormals
        flushed += other.flushed
    }

    /// ‖value − reference‖ / ‖reference‖ (0 when both are 0).
    public var relativeL2: Double { noise == 0 ? 0 : (noise / signal).squareRoot() }

    /// Signal-to-quantization-noise ratio, 10·log10(Σ reference² / Σ error²), in dB; +∞ when exact.
    public var sqnrDB: Double { noise == 0 ? .infinity : 10 * log10(signal / noise) }

    /// Mean |value − reference|.
    public var meanAbsolute: Double { count == 0 ? 0 : absoluteSum / Double(count) }
}

/// Whether `ErrorStats.add` runs in C with vectors (`precis_error_stats_*`); its figures are the
/// Swift loop's bit for bit.
let errorKernels = precis_error_kernels() != 0

/// The change of a mode's accuracy against a reference run (float32) on the same images, with a
/// 95% interval: the square-and-add (MOVER) combination of the proportions of images gained and
/// lost, each with its continuity-corrected Wilson score interval, and with their multinomial
/// correlation (Newcombe's hybrid score method, applied to the two discordant cells). It stays
/// honest where the Wald interval collapses to a point: with no changed answer it is ±95 points for
/// one image, ±34 for 10 and ±0.05 for 10,000, and its exact coverage stays at 96% or more for 10
/// to 100 images. A change whose interval holds 0 may be noise; like McNemar's exact test, it holds
/// 0 for 5 images lost and none gained (p = 0.0625) and not for 6 (p = 0.031).
///
/// A prediction below 0 is no answer (logits that are not all finite): it is wrong, and it never
/// agrees with the reference, not even with a reference that has no answer either.
public struct PairedChange: Sendable, Equatable {
    public let images: Int
    /// Images the mode classifies correctly and the reference does not, and the reverse.
    public let gained: Int, lost: Int
    /// Images whose predicted class differs (both may be wrong), those with no answer included.
    public let differs: Int
    /// Images the mode gives no answer for.
    public let unanswered: Int

    public init(predicted: [Int], reference: [Int], labels: [Int]) {
        precondition(
            predicted.count == reference.count && reference.count == labels.count, "paired runs need the same images")
        images = labels.count
        var (gained, lost, differs, unanswered) = (0, 0, 0, 0)
        for i in labels.indices {
            if predicted[i] < 0 { unanswered += 1 }
            if predicted[i] != reference[i] || predicted[i] < 0 { differs += 1 }
            let (mine, theirs) = (predicted[i] == labels[i], reference[i] == labels[i])
            if mine && !theirs { gained += 1 }
            if theirs && !mine { lost += 1 }
        }
        (self.gained, self.lost, self.differs, self.unanswered) = (gained, lost, differs, unanswered)
    }

    /// The accuracy change, a fraction (0.001 is 0.1 percentage points).
    public var change: Double { Double(gained - lost) / Double(max(images, 1)) }

    /// The 95% interval of `change` (see the type's description), within [−1, 1].
    public var interval: (low: Double, high: Double) {
        let n = Double(max(images, 1)), pg = Double(gained) / n, pl = Double(lost) / n
        let g = wilsonInterval(gained, images), l = wilsonInterval(lost, images)
        let rho = pg > 0 && pl > 0 && pg < 1 && pl < 1 ? -((pg * pl) / ((1 - pg) * (1 - pl))).squareRoot() : 0
        func spread(_ a: Double, _ b: Double) -> Double { max(0, a * a + b * b - 2 * rho * a * b).squareRoot() }
        return (
            max(-1, change - spread(pg - g.low, l.high - pl)), min(1, change + spread(g.high - pg, pl - l.low))
        )
    }

    /// The fraction of images with the reference's predicted class.
    public var agreement: Double { 1 - Double(differs) / Double(max(images, 1)) }
}

/// The 95% Wilson score interval of the proportion `count / n`, with continuity correction
/// (Newcombe 1998, method 4).
func wilsonInterval(_ count: Int, _ n: Int) -> (low: Double, high: Double) {
    let z = 1.959963984540054, z2 = z * z, m = Double(max(n, 1)), p = Double(count) / m, q = 1 - p
    let low =
        count <= 0
        ? 0 : (2 * m * p + z2 - 1 - z * max(0, z2 - 2 - 1 / m + 4 * p * (m * q + 1)).squareRoot()) / (2 * (m + z2))
    let high =
        count >= n
        ? 1 : (2 * m * p + z2 + 1 + z * max(0, z2 + 2 - 1 / m + 4 * p * (m * q - 1)).squareRoot()) / (2 * (m + z2))
    return (max(0, low), min(1, high))
}
