/// An affine map between real numbers and the integers `qmin...qmax`:
/// `q = clamp(roundHalfEven(x / scale) + zeroPoint, qmin, qmax)` and `x̂ = (q − zeroPoint)·scale`.
/// Symmetric ranges have zero point 0 and use `−127...127` (so that `−q` is representable);
/// asymmetric ones use all 256 codes of int8 (`−128...127`) or uint8 (`0...255`) and always
/// represent 0 exactly.
public struct QuantRange: Sendable, Equatable, CustomStringConvertible {
    public var scale: Double
    public var zeroPoint: Int
    public var qmin: Int, qmax: Int

    public init(scale: Double, zeroPoint: Int, qmin: Int, qmax: Int) {
        precondition(scale > 0 && scale.isFinite && qmin <= zeroPoint && zeroPoint <= qmax, "bad quantization range")
        (self.scale, self.zeroPoint, self.qmin, self.qmax) = (scale, zeroPoint, qmin, qmax)
    }

    /// `±threshold` onto `−127...127`. A zero threshold (an all-zero tensor or channel) gets scale 1:
    /// every value then quantizes to 0, exactly.
    public static func symmetric(threshold: Double) -> QuantRange {
        QuantRange(
            scale: threshold > 0 && threshold.isFinite ? threshold / 127 : 1, zeroPoint: 0, qmin: -127, qmax: 127)
    }

    /// `[low, high]`, widened to hold 0, onto `qmin...qmax` (255 steps) with an integer zero point.
    /// A range of width 0 gets scale 1.
    public static func asymmetric(low: Double, high: Double, unsigned: Bool) -> QuantRange {
        let (qmin, qmax) = unsigned ? (0, 255) : (-128, 127)
        let lo = min(low, 0), hi = max(high, 0)
        guard hi > lo && (hi - lo).isFinite else { return QuantRange(scale: 1, zeroPoint: 0, qmin: qmin, qmax: qmax) }
        let scale = (hi - lo) / Double(qmax - qmin)
        let zeroPoint = min(qmax, max(qmin, qmin - Int((lo / scale).rounded(.toNearestOrEven))))
        return QuantRange(scale: scale, zeroPoint: zeroPoint, qmin: qmin, qmax: qmax)
    }

    /// The code for `x`: rounded half to even, saturated to `qmin...qmax` (NaN gives the zero point).
    @inline(__always)
    public func quantize(_ x: Double) -> Int {
        // Clamped in Double, so ±∞ saturate and nothing large reaches the Int conversion.
        let q = (x / scale).rounded(.toNearestOrEven) + Double(zeroPoint)
        return q.isNaN ? zeroPoint : Int(min(Double(qmax), max(Double(qmin), q)))
    }

    /// The real value of code `q`.
    @inline(__always)
    public func dequantize(_ q: Int) -> Double { Double(q - zeroPoint) * scale }

    /// `x` quantized and back.
    @inline(__always)
    public func fakeQuantize(_ x: Double) -> Double { dequantize(quantize(x)) }

    /// The real values the codes reach, `[dequantize(qmin), dequantize(qmax)]`.
    public var representable: ClosedRange<Double> { dequantize(qmin)...dequantize(qmax) }

    public var description: String { "scale \(scale), zero point \(zeroPoint), codes \(qmin)...\(qmax)" }
}
