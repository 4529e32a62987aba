/// `C (m×n) = A (m×k) · B (k×n)`, all row-major with leading dimensions. With `transA`, `A` is
/// stored as `(k×m)` and used transposed. `B` is packed into panels of 16 columns; a
/// register-blocked kernel computes 8 rows × 16 columns of `C` at a time with fused multiply-adds,
/// in blocks of `kc` along `k` so that the packed block of `B` stays in cache. Each element of `C`
/// is one chain of multiply-adds from zero in ascending `k` (a partial chain is stored in `C` and
/// resumed exactly), whatever the blocking or the number of threads.
func gemm<T: NetworkScalar>(
    _ m: Int, _ n: Int, _ k: Int,
    _ a: UnsafePointer<T>, _ lda: Int, transA: Bool = false,
    _ b: UnsafePointer<T>, _ ldb: Int,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int
) {
    let panels = (n + lanes - 1) / lanes
    var packed = [T](repeating: 0, count: panels * k * lanes)  // panels × (k, 16), zero-padded
    packed.withUnsafeMutableBufferPointer { pk in
        for p in 0..<k {
            for j in 0..<n { pk[(j / lanes * k + p) * lanes + j % lanes] = b[p * ldb + j] }
        }
    }
    let (rowStride, colStride) = transA ? (1, lda) : (lda, 1)
    let kc = 256
    packed.withUnsafeBufferPointer { pk in
        parallelChunks((m + 7) / 8, work: m * n * k) { blocks in
            if k == 0 {
                for i in (blocks.lowerBound * 8)..<min(blocks.upperBound * 8, m) { (c + i * ldc).update(repeating: 0, count: n) }
                return
            }
            for k0 in stride(from: 0, to: k, by: kc) {
                let kb = min(kc, k - k0)
                for block in blocks {
                    let i = block * 8
                    for panel in 0..<panels {
                        let j = panel * lanes
                        kernel8x16(rows: min(8, m - i), cols: min(lanes, n - j), k: kb, a + i * rowStride + k0 * colStride, rowStride,
                                   colStride, pk.baseAddress! + (panel * k + k0) * lanes, c + i * ldc + j, ldc, resume: k0 > 0)
                    }
                }
            }
        }
    }
}

private let lanes = 16

/// `C[0..<rows, 0..<cols] = A[0..<rows, 0..<k] · P` where `A[r, p] = a[r·rs + p·cs]` and `P` is a
/// packed `(k, 16)` panel; with `resume`, the chains continue from the values already in `C`.
/// Rows past `rows` repeat the last row and are not stored.
@inline(__always)
private func kernel8x16<T: NetworkScalar>(
    rows: Int, cols: Int, k: Int, _ a: UnsafePointer<T>, _ rs: Int, _ cs: Int,
    _ panel: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>, _ ldc: Int, resume: Bool
) {
    let last = rows - 1
    let a0 = a, a1 = a + min(1, last) * rs, a2 = a + min(2, last) * rs, a3 = a + min(3, last) * rs
    let a4 = a + min(4, last) * rs, a5 = a + min(5, last) * rs, a6 = a + min(6, last) * rs, a7 = a + min(7, last) * rs
    @inline(__always) func load(_ row: Int) -> SIMD16<T> {
        guard resume && row < rows else { return SIMD16<T>() }
        let from = c + row * ldc
        if cols == lanes { return UnsafeRawPointer(from).loadUnaligned(as: SIMD16<T>.self) }
        var v = SIMD16<T>()
        for j in 0..<cols { v[j] = from[j] }
        return v
    }
    var c0 = load(0), c1 = load(1), c2 = load(2), c3 = load(3), c4 = load(4), c5 = load(5), c6 = load(6), c7 = load(7)
    let raw = UnsafeRawPointer(panel)
    for p in 0..<k {
        let bv = raw.loadUnaligned(fromByteOffset: p * lanes * MemoryLayout<T>.stride, as: SIMD16<T>.self)
        let o = p * cs
        c0 = c0.addingProduct(a0[o], bv)
        c1 = c1.addingProduct(a1[o], bv)
        c2 = c2.addingProduct(a2[o], bv)
        c3 = c3.addingProduct(a3[o], bv)
        c4 = c4.addingProduct(a4[o], bv)
        c5 = c5.addingProduct(a5[o], bv)
        c6 = c6.addingProduct(a6[o], bv)
        c7 = c7.addingProduct(a7[o], bv)
    }
    @inline(__always) func store(_ v: SIMD16<T>, _ row: Int) {
        guard row < rows else { return }
        let out = c + row * ldc
        if cols == lanes {
            UnsafeMutableRawPointer(out).storeBytes(of: v, as: SIMD16<T>.self)
        } else {
            for j in 0..<cols { out[j] = v[j] }
        }
    }
    store(c0, 0); store(c1, 1); store(c2, 2); store(c3, 3)
    store(c4, 4); store(c5, 5); store(c6, 6); store(c7, 7)
}

/// The transpose of a row-major `(rows×cols)` matrix.
func transposed<T: NetworkScalar>(_ x: [T], rows: Int, cols: Int) -> [T] {
    precondition(x.count == rows * cols)
    var y = [T](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { xs in
        y.withUnsafeMutableBufferPointer { ys in
            for r in 0..<rows {
                for c in 0..<cols { ys[c * rows + r] = xs[r * cols + c] }
            }
        }
    }
    return y
}
