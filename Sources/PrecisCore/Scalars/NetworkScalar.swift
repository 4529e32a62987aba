import RealModule

/// The scalar a network computes in. Every layer, optimizer and model is written once, generic over
/// this protocol, and runs as `Double`, `Float` or `Float16`: each operation rounds to `Self`, so a
/// `Network<Float16>` is a pure half-precision device (products and sums in half).
public protocol NetworkScalar: BinaryFloatingPoint, Real, SIMDScalar, Codable, Sendable, ScalarKernels
where RawSignificand: FixedWidthInteger {
    /// The name of the precision mode this scalar type implements (`float64`, `float32`, `float16`).
    static var precisionName: String { get }
}
