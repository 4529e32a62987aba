import CKernels

/// Rounds Float values onto the grid of a small number format, giving the value of the nearest code
/// (ties to even) as a Float. It is `decode(encode(x, saturating:))` of a `MiniFloat`, or an integer
/// grid `k·2^−f` with `|k| ≤ kmax` (MXINT8's elements), written without branches on the value so
/// that loops over buffers vectorize. Tests check it against `MiniFloat` on every float16 value.
public struct GridRounder: Sendable {
    /// The grid as the C kernel takes it (see `precis_grid`).
    let grid: precis_grid

    /// The grid of `format` (not E8M0), saturating beyond the largest value or, without
    /// `saturating`, as `MiniFloat.encode` converts (infinity for E5M2, NaN for E4M3).
    public init(_ format: MiniFloat, saturating: Bool) {
        precondition(format.specials != .exponentOnly, "E8M0 is a scale, not an element grid")
        let m = format.mantissaBits, emin = 1 - format.bias
        let overflow: Float
        switch (saturating, format.specials) {
        case (true, _), (_, .none), (_, .exponentOnly): overflow = format.max
        case (false, .ieee): overflow = .infinity
        case (false, .nanOnly): overflow = .nan
        }
        grid = precis_grid(
            shift: UInt32(23 - m), min_normal_bits: Float(sign: .plus, exponent: emin, significand: 1).bitPattern,
            magic: Float(sign: .plus, exponent: emin - m + 23, significand: 1), max_value: format.max,
            overflow: overflow, nan_value: format.specials == .none ? 0 : .nan)
    }

    /// The integer grid `k·2^−fractionBits`, `|k| ≤ maxCode`, saturating.
    public init(maxCode: Int, fractionBits: Int) {
        let maxValue = Float(maxCode) * Float(sign: .plus, exponent: -fractionBits, significand: 1)
        grid = precis_grid(
            shift: 0, min_normal_bits: Float.infinity.bitPattern,
            magic: Float(sign: .plus, exponent: 23 - fractionBits, significand: 1), max_value: maxValue,
            overflow: maxValue, nan_value: 0)
    }

    /// The largest value of the grid.
    var maxValue: Float { grid.max_value }

    /// The grid value nearest `x`: in the normal range the low mantissa bits are dropped with ties to
    /// even, below it a float32 addition rounds to the fixed spacing, and beyond the largest value
    /// the grid saturates or overflows as its format does. `precis_grid_round` computes the same for
    /// buffers (a test compares the two on every float16 value).
    @inline(__always)
    public func callAsFunction(_ x: Float) -> Float {
        let bits = x.bitPattern, sign = bits & 0x8000_0000, a = bits & 0x7FFF_FFFF
        let shift = grid.shift, low = (UInt32(1) << shift) &- 1
        let normal = (a &+ (low >> 1) &+ ((a >> shift) & 1)) & ~low
        let fixed = ((Float(bitPattern: a) + grid.magic) - grid.magic).bitPattern
        let r = Float(bitPattern: a < grid.min_normal_bits ? fixed : normal)
        let v = a > 0x7F80_0000 ? grid.nan_value : (r > grid.max_value ? grid.overflow : r)
        return Float(bitPattern: v.bitPattern | sign)
    }

    /// Rounds `count` values in place.
    @inline(__always)
    public func round(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var one: Float = 1
        round(x, dividedBy: &one, times: &one, count: count, stride: 0)
    }

    /// `x[i] = f[i·stride]·grid(x[i] / d[i·stride])` for `i < count`: values scaled onto the grid and
    /// back, the scales per value (`stride` 1) or shared (`stride` 0), in C at the CPU's vector
    /// kernel level (`precis_grid_round`).
    @inline(__always)
    func round(
        _ x: UnsafeMutablePointer<Float>, dividedBy d: UnsafePointer<Float>, times f: UnsafePointer<Float>,
        count: Int, stride: Int
    ) {
        precis_grid_round(grid, x, d, f, Int64(count), Int64(stride))
    }
}
