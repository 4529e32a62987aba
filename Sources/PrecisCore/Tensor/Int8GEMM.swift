import CKernels

/// Which int8 GEMM runs on this CPU: `avx512-vnni` (vpdpbusd, chosen at run time) or `portable`.
public var int8GEMMPath: String { String(cString: precis_gemm_s8_path()) }

/// `C (m×n) = A (m×k) · B (k×n)` in exact integer arithmetic: int8 operands, int32 results, all
/// row-major and dense. Both paths give identical results; `portable` forces the portable one.
public func gemmInt8(_ m: Int, _ n: Int, _ k: Int, _ a: [Int8], _ b: [Int8], portable: Bool = false) -> [Int32] {
    precondition(a.count == m * k && b.count == k * n, "int8 gemm: A \(a.count) for \(m)x\(k), B \(b.count) for \(k)x\(n)")
    var c = [Int32](repeating: 0, count: m * n)
    c.withUnsafeMutableBufferPointer { cs in
        precis_gemm_s8(Int32(m), Int32(n), Int32(k), a, Int32(k), b, Int32(n), cs.baseAddress, Int32(n), portable ? 1 : 0)
    }
    return c
}
