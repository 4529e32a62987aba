/// How one GEMM operand (a layer's weights, or its input) is stored.
public enum OperandFormat: Sendable, Hashable {
    /// Float elements with one float32 scale per tensor, `amax / max` (OFP8 with a tensor scale).
    case scaled(MiniFloat, saturating: Bool)
    /// OCP MX v1.0 blocks along the reduction axis.
    case mx(MXBlockFormat)
    /// NVIDIA's NVFP4 (see `NVFP4`).
    case nvfp4
    /// 4-bit integer weights (see `Int4Weights`).
    case int4(Int4Weights)
    /// int8 activations with a calibrated range (uint8 with a zero point, as the default int8 scheme).
    case int8
}

/// A number format the precision report simulates: weights and layer inputs of every convolution and
/// affine layer stored in a format, products and sums in float32, biases in float32.
public struct FormatMode: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let weights: OperandFormat
    /// The inputs' format; nil keeps them in float32 (weight-only quantization).
    public let activations: OperandFormat?

    public var description: String { name }

    init(name: String, weights: OperandFormat, activations: OperandFormat?) {
        (self.name, self.weights, self.activations) = (name, weights, activations)
    }

    /// The mode with its int4 weight ranges chosen by `method` (minmax or mse); other modes as they are.
    public func weightRanges(_ method: CalibrationMethod) -> FormatMode {
        guard case .int4(let w) = weights else { return self }
        return FormatMode(
            name: name, weights: .int4(Int4Weights(group: w.group, zeroPoint: w.zeroPoint, method: method)),
            activations: activations)
    }

    /// Whether the inputs' scale comes from calibration images (a per-tensor scale or range).
    public var needsCalibration: Bool {
        switch activations {
        case .scaled?, .nvfp4?, .int8?: return true
        case .mx?, .int4?, nil: return false
        }
    }
}

/// 4-bit integer weights: codes −7...7 (symmetric) or 0...15 with a zero point, one float32 scale per
/// group of `group` values along the reduction axis, or per output channel (`group` nil). Each
/// group's clipping range is chosen by `method`: `minmax` keeps the largest magnitude, `mse` (the
/// default for 4 bits) searches 80 ranges from the full one down to 21% of it for the least squared
/// error of the group's own values.
public struct Int4Weights: Sendable, Hashable {
    public let group: Int?
    public let zeroPoint: Bool
    public let method: CalibrationMethod

    public init(group: Int?, zeroPoint: Bool, method: CalibrationMethod = .mse) {
        precondition(method == .minmax || method == .mse, "int4 weights calibrate with minmax or mse")
        (self.group, self.zeroPoint, self.method) = (group, zeroPoint, method)
    }

    /// Bits of a group's scale, and zero point when there is one.
    public var scaleBits: Int { zeroPoint ? 40 : 32 }

    /// The range `method` picks for one group: among the candidates, the one with the least squared
    /// error of the group's own values (the first of equals, so the widest).
    public func bestRange(_ x: [Float]) -> QuantRange {
        let alphas = method == .minmax ? [1.0] : (0..<80).map { 1 - Double($0) / 100 }
        var best: (error: Double, range: QuantRange?) = (.infinity, nil)
        for alpha in alphas {
            let r = range(x, alpha)
            let error = x.reduce(0.0) { sum, v in
                let d = Double(v) - Double(Float(r.fakeQuantize(Double(v))))
                return sum + d * d
            }
            if error < best.error { best = (error, r) }
        }
        return best.range!
    }

    /// The group's range clipped to `alpha` of its extent.
    func range(_ x: [Float], _ alpha: Double) -> QuantRange {
        let lo = Double(x.min() ?? 0) * alpha, hi = Double(x.max() ?? 0) * alpha
        if !zeroPoint {
            let t = max(-lo, hi)
            return QuantRange(scale: t > 0 ? Double(Float(t / 7)) : 1, zeroPoint: 0, qmin: -7, qmax: 7)
        }
        let low = min(lo, 0), high = max(hi, 0)
        guard high > low else { return QuantRange(scale: 1, zeroPoint: 0, qmin: 0, qmax: 15) }
        let scale = Double(Float((high - low) / 15))
        return QuantRange(
            scale: scale, zeroPoint: min(15, max(0, -Int((low / scale).rounded(.toNearestOrEven)))), qmin: 0, qmax: 15)
    }
}
