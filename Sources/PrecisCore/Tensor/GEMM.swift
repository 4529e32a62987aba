import CKernels

/// `C (m×n) = A (m×k) · B (k×n)`, all row-major with leading dimensions; with `transA`, `A` is
/// stored as `(k×m)` and used transposed. `A` is packed into blocks of 8 rows; `B` is read in
/// place (row `p` at `b + bRows[p]`, so its rows may be any views, such as shifted input planes),
/// in panels; a register-blocked kernel in C computes a tile of `C` with fused multiply-adds: with
/// AVX-512, 8 rows × two 512-bit vectors (32 Floats, 16 Doubles); else 4 rows × two 256-bit vectors
/// (16 Floats, 8 Doubles), in AVX2 registers or, portably, without FMA instructions (a float32 fused
/// multiply-add computed exactly in double, a float64 one by the C library's `fma`). Each element of
/// `C` is one chain of multiply-adds from zero in ascending `k`, whatever the blocking, the kernel
/// level or the number of threads.
func gemm<T: NetworkScalar>(
    _ m: Int, _ n: Int, _ k: Int,
    _ a: UnsafePointer<T>, _ lda: Int, transA: Bool = false,
    _ b: UnsafePointer<T>, _ ldb: Int,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int,
    parallel: Bool = true
) {
    guard k > 0 else {
        for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
        return
    }
    let ap = packRows(m, k, a, lda, transA: transA), rows = (0..<k).map { $0 * ldb }
    ap.withUnsafeBufferPointer { gemmPacked(m, n, k, $0.baseAddress!, b, rows, c, ldc, parallel: parallel) }
}

/// `A (m×k)` (or `(k×m)` with `transA`) as blocks of 8 rows, each block `(k, 8)`; rows past `m` are 0.
func packRows<T: NetworkScalar>(_ m: Int, _ k: Int, _ a: UnsafePointer<T>, _ lda: Int, transA: Bool = false) -> [T] {
    var ap = [T](repeating: 0, count: (m + 7) / 8 * k * 8)
    ap.withUnsafeMutableBufferPointer { ap in
        for i in 0..<m {
            let block = ap.baseAddress! + (i / 8 * k) * 8 + i % 8
            if transA {
                for p in 0..<k { block[p * 8] = a[p * lda + i] }
            } else {
                for p in 0..<k { block[p * 8] = a[i * lda + p] }
            }
        }
    }
    return ap
}

/// `gemm` with `A` already packed by `packRows` and row `p` of `B` at `b + bRows[p]`, in the
/// scalar type's kernel (`ScalarKernels.gemmPanels`).
func gemmPacked<T: NetworkScalar>(
    _ m: Int, _ n: Int, _ k: Int, _ ap: UnsafePointer<T>, _ b: UnsafePointer<T>, _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int, parallel: Bool = true
) {
    let panels = (n + T.panelWidth - 1) / T.panelWidth
    let body = { (range: Range<Int>) in T.gemmPanels(m, n, k, ap, b, bRows, c, ldc, range) }
    if parallel { parallelChunks(panels, work: m * n * k, body) } else { body(0..<panels) }
}

/// The vector kernels this CPU runs: `avx512`, `avx2` or `portable` (every level gives the same
/// values). The environment variable `PRECIS_KERNELS` set to `avx2` or `portable` lowers it.
public var kernelLevel: String { String(cString: precis_kernel_name()) }

/// Whether `name` is a value `PRECIS_KERNELS` takes: `avx512`, `avx2` or `portable`.
public func isKernelLevel(_ name: String) -> Bool { precis_kernel_name_valid(name) != 0 }

/// Panels `range` of 24 columns of a `Float16` GEMM in Swift, each against every 8-row block of
/// `A` in two halves of 4 rows; the last, partial panel is first copied with zeros to full width.
func halfPanels<T: NetworkScalar>(
    _ range: Range<Int>, _ m: Int, _ n: Int, _ k: Int, _ ap: UnsafePointer<T>, _ b: UnsafePointer<T>,
    _ bRows: UnsafePointer<Int>, _ c: UnsafeMutablePointer<T>, _ ldc: Int
) {
    let width = 24, blocks = (m + 7) / 8
    func tiles(_ b: UnsafePointer<T>, _ bRows: UnsafePointer<Int>, _ j: Int, _ cols: Int) {
        for block in 0..<blocks {
            let rows = min(8, m - block * 8), a = ap + block * k * 8, cb = c + block * 8 * ldc + j
            kernel4x3(SIMD8<T>.self, rows: min(4, rows), cols: cols, k: k, a, b, bRows, cb, ldc)
            if rows > 4 {
                kernel4x3(SIMD8<T>.self, rows: rows - 4, cols: cols, k: k, a + 4, b, bRows, cb + 4 * ldc, ldc)
            }
        }
    }
    for panel in range {
        let j = panel * width, cols = min(width, n - j)
        guard cols < width else {
            tiles(b + j, bRows, j, cols)
            continue
        }
        var edge = [T](repeating: 0, count: k * width)
        for p in 0..<k { for q in 0..<cols { edge[p * width + q] = b[bRows[p] + j + q] } }
        let rows = (0..<k).map { $0 * width }
        edge.withUnsafeBufferPointer { e in
            rows.withUnsafeBufferPointer { tiles(e.baseAddress!, $0.baseAddress!, j, cols) }
        }
    }
}

/// `C[0..<rows, 0..<cols] = A · B` for 4 rows of a packed block (row `r` of `A` at `a[p·8 + r]`)
/// and a panel `B (k, 3 vectors)` whose row `p` starts at `b + bRows[p]`: 12 accumulators, three
/// loads of `B` and four broadcasts of `A` for each `p`. Rows and columns past `rows` and `cols`
/// are computed but not stored.
@inline(__always)
private func kernel4x3<V: SIMD>(
    _: V.Type, rows: Int, cols: Int, k: Int, _ a: UnsafePointer<V.Scalar>, _ b: UnsafePointer<V.Scalar>,
    _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<V.Scalar>, _ ldc: Int
) where V.Scalar: FloatingPoint {
    var c0 = V(), c1 = V(), c2 = V(), c3 = V(), d0 = V(), d1 = V(), d2 = V(), d3 = V()
    var e0 = V(), e1 = V(), e2 = V(), e3 = V()
    let w = V.scalarCount * MemoryLayout<V.Scalar>.stride
    for p in 0..<k {
        let row = UnsafeRawPointer(b + bRows[p])
        let u = row.loadUnaligned(as: V.self), v = row.loadUnaligned(fromByteOffset: w, as: V.self),
            x = row.loadUnaligned(fromByteOffset: 2 * w, as: V.self)
        let s = a + p * 8
        let s0 = V(repeating: s[0]), s1 = V(repeating: s[1]), s2 = V(repeating: s[2]), s3 = V(repeating: s[3])
        c0 = c0.addingProduct(s0, u)
        d0 = d0.addingProduct(s0, v)
        e0 = e0.addingProduct(s0, x)
        c1 = c1.addingProduct(s1, u)
        d1 = d1.addingProduct(s1, v)
        e1 = e1.addingProduct(s1, x)
        c2 = c2.addingProduct(s2, u)
        d2 = d2.addingProduct(s2, v)
        e2 = e2.addingProduct(s2, x)
        c3 = c3.addingProduct(s3, u)
        d3 = d3.addingProduct(s3, v)
        e3 = e3.addingProduct(s3, x)
    }
    @inline(__always) func store(_ u: V, _ v: V, _ x: V, _ row: Int) {
        guard row < rows else { return }
        let out = c + row * ldc, n = V.scalarCount
        if cols == 3 * n {
            UnsafeMutableRawPointer(out).storeBytes(of: u, as: V.self)
            UnsafeMutableRawPointer(out).storeBytes(of: v, toByteOffset: w, as: V.self)
            UnsafeMutableRawPointer(out).storeBytes(of: x, toByteOffset: 2 * w, as: V.self)
        } else {
            for q in 0..<cols { out[q] = q < n ? u[q] : q < 2 * n ? v[q - n] : x[q - 2 * n] }
        }
    }
    store(c0, d0, e0, 0)
    store(c1, d1, e1, 1)
    store(c2, d2, e2, 2)
    store(c3, d3, e3, 3)
}

/// `C (m×n) = A (m×len) · Bᵀ` for `B (n×len)` whose row `j` starts at `b + bRows[j]`, `len` a
/// multiple of 16: every element is a dot product of two contiguous rows, summed in 16 lanes and
/// then pairwise (a fixed order), in tiles of the scalar type's kernel (`ScalarKernels.gemmABtTiles`).
/// Tiles are split over the cores when `parallel`.
func gemmABt<T: NetworkScalar>(
    _ m: Int, _ n: Int, _ len: Int, _ a: UnsafePointer<T>, _ lda: Int, _ b: UnsafePointer<T>,
    _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int, parallel: Bool = true
) {
    precondition(len % 16 == 0, "gemmABt needs a length that is a multiple of 16")
    let (tileRows, tileCols) = T.abtTile
    let tiles = (m + tileRows - 1) / tileRows * ((n + tileCols - 1) / tileCols)
    let body = { (range: Range<Int>) in T.gemmABtTiles(m, n, len, a, lda, b, bRows, c, ldc, range) }
    if parallel { parallelChunks(tiles, work: m * n * len, body) } else { body(0..<tiles) }
}

/// Tiles `range` of 2×3 of `gemmABt` in Swift (row tiles first).
func abtTiles2x3<T: NetworkScalar>(
    _ m: Int, _ n: Int, _ len: Int, _ a: UnsafePointer<T>, _ lda: Int, _ b: UnsafePointer<T>,
    _ bRows: UnsafePointer<Int>, _ c: UnsafeMutablePointer<T>, _ ldc: Int, _ range: Range<Int>
) {
    let rowTiles = (m + 1) / 2
    for t in range {
        let (i, j) = (t % rowTiles * 2, t / rowTiles * 3)
        dot2x3(rows: min(2, m - i), cols: min(3, n - j), len: len, a + i * lda, lda, b, bRows + j, c + i * ldc + j, ldc)
    }
}

/// 2 rows of `a` and the 3 rows of `b` at `bRows[0..<3]`: each element's products summed in 16
/// lanes, and the lanes by `pairwiseSum`; rows past `rows` and `cols` repeat the last one and are
/// not stored.
@inline(__always)
func dot2x3<T: NetworkScalar>(
    rows: Int, cols: Int, len: Int, _ a: UnsafePointer<T>, _ lda: Int, _ b: UnsafePointer<T>,
    _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int
) {
    let a0 = a, a1 = a + min(1, rows - 1) * lda
    let b0 = b + bRows[0], b1 = b + bRows[min(1, cols - 1)], b2 = b + bRows[min(2, cols - 1)]
    typealias V = SIMD16<T>
    var s00 = V(), s01 = V(), s02 = V(), s10 = V(), s11 = V(), s12 = V()
    @inline(__always) func load(_ p: UnsafePointer<T>, _ o: Int) -> V {
        UnsafeRawPointer(p + o).loadUnaligned(as: V.self)
    }
    for o in stride(from: 0, to: len, by: 16) {
        let x0 = load(a0, o), x1 = load(a1, o)
        let y0 = load(b0, o)
        s00 = s00.addingProduct(x0, y0)
        s10 = s10.addingProduct(x1, y0)
        let y1 = load(b1, o)
        s01 = s01.addingProduct(x0, y1)
        s11 = s11.addingProduct(x1, y1)
        let y2 = load(b2, o)
        s02 = s02.addingProduct(x0, y2)
        s12 = s12.addingProduct(x1, y2)
    }
    let sums = [[s00, s01, s02], [s10, s11, s12]]
    for r in 0..<rows {
        for q in 0..<cols { c[r * ldc + q] = pairwiseSum(sums[r][q]) }
    }
}

/// The 16 lanes of `x` added in neighbouring pairs, then pairs of those, and so on.
@inline(__always)
private func pairwiseSum<T: NetworkScalar>(_ x: SIMD16<T>) -> T {
    let x8 = x.evenHalf + x.oddHalf, x4 = x8.evenHalf + x8.oddHalf, x2 = x4.evenHalf + x4.oddHalf
    return x2[0] + x2[1]
}

/// Whether the strict-half GEMMs run in C with vector conversions (AVX2 or AVX-512, F16C), read
/// once; the results are the same as the Swift kernels' bit for bit, 8 or 16 lanes at a time
/// instead of one.
let halfKernels = precis_half_kernels() != 0

/// The transpose of a row-major `(rows×cols)` matrix, in blocks of 16×16 so that both sides stay in
/// cache.
func transposed<T: NetworkScalar>(_ x: [T], rows: Int, cols: Int) -> [T] {
    precondition(x.count == rows * cols)
    return filledArray(x.count) { ys in
        x.withUnsafeBufferPointer { xs in
            for r0 in stride(from: 0, to: rows, by: 16) {
                for c0 in stride(from: 0, to: cols, by: 16) {
                    for r in r0..<min(r0 + 16, rows) {
                        for c in c0..<min(c0 + 16, cols) { ys[c * rows + r] = xs[r * cols + c] }
                    }
                }
            }
        }
    }
}
