import CKernels

/// `C (m×n) = A (m×k) · B (k×n)`, all row-major with leading dimensions; with `transA`, `A` is
/// stored as `(k×m)` and used transposed. `A` is packed into blocks of 8 rows; `B` is read in
/// place (row `p` at `b + bRows[p]`, so its rows may be any views, such as shifted input planes),
/// in panels; a register-blocked kernel computes a tile of `C` with fused multiply-adds: with
/// AVX-512, 8 rows × two 512-bit vectors (32 Floats, 16 Doubles); else, with its 16 vector
/// registers, 4 rows × three 256-bit vectors (24 Floats, 12 Doubles). Each element of `C` is one
/// chain of multiply-adds from zero in ascending `k`, whatever the blocking or the number of threads.
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

/// `gemm` with `A` already packed by `packRows` and row `p` of `B` at `b + bRows[p]`.
func gemmPacked<T: NetworkScalar>(
    _ m: Int, _ n: Int, _ k: Int, _ ap: UnsafePointer<T>, _ b: UnsafePointer<T>, _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int, parallel: Bool = true
) {
    if T.self == Double.self {
        if wideVectors {
            gemmTiles(SIMD8<T>.self, m, n, k, ap, b, bRows, c, ldc, parallel: parallel)
        } else {
            gemmTiles4x3(SIMD4<T>.self, m, n, k, ap, b, bRows, c, ldc, parallel: parallel)
        }
    } else if T.self == Float16.self && halfKernels {
        let panels = (n + 31) / 32
        let body = { (range: Range<Int>) in
            precis_gemm_f16_panels(
                Int32(m), Int32(n), Int32(k), bits(ap), bits(b), offsets(bRows), bits(c), Int32(ldc),
                Int32(range.lowerBound), Int32(range.upperBound))
        }
        if parallel { parallelChunks(panels, work: m * n * k, body) } else { body(0..<panels) }
    } else if wideVectors {
        gemmTiles(SIMD16<T>.self, m, n, k, ap, b, bRows, c, ldc, parallel: parallel)
    } else {
        gemmTiles4x3(SIMD8<T>.self, m, n, k, ap, b, bRows, c, ldc, parallel: parallel)
    }
}

/// The columns of `B` one tile of `gemmPacked` covers: a `B` whose width is a multiple of it is read
/// in place, with no edge panel copied.
func panelWidth<T: NetworkScalar>(_: T.Type) -> Int {
    if T.self == Double.self { return wideVectors ? 16 : 12 }
    return wideVectors || (T.self == Float16.self && halfKernels) ? 32 : 24
}

/// Whether the CPU's vectors are 512 bits wide (AVX-512), with 32 vector registers.
let wideVectors = precis_kernel_level() == 2

/// The vector kernels this CPU runs: `avx512`, `avx2` or `portable` (every level gives the same
/// values). The environment variable `PRECIS_KERNELS` set to `avx2` or `portable` lowers it.
public var kernelLevel: String { String(cString: precis_kernel_name()) }

/// Whether `name` is a value `PRECIS_KERNELS` takes: `avx512`, `avx2` or `portable`.
public func isKernelLevel(_ name: String) -> Bool { precis_kernel_name_valid(name) != 0 }

/// Runs the 8-row kernel over every (row block, panel) tile, panels split over the cores.
@inline(__always)
private func gemmTiles<T: NetworkScalar, V: SIMD>(
    _: V.Type, _ m: Int, _ n: Int, _ k: Int, _ ap: UnsafePointer<T>, _ b: UnsafePointer<T>, _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int, parallel: Bool
) where V.Scalar == T {
    panels(width: 2 * V.scalarCount, m, n, k, ap, b, bRows, c, ldc, parallel: parallel) { rows, cols, a, b, bRows, c in
        kernel8(V.self, rows: rows, cols: cols, k: k, a, b, bRows, c, ldc)
    }
}

/// Runs the 4-row kernel over every (half row block, panel) tile, panels split over the cores.
@inline(__always)
private func gemmTiles4x3<T: NetworkScalar, V: SIMD>(
    _: V.Type, _ m: Int, _ n: Int, _ k: Int, _ ap: UnsafePointer<T>, _ b: UnsafePointer<T>, _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int, parallel: Bool
) where V.Scalar == T {
    panels(width: 3 * V.scalarCount, m, n, k, ap, b, bRows, c, ldc, parallel: parallel) { rows, cols, a, b, bRows, c in
        kernel4x3(V.self, rows: min(4, rows), cols: cols, k: k, a, b, bRows, c, ldc)
        if rows > 4 { kernel4x3(V.self, rows: rows - 4, cols: cols, k: k, a + 4, b, bRows, c + 4 * ldc, ldc) }
    }
}

/// Calls `tile(rows, cols, A block, B, B's rows, C)` for every 8-row block of `A` and every panel
/// of `width` columns of `B`, panels split over the cores; the last, partial panel is copied with
/// zero padding to full width.
@inline(__always)
private func panels<T: NetworkScalar>(
    width: Int, _ m: Int, _ n: Int, _ k: Int, _ ap: UnsafePointer<T>, _ b: UnsafePointer<T>,
    _ bRows: UnsafePointer<Int>, _ c: UnsafeMutablePointer<T>, _ ldc: Int, parallel: Bool,
    _ tile:
        @escaping (
            Int, Int, UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<Int>, UnsafeMutablePointer<T>
        ) -> Void
) {
    let blocks = (m + 7) / 8, panels = (n + width - 1) / width
    let body = { (range: Range<Int>) in
        for panel in range {
            let j = panel * width, cols = min(width, n - j)
            guard cols < width else {
                for block in 0..<blocks {
                    tile(min(8, m - block * 8), cols, ap + block * k * 8, b + j, bRows, c + block * 8 * ldc + j)
                }
                continue
            }
            var edge = [T](repeating: 0, count: k * width)
            for p in 0..<k { for q in 0..<cols { edge[p * width + q] = b[bRows[p] + j + q] } }
            let rows = (0..<k).map { $0 * width }
            edge.withUnsafeBufferPointer { e in
                rows.withUnsafeBufferPointer { rows in
                    for block in 0..<blocks {
                        tile(
                            min(8, m - block * 8), cols, ap + block * k * 8, e.baseAddress!, rows.baseAddress!,
                            c + block * 8 * ldc + j)
                    }
                }
            }
        }
    }
    if parallel { parallelChunks(panels, work: m * n * k, body) } else { body(0..<panels) }
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

/// `C[0..<rows, 0..<cols] = A · B` for one packed block `A (k, 8)` and a panel `B (k, 2 vectors)`
/// whose row `p` starts at `b + bRows[p]`; rows and columns past `rows` and `cols` are computed but
/// not stored.
@inline(__always)
private func kernel8<V: SIMD>(
    _: V.Type, rows: Int, cols: Int, k: Int, _ a: UnsafePointer<V.Scalar>, _ b: UnsafePointer<V.Scalar>,
    _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<V.Scalar>, _ ldc: Int
) where V.Scalar: FloatingPoint {
    var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
    var d0 = V(), d1 = V(), d2 = V(), d3 = V(), d4 = V(), d5 = V(), d6 = V(), d7 = V()
    let half = V.scalarCount * MemoryLayout<V.Scalar>.stride
    for p in 0..<k {
        let row = UnsafeRawPointer(b + bRows[p])
        let u = row.loadUnaligned(as: V.self), v = row.loadUnaligned(fromByteOffset: half, as: V.self)
        let s = a + p * 8
        c0 = c0.addingProduct(s[0], u)
        d0 = d0.addingProduct(s[0], v)
        c1 = c1.addingProduct(s[1], u)
        d1 = d1.addingProduct(s[1], v)
        c2 = c2.addingProduct(s[2], u)
        d2 = d2.addingProduct(s[2], v)
        c3 = c3.addingProduct(s[3], u)
        d3 = d3.addingProduct(s[3], v)
        c4 = c4.addingProduct(s[4], u)
        d4 = d4.addingProduct(s[4], v)
        c5 = c5.addingProduct(s[5], u)
        d5 = d5.addingProduct(s[5], v)
        c6 = c6.addingProduct(s[6], u)
        d6 = d6.addingProduct(s[6], v)
        c7 = c7.addingProduct(s[7], u)
        d7 = d7.addingProduct(s[7], v)
    }
    @inline(__always) func store(_ u: V, _ v: V, _ row: Int) {
        guard row < rows else { return }
        let out = c + row * ldc
        if cols == 2 * V.scalarCount {
            UnsafeMutableRawPointer(out).storeBytes(of: u, as: V.self)
            UnsafeMutableRawPointer(out).storeBytes(of: v, toByteOffset: half, as: V.self)
        } else {
            for q in 0..<cols { out[q] = q < V.scalarCount ? u[q] : v[q - V.scalarCount] }
        }
    }
    store(c0, d0, 0)
    store(c1, d1, 1)
    store(c2, d2, 2)
    store(c3, d3, 3)
    store(c4, d4, 4)
    store(c5, d5, 5)
    store(c6, d6, 6)
    store(c7, d7, 7)
}

/// `C (m×n) = A (m×len) · Bᵀ` for `B (n×len)` whose row `j` starts at `b + bRows[j]`, `len` a
/// multiple of 16: every element is a dot product of two contiguous rows, summed in 16 lanes and
/// then pairwise (a fixed order). A kernel computes 4×4 elements at a time with AVX-512, else 2×3
/// (its 16-lane sums take two 256-bit registers each); tiles are split over the cores when
/// `parallel`.
func gemmABt<T: NetworkScalar>(
    _ m: Int, _ n: Int, _ len: Int, _ a: UnsafePointer<T>, _ lda: Int, _ b: UnsafePointer<T>,
    _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int, parallel: Bool = true
) {
    precondition(len % 16 == 0, "gemmABt needs a length that is a multiple of 16")
    guard wideVectors || (T.self == Float16.self && halfKernels) else {
        let rowTiles = (m + 1) / 2, colTiles = (n + 2) / 3
        let body = { (tiles: Range<Int>) in
            for t in tiles {
                let (i, j) = (t % rowTiles * 2, t / rowTiles * 3)
                dot2x3(
                    rows: min(2, m - i), cols: min(3, n - j), len: len, a + i * lda, lda, b, bRows + j,
                    c + i * ldc + j, ldc)
            }
        }
        return parallel ? parallelChunks(rowTiles * colTiles, work: m * n * len, body) : body(0..<(rowTiles * colTiles))
    }
    let rowTiles = (m + 3) / 4, colTiles = (n + 3) / 4
    let body = { (tiles: Range<Int>) in
        if T.self == Float16.self && halfKernels {
            return precis_gemm_abt_f16_tiles(
                Int32(m), Int32(n), Int32(len), bits(a), Int32(lda), bits(b), offsets(bRows), bits(c), Int32(ldc),
                Int32(tiles.lowerBound), Int32(tiles.upperBound))
        }
        for t in tiles {
            let (i, j) = (t % rowTiles * 4, t / rowTiles * 4)
            dot4x4(
                rows: min(4, m - i), cols: min(4, n - j), len: len, a + i * lda, lda, b, bRows + j, c + i * ldc + j, ldc
            )
        }
    }
    if parallel {
        parallelChunks(rowTiles * colTiles, work: m * n * len, body)
    } else {
        body(0..<(rowTiles * colTiles))
    }
}

/// Dot products of 4 rows of `a` with the 4 rows of `b` at `bRows[0..<4]`; rows past `rows`/`cols`
/// repeat the last one and are not stored.
@inline(__always)
private func dot4x4<T: NetworkScalar>(
    rows: Int, cols: Int, len: Int, _ a: UnsafePointer<T>, _ lda: Int, _ b: UnsafePointer<T>,
    _ bRows: UnsafePointer<Int>,
    _ c: UnsafeMutablePointer<T>, _ ldc: Int
) {
    let a0 = a, a1 = a + min(1, rows - 1) * lda, a2 = a + min(2, rows - 1) * lda, a3 = a + min(3, rows - 1) * lda
    let b0 = b + bRows[0], b1 = b + bRows[min(1, cols - 1)], b2 = b + bRows[min(2, cols - 1)],
        b3 = b + bRows[min(3, cols - 1)]
    typealias V = SIMD16<T>
    var s00 = V(), s01 = V(), s02 = V(), s03 = V(), s10 = V(), s11 = V(), s12 = V(), s13 = V()
    var s20 = V(), s21 = V(), s22 = V(), s23 = V(), s30 = V(), s31 = V(), s32 = V(), s33 = V()
    @inline(__always) func load(_ p: UnsafePointer<T>, _ o: Int) -> V {
        UnsafeRawPointer(p + o).loadUnaligned(as: V.self)
    }
    for o in stride(from: 0, to: len, by: 16) {
        let x0 = load(a0, o), x1 = load(a1, o), x2 = load(a2, o), x3 = load(a3, o)
        let y0 = load(b0, o), y1 = load(b1, o), y2 = load(b2, o), y3 = load(b3, o)
        s00 = s00.addingProduct(x0, y0)
        s01 = s01.addingProduct(x0, y1)
        s02 = s02.addingProduct(x0, y2)
        s03 = s03.addingProduct(x0, y3)
        s10 = s10.addingProduct(x1, y0)
        s11 = s11.addingProduct(x1, y1)
        s12 = s12.addingProduct(x1, y2)
        s13 = s13.addingProduct(x1, y3)
        s20 = s20.addingProduct(x2, y0)
        s21 = s21.addingProduct(x2, y1)
        s22 = s22.addingProduct(x2, y2)
        s23 = s23.addingProduct(x2, y3)
        s30 = s30.addingProduct(x3, y0)
        s31 = s31.addingProduct(x3, y1)
        s32 = s32.addingProduct(x3, y2)
        s33 = s33.addingProduct(x3, y3)
    }
    // Lane sums of the 16 accumulators at once: each fold adds neighbouring lanes of two vectors
    // into one, so after four levels lane r·4+q holds the sum for row r, column q.
    @inline(__always) func fold(_ u: V, _ v: V) -> V {
        V(lowHalf: u.evenHalf + u.oddHalf, highHalf: v.evenHalf + v.oddHalf)
    }
    let h0 = fold(fold(s00, s01), fold(s02, s03)), h1 = fold(fold(s10, s11), fold(s12, s13))
    let h2 = fold(fold(s20, s21), fold(s22, s23)), h3 = fold(fold(s30, s31), fold(s32, s33))
    let sums = fold(fold(h0, h1), fold(h2, h3))
    for r in 0..<rows {
        for q in 0..<cols { c[r * ldc + q] = sums[r * 4 + q] }
    }
}

/// `dot4x4` for 2 rows of `a` and the 3 rows of `b` at `bRows[0..<3]`, each element's 16 lanes
/// summed by `pairwiseSum`, which adds them in the order `dot4x4`'s folds do.
@inline(__always)
private func dot2x3<T: NetworkScalar>(
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

/// A `Float16` matrix's elements as their bit patterns, for the C kernels.
@inline(__always)
func bits<T>(_ p: UnsafePointer<T>) -> UnsafePointer<UInt16> {
    UnsafeRawPointer(p).assumingMemoryBound(to: UInt16.self)
}

@inline(__always)
func bits<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<UInt16> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt16.self)
}

/// A `Float` matrix's elements, for the C kernels (called only where `T` is `Float`).
@inline(__always)
func floats<T>(_ p: UnsafePointer<T>) -> UnsafePointer<Float> {
    UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
}

@inline(__always)
func floats<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}

/// Row offsets as the C kernels take them.
@inline(__always)
private func offsets(_ p: UnsafePointer<Int>) -> UnsafePointer<Int64> {
    UnsafeRawPointer(p).assumingMemoryBound(to: Int64.self)
}

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
