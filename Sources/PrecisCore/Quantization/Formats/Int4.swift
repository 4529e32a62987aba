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

extension Int4Weights: BlockFormat {
    public var elementBits: Int { 4 }

    public func blockSize(length: Int) -> Int? { group ?? length }

    /// A float32 scale per group, and a zero point with `zeroPoint`.
    public var storage: BlockStorage { BlockStorage(scales: .perBlock, zeroPoints: zeroPoint) }

    public func quantize(_ values: [Float], into t: inout FormatTensor) {
        t.forEachBlock(of: values) { block in
            let r = bestRange(Array(block))
            t.scales.append(Float(r.scale))
            if zeroPoint { t.zeroPoints.append(UInt8(r.zeroPoint)) }
            t.codes += block.map { UInt8(truncatingIfNeeded: r.quantize(Double($0))) & 0xF }
        }
    }

    public func code(_ x: Float, block b: Int, in t: FormatTensor) -> UInt8 {
        UInt8(truncatingIfNeeded: range(block: b, in: t).quantize(Double(x))) & 0xF
    }

    public func value(_ code: UInt8, block b: Int, in t: FormatTensor) -> Float {
        let q = zeroPoint ? Int(code) : Int(Int8(bitPattern: code << 4) >> 4)
        return Float(Double(q - (zeroPoint ? Int(t.zeroPoints[b]) : 0)) * Double(t.scales[b]))
    }

    /// The range group `b` of `t` is stored with.
    func range(block b: Int, in t: FormatTensor) -> QuantRange {
        QuantRange(
            scale: Double(t.scales[b]), zeroPoint: zeroPoint ? Int(t.zeroPoints[b]) : 0, qmin: zeroPoint ? 0 : -7,
            qmax: zeroPoint ? 15 : 7)
    }

    public func isFiniteCode(_ code: UInt8) -> Bool { true }

    /// 0...15 with a zero point; −7...7 without (−8 never stored).
    public var validCodes: [UInt8] { (0..<16).map { UInt8($0) }.filter { zeroPoint || $0 != 8 } }

    public var text: String {
        "int4 " + (zeroPoint ? "0...15 with a zero point" : "symmetric -7...7") + ", one float32 scale "
            + (group.map { "per \($0) values along the reduction axis" } ?? "per output channel")
    }

    public var inputNeedsCalibration: Bool { false }

    /// A weight format only.
    public func inputRounding(_ calibration: InputCalibration?) -> OperandRounding? { nil }
}
