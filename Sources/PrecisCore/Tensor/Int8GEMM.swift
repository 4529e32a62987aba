import CKernels

/// Which int8 GEMM runs on this CPU: `avx512-vnni` (vpdpbusd), `avx2` (vpmaddwd) or `portable`,
/// chosen at run time.
public var int8GEMMPath: String { String(cString: precis_gemm_u8s8_path()) }

/// `C (m×n) = A (m×k, uint8) · B (k×n, int8)` through the packed kernel of integer inference
/// (`precis_pack_s8`, `precis_gemm_u8s8`), exact; `portable` forces the portable path.
func gemmU8S8(_ m: Int, _ n: Int, _ k: Int, _ a: [UInt8], _ b: [Int8], portable: Bool = false) -> [Int32] {
    precondition(
        a.count == m * k && b.count == k * n, "u8s8 gemm: A \(a.count) for \(m)x\(k), B \(b.count) for \(k)x\(n)")
    let lda = (k + 3) / 4 * 4
    var rows = [UInt8](repeating: 0, count: m * lda),
        packed = [Int8](repeating: 0, count: precis_pack_s8_size(Int32(k), Int32(n)))
    for i in 0..<m { for p in 0..<k { rows[i * lda + p] = a[i * k + p] } }
    precis_pack_s8(Int32(k), Int32(n), b, Int32(n), &packed)
    var c = [Int32](repeating: 0, count: m * n)
    precis_gemm_u8s8(Int32(m), Int32(n), Int32(k), rows, Int32(lda), packed, &c, Int32(n), portable ? 1 : 0)
    return c
}
