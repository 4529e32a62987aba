/// Rounds Float values onto the grid of a small number format, giving the value of the nearest code
/// (ties to even) as a Float. It is `decode(encode(x, saturating:))` of a `MiniFloat`, or an integer
/// grid `k·2^−f` with `|k| ≤ kmax` (MXINT8's elements), written without branches on the value so
/// that loops over buffers vectorize. Tests check it against `MiniFloat` on every float16 value.
public struct GridRounder: Sendable {
    /// Low float32 mantissa bits dropped in the normal range (23 − mantissa bits).
    let shift: UInt32
    /// Bits of the smallest normal magnitude: below it the grid spacing is fixed.
    let minNormalBits: UInt32
    /// `2^(emin − m + 23)`: adding it rounds a magnitude below the normal range to the fixed spacing.
    let magic: Float
    let maxValue: Float
    /// What a magnitude beyond `maxValue` becomes: `maxValue`, infinity or NaN.
    let overflow: Float
    /// What NaN becomes: NaN, or 0 in formats without NaN.
    let nanValue: Float

    /// The grid of `format` (not E8M0), saturating beyond the largest value or, without
    /// `saturating`, as `MiniFloat.encode` converts (infinity for E5M2, NaN for E4M3).
    public init(_ format: MiniFloat, saturating: Bool) {
        precondition(format.specials != .exponentOnly, "E8M0 is a scale, not an element grid")
        let m = format.mantissaBits, emin = 1 - format.bias
        shift = UInt32(23 - m)
        minNormalBits = Float(sign: .plus, exponent: emin, significand: 1).bitPattern
        magic = Float(sign: .plus, exponent: emin - m + 23, significand: 1)
        maxValue = format.max
        switch (saturating, format.specials) {
        case (true, _), (_, .none), (_, .exponentOnly): overflow = format.max
        case (false, .ieee): overflow = .infinity
        case (false, .nanOnly): overflow = .nan
        }
        nanValue = format.specials == .none ? 0 : .nan
    }

    /// The integer grid `k·2^−fractionBits`, `|k| ≤ maxCode`, saturating.
    public init(maxCode: Int, fractionBits: Int) {
        shift = 0
        minNormalBits = Float.infinity.bitPattern
        magic = Float(sign: .plus, exponent: 23 - fractionBits, significand: 1)
        maxValue = Float(maxCode) * Float(sign: .plus, exponent: -fractionBits, significand: 1)
        overflow = maxValue
        nanValue = 0
    }

    /// The grid value nearest `x`.
    @inline(__always)
    public func callAsFunction(_ x: Float) -> Float {
        var v = x
        round(&v, count: 1)
        return v
    }

    /// Rounds `count` values in place.
    @inline(__always)
    public func round(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var one: Float = 1
        round(x, dividedBy: &one, times: &one, count: count, stride: 0)
    }

    /// `x[i] = f[i·stride]·grid(x[i] / d[i·stride])` for `i < count`: values scaled onto the grid and
    /// back, the scales per value (`stride` 1) or shared (`stride` 0).
    @inline(__always)
    func round(
        _ x: UnsafeMutablePointer<Float>, dividedBy d: UnsafePointer<Float>, times f: UnsafePointer<Float>,
        count: Int, stride: Int
    ) {
        // The fields as locals, so the loop keeps them in registers and selects between values
        // (a select between fields in memory can become a gather).
        let shift = shift, minNormalBits = minNormalBits, magic = magic, maxValue = maxValue
        let overflow = overflow, nanValue = nanValue, low = (UInt32(1) << shift) &- 1
        for i in 0..<count {
            let bits = (x[i] / d[i * stride]).bitPattern, sign = bits & 0x8000_0000, a = bits & 0x7FFF_FFFF
            // Normal range: drop `shift` mantissa bits, ties to even; a carry moves into the exponent.
            let normal = (a &+ (low >> 1) &+ ((a >> shift) & 1)) & ~low
            // Below it the spacing is fixed: the float32 addition rounds to it.
            let fixed = ((Float(bitPattern: a) + magic) - magic).bitPattern
            let r = Float(bitPattern: a < minNormalBits ? fixed : normal)
            let v = a > 0x7F80_0000 ? nanValue : (r > maxValue ? overflow : r)
            x[i] = Float(bitPattern: v.bitPattern | sign) * f[i * stride]
        }
    }
}
