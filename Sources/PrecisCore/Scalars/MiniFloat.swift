/// The small floating-point formats of OCP's 8-bit floating point (OFP8) and Microscaling (MX v1.0)
/// specifications, as codes of up to 8 bits: E4M3 and E5M2, E3M2 and E2M3, E2M1, and the E8M0
/// scale. Conversion from float32 rounds to nearest, ties to even, through subnormals; what happens
/// beyond the largest finite value follows ml_dtypes, the reference these codes are checked against
/// bit for bit (`Tools/formats-check.py`).
public struct MiniFloat: Sendable, Hashable, CustomStringConvertible {
    /// Which codes are special.
    public enum Specials: Sendable, Hashable {
        /// IEEE-style: the top exponent holds ±infinity (mantissa 0) and NaN (E5M2).
        case ieee
        /// No infinities; only S.1111.111 is NaN, so the top exponent holds numbers too (E4M3).
        case nanOnly
        /// Every code is a number (the MX FP6 and FP4 elements).
        case none
        /// An unsigned power of two 2^(code − 127), 0xFF NaN, no zero (E8M0, the MX scale).
        case exponentOnly
    }

    public let name: String
    public let exponentBits: Int, mantissaBits: Int, bias: Int
    public let specials: Specials

    public static let e4m3 = MiniFloat(name: "e4m3", exponentBits: 4, mantissaBits: 3, bias: 7, specials: .nanOnly)
    public static let e5m2 = MiniFloat(name: "e5m2", exponentBits: 5, mantissaBits: 2, bias: 15, specials: .ieee)
    public static let e3m2 = MiniFloat(name: "e3m2", exponentBits: 3, mantissaBits: 2, bias: 3, specials: .none)
    public static let e2m3 = MiniFloat(name: "e2m3", exponentBits: 2, mantissaBits: 3, bias: 1, specials: .none)
    public static let e2m1 = MiniFloat(name: "e2m1", exponentBits: 2, mantissaBits: 1, bias: 1, specials: .none)
    public static let e8m0 = MiniFloat(
        name: "e8m0", exponentBits: 8, mantissaBits: 0, bias: 127, specials: .exponentOnly)
    /// Every format, widest first.
    public static let all = [e4m3, e5m2, e3m2, e2m3, e2m1, e8m0]

    public var description: String { name }

    /// Bits per code: sign (none for E8M0), exponent and mantissa.
    public var bits: Int { (specials == .exponentOnly ? 0 : 1) + exponentBits + mantissaBits }

    private var signBit: UInt8 { specials == .exponentOnly ? 0 : UInt8(1) << (exponentBits + mantissaBits) }
    private var topExponent: Int { (1 << exponentBits) - 1 }
    private var mantissaMask: Int { (1 << mantissaBits) - 1 }
    /// The smallest normal exponent.
    private var minExponent: Int { 1 - bias }

    /// The code of the largest finite value (positive).
    public var maxCode: UInt8 {
        switch specials {
        case .ieee: return UInt8(((topExponent - 1) << mantissaBits) | mantissaMask)
        case .nanOnly: return UInt8((topExponent << mantissaBits) | (mantissaMask - 1))
        case .none: return UInt8((topExponent << mantissaBits) | mantissaMask)
        case .exponentOnly: return 0xFE
        }
    }

    /// The largest finite value.
    public var max: Float { decode(maxCode) }

    /// The smallest positive value: the smallest subnormal (for E8M0, 2^−127).
    public var smallest: Float { decode(specials == .exponentOnly ? 0 : 1) }

    /// The value of `code` (its low `bits` bits).
    public func decode(_ code: UInt8) -> Float {
        if specials == .exponentOnly {
            return code == 0xFF ? .nan : Float(sign: .plus, exponent: Int(code) - bias, significand: 1)
        }
        let negative = code & signBit != 0
        let e = Int(code >> mantissaBits) & topExponent, m = Int(code) & mantissaMask
        if e == topExponent {
            if specials == .ieee { return m == 0 ? (negative ? -.infinity : .infinity) : .nan }
            if specials == .nanOnly && m == mantissaMask { return .nan }
        }
        let magnitude =
            e == 0
            ? Float(m) * Float(sign: .plus, exponent: minExponent - mantissaBits, significand: 1)
            : Float(sign: .plus, exponent: e - bias, significand: 1 + Float(m) / Float(1 << mantissaBits))
        return negative ? -magnitude : magnitude
    }

    /// The code nearest `x` (ties to even). Beyond the largest finite value, and for infinities,
    /// `saturating` gives the largest finite value of the same sign; otherwise E5M2 gives an
    /// infinity, E4M3 NaN, and the formats without either saturate anyway. NaN gives NaN where the
    /// format has one (ml_dtypes maps it to a signed zero in the FP6 and FP4 formats). E8M0, a scale,
    /// has no saturating form.
    @inline(__always)
    public func encode(_ x: Float, saturating: Bool = false) -> UInt8 {
        if specials == .exponentOnly { return encodeScale(x) }
        let negative = x.sign == .minus, sign = negative ? signBit : 0
        let nan = UInt8((topExponent << mantissaBits) | mantissaMask)
        if x.isNaN {
            switch specials {
            case .ieee: return sign | UInt8((topExponent << mantissaBits) | (1 << (mantissaBits - 1)))
            case .nanOnly: return sign | nan
            case .none, .exponentOnly: return negative ? 0 : signBit
            }
        }
        let a = x.magnitude
        // The grid spacing where `a` lies (subnormal spacing below the normal range), then rounding.
        let e = a == 0 ? minExponent : Swift.max(Int(a.exponent), minExponent)
        let q = Float(sign: .plus, exponent: e - mantissaBits, significand: 1)
        let r = a.isInfinite ? a : (a / q).rounded(.toNearestOrEven) * q
        if r > max {
            if saturating || specials == .none { return sign | maxCode }
            return sign | (specials == .ieee ? UInt8(topExponent << mantissaBits) : nan)
        }
        if r == 0 { return sign }
        let re = Int(r.exponent)
        if re < minExponent { return sign | UInt8(r / q) }
        let m = Int(r / Float(sign: .plus, exponent: re - mantissaBits, significand: 1)) - (1 << mantissaBits)
        return sign | UInt8(((re + bias) << mantissaBits) | m)
    }

    /// E8M0, as ml_dtypes converts: for a normal float32, its exponent field plus one where the
    /// top mantissa bit is set (ties round up); a float32 subnormal goes to the nearer of 2^−127
    /// and 2^−126, ties up as well (the midpoint 1.5 × 2^−127 has bits 0x60_0000). NaN for NaN,
    /// infinities, zero, negative numbers and values that round past 2^127.
    private func encodeScale(_ x: Float) -> UInt8 {
        guard x.isFinite, x > 0 else { return 0xFF }
        let b = x.bitPattern
        if b < 0x0080_0000 { return b >= 0x60_0000 ? 1 : 0 }
        let code = (b + 0x40_0000) >> 23
        return code > 0xFE ? 0xFF : UInt8(code)
    }
}
