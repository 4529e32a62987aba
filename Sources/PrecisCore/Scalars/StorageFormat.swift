import CKernels

/// How values are kept between operations. `native`: in the compute type itself. `float16` and
/// `bfloat16`: weights, inputs, every GEMM result and every layer output are rounded (to nearest,
/// ties to even) to that format, while products and sums run in the compute type: with Float
/// compute these are the `float16-acc32` and `bfloat16-acc32` modes.
public enum StorageFormat: String, Sendable, CaseIterable {
    case native, float16, bfloat16

    /// `x` rounded to the storage format, in the compute type.
    @inline(__always)
    public func round<T: NetworkScalar>(_ x: T) -> T {
        switch self {
        case .native: return x
        case .float16: return T(Float16(x))
        case .bfloat16: return T(Float(bitPattern: UInt32(bfloat16Bits(Float(x))) << 16))
        }
    }

    /// Rounds every value in place (float32 in C: to bfloat16 at every kernel level, to half with F16C
    /// where the CPU has it).
    public func round<T: NetworkScalar>(_ values: inout [T]) {
        if self == .native { return }
        values.withUnsafeMutableBufferPointer { vs in
            if let p = vs.baseAddress, T.round(p, count: vs.count, to: self) { return }
            for i in vs.indices { vs[i] = round(vs[i]) }
        }
    }
}

/// The bfloat16 bit pattern of `x` (the upper half of its float32 bits, rounded to nearest even;
/// NaN stays a quiet NaN).
@inline(__always)
public func bfloat16Bits(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(bits >> 16) | 0x40 }
    return UInt16((bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
}
