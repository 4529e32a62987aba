/// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
/// Transformers", Algorithm 1): a layer's weight vectors are rounded one column of the reduction axis at
/// a time, in order, and each column's rounding error is spread over the columns not yet rounded, so
/// that the layer's output on the calibration inputs changes least. With `H = Σ x·xᵀ` over the
/// calibration inputs `x` (a convolution's windows, an affine layer's inputs), the paper's rules:
/// a column no input ever reaches (`H_jj = 0`) gets `H_jj = 1` and weight 0; `λ = 0.01·mean(diag H)`
/// is added to the diagonal; `U` is the upper Cholesky factor of `H⁻¹` (`UᵀU = H⁻¹`); and column `j`
/// of every vector is rounded to `q`, then `w_k −= (w_j − q)/U_jj · U_jk` for every `k > j`.
///
/// The format's scales are set first from the weights, as rounding to nearest sets them (int4 group
/// scales, MX and NVFP4 block scales, tensor scales), and stay: GPTQ chooses the codes only. All in
/// Double; the columns in their stored order (no reordering by `diag H`).
public enum GPTQ {
    /// λ relative to the mean of `H`'s diagonal.
    public static let damping = 0.01

    /// Rounds the vectors `vectors` of `w` (row-major `(t.vectors, t.length)`) into `t`'s codes under
    /// its scales, with `hessian` `(length, length)` = `Σ x·xᵀ`. Throws when `H` with its damping is not
    /// positive definite (a Hessian with a NaN).
    public static func round(_ w: [Double], vectors: Range<Int>, hessian: [Double], into t: inout FormatTensor)
        throws
    {
        let n = t.length
        precondition(w.count == t.vectors * n && hessian.count == n * n, "GPTQ: w and H must fit the tensor")
        guard let block = t.format.block else { preconditionFailure("int8 is an input format") }
        var h = hessian, w = w
        let dead = (0..<n).filter { h[$0 * n + $0] == 0 }
        for j in dead {
            h[j * n + j] = 1
            for v in vectors { w[v * n + j] = 0 }
        }
        let lambda = damping * (0..<n).reduce(0.0) { $0 + h[$1 * n + $1] } / Double(n)
        for j in 0..<n { h[j * n + j] += lambda }
        guard let u = inverseUpperFactor(h, n) else {
            throw ModelError.badSpec("GPTQ: the inputs' Hessian is not positive definite (is there a NaN?)")
        }
        let grid = t
        var codes = t.codes
        codes.withUnsafeMutableBufferPointer { codes in
            u.withUnsafeBufferPointer { u in
                parallelChunks(vectors.count, work: vectors.count * n * n / 2) { chunk in
                    var row = [Double](repeating: 0, count: n)
                    row.withUnsafeMutableBufferPointer { row in
                        for v in chunk.map({ $0 + vectors.lowerBound }) {
                            for k in 0..<n { row[k] = w[v * n + k] }
                            for j in 0..<n {
                                let b = grid.block(of: v * n + j), c = block.code(Float(row[j]), block: b, in: grid)
                                codes[v * n + j] = c
                                let e = (row[j] - Double(block.value(c, block: b, in: grid))) / u[j * n + j]
                                let uj = u.baseAddress! + j * n
                                for k in (j + 1)..<n { row[k] -= e * uj[k] }
                            }
                        }
                    }
                }
            }
        }
        t.codes = codes
    }

    /// `U` with `UᵀU = A⁻¹` for a symmetric positive definite `a` `(n, n)`, row-major, zero below the
    /// diagonal; nil when `a` is not positive definite. With `J` the reversal of the indices and
    /// `JAJ = LLᵀ` (lower Cholesky), `A = RRᵀ` for the upper `R = JLJ`, so `U = R⁻¹ = J·L⁻¹·J`.
    static func inverseUpperFactor(_ a: [Double], _ n: Int) -> [Double]? {
        let reversed = (0..<(n * n)).map { a[n * n - 1 - $0] }
        guard let l = choleskyLower(reversed, n) else { return nil }
        var m = [Double](repeating: 0, count: n * n)  // L⁻¹, lower: row i is (e_i − Σ_k<i L_ik·row k) / L_ii
        m.withUnsafeMutableBufferPointer { m in
            let m = m.baseAddress!
            for i in 0..<n {
                let row = m + i * n
                row[i] = 1
                for k in 0..<i where l[i * n + k] != 0 {
                    let f = -l[i * n + k], source = m + k * n
                    for c in 0...k { row[c] += f * source[c] }
                }
                for c in 0...i { row[c] /= l[i * n + i] }
            }
        }
        return m.reversed()
    }

    /// The lower Cholesky factor `L` of `a` `(n, n)` (`A = LLᵀ`), zero above the diagonal; nil when a
    /// pivot is not positive. Column by column, each entry one dot product of row prefixes (summed
    /// four lanes at a time, in a fixed order), the rows of a column in parallel.
    static func choleskyLower(_ a: [Double], _ n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        let positive = l.withUnsafeMutableBufferPointer { l -> Bool in
            let l = l.baseAddress!
            for j in 0..<n {
                let d = a[j * n + j] - dot(l + j * n, l + j * n, j)
                guard d > 0 else { return false }
                let root = d.squareRoot()
                l[j * n + j] = root
                parallelChunks(n - j - 1, work: (n - j) * j) { rows in
                    for i in rows.map({ $0 + j + 1 }) {
                        l[i * n + j] = (a[i * n + j] - dot(l + i * n, l + j * n, j)) / root
                    }
                }
            }
            return true
        }
        return positive ? l : nil
    }

    /// `Σ x_k·y_k` over `count` values: four partial sums by lane, then added in order, then the rest.
    @inline(__always)
    static func dot(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ count: Int) -> Double {
        var lanes = SIMD4<Double>(repeating: 0), k = 0
        while k + 4 <= count {
            lanes +=
                UnsafeRawPointer(x + k).loadUnaligned(as: SIMD4<Double>.self)
                * UnsafeRawPointer(y + k).loadUnaligned(as: SIMD4<Double>.self)
            k += 4
        }
        var s = ((lanes[0] + lanes[1]) + lanes[2]) + lanes[3]
        while k < count {
            s += x[k] * y[k]
            k += 1
        }
        return s
    }
}
