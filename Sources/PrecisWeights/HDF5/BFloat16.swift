import PrecisCore

/// A bfloat16 value as stored on disk: the upper 16 bits of a float32 (sign, 8-bit exponent,
/// 7-bit mantissa). Conversion from Float rounds to nearest, ties to even; NaN stays NaN.
public struct BFloat16: Equatable, Sendable {
    public var bitPattern: UInt16

    public init(bitPattern: UInt16) {
        self.bitPattern = bitPattern
    }

    /// `x` rounded to nearest even.
    public init(_ x: Float) {
        bitPattern = bfloat16Bits(x)
    }

    /// The exact Float value.
    public var float: Float { Float(bitPattern: UInt32(bitPattern) << 16) }
}
