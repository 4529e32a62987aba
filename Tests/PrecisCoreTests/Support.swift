import Foundation

@testable import PrecisCore

/// Random tensor with entries uniform in [lo, hi), from a fixed seed.
func randomTensor<T: NetworkScalar>(
    _ shape: [Int], seed: UInt64, in range: ClosedRange<Double> = -1...1, as: T.Type = T.self
) -> Tensor<T> {
    var rng = RandomSource(seed: seed)
    let n = shape.reduce(1, *)
    return Tensor(
        shape: shape,
        data: (0..<n).map { _ in T(range.lowerBound + (range.upperBound - range.lowerBound) * rng.uniform()) })
}

/// Random values bounded away from zero (|v| >= 0.05), so a finite-difference step of 1e-5 never
/// crosses a ReLU kink.
func awayFromZero(_ shape: [Int], seed: UInt64) -> Tensor<Double> {
    var t: Tensor<Double> = randomTensor(shape, seed: seed)
    for i in t.data.indices { t.data[i] = (t.data[i] < 0 ? -0.05 : 0.05) + 0.95 * t.data[i] }
    return t
}

/// ||a - b|| / ||a + b||; 0 when both gradients are zero to within finite-difference noise
/// (|entries| < 1e-8, e.g. a bias followed by batch normalization, which cancels it).
func normRelativeError(_ a: [Double], _ b: [Double]) -> Double {
    if (a + b).allSatisfy({ abs($0) < 1e-8 }) { return 0 }
    let diff = zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
    let sum = zip(a, b).map { ($0 + $1) * ($0 + $1) }.reduce(0, +).squareRoot()
    return diff / sum
}

/// The outcome of comparing analytic and numerical gradients of one tensor.
struct GradientReport: CustomStringConvertible {
    var name: String
    var error: Double
    var checked: Int
    var skipped: Int
    var description: String { "\(name): error \(error), \(checked) checked, \(skipped) skipped at kinks" }
}

/// A tensor the loss closure reads while the check perturbs it.
final class Variable {
    var tensor: Tensor<Double>
    init(_ tensor: Tensor<Double>) { self.tensor = tensor }
}

/// Central-difference check of `analytic` (dLoss/dvalue) for the entries `indices` of a value read
/// and written through `get`/`set`. `loss` recomputes the loss; `signature` describes the discrete
/// choices (ReLU masks, max-pool argmaxes) so that an entry whose ±h steps change them is skipped
/// rather than compared across a kink.
func numericalCheck(
    name: String, get: (Int) -> Double, set: (Int, Double) -> Void, analytic: [Double], indices: [Int],
    h: Double = 1e-5, loss: () -> Double, signature: () -> [[Int32]]
) -> GradientReport {
    _ = loss()
    let base = signature()
    var num: [Double] = [], ana: [Double] = [], skipped = 0
    for i in indices {
        let old = get(i)
        set(i, old + h)
        let fp = loss()
        let sp = signature()
        set(i, old - h)
        let fm = loss()
        let sm = signature()
        set(i, old)
        if sp != base || sm != base {
            skipped += 1
            continue
        }
        num.append((fp - fm) / (2 * h))
        ana.append(analytic[i])
    }
    return GradientReport(name: name, error: normRelativeError(num, ana), checked: num.count, skipped: skipped)
}

/// The discrete choices a network made in its last forward: ReLU masks and max-pool argmaxes.
func signature(of layers: [any Layer<Double>]) -> [[Int32]] {
    layers.compactMap { layer in
        if let r = layer as? ReLU<Double> { return r.lastMask.map { $0 ? 1 : 0 } }
        if let p = layer as? MaxPooling<Double> { return p.lastArgmax }
        if let e = layer as? Elementwise<Double> { return e.lastPieces }
        return nil
    }
}

/// `count` distinct indices in `0..<n` (all of them when n <= count), from a fixed seed.
func sampleIndices(_ n: Int, _ count: Int, seed: UInt64) -> [Int] {
    var rng = RandomSource(seed: seed)
    return Array(rng.permutation(n).prefix(count)).sorted()
}

/// A writable scratch directory, removed by the caller.
func scratchDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

// The book's im2col and col2im (layout (N·OH·OW, C·FH·FW)), kept as the reference the
// transposed, chunked versions are checked against.

/// Unfolds `x: (N, C, H, W)` into `col: (N·OH·OW, C·FH·FW)`, the book's layout; padding reads as 0.
func im2col<T: NetworkScalar>(_ x: [T], _ g: Window) -> [T] {
    var col = [T](repeating: 0, count: g.rows * g.cols)
    x.withUnsafeBufferPointer { xs in
        col.withUnsafeMutableBufferPointer { cs in
            forEachTap(g, 0..<g.n) { c, i in cs[c] = xs[i] }
        }
    }
    return col
}

/// Folds `col: (N·OH·OW, C·FH·FW)` back into `(N, C, H, W)`, summing overlapping windows (the adjoint
/// of `im2col`); entries that fall on padding are dropped.
func col2im<T: NetworkScalar>(_ col: [T], _ g: Window) -> [T] {
    var x = [T](repeating: 0, count: g.n * g.c * g.h * g.w)
    col.withUnsafeBufferPointer { cs in
        x.withUnsafeMutableBufferPointer { xs in
            forEachTap(g, 0..<g.n) { c, i in xs[i] += cs[c] }
        }
    }
    return x
}

/// Calls `body(col index, input index)` for every window element of `images` that lies inside the
/// input (not on padding), in `col` order. Each image touches only its own part of both arrays.
/// Window rows that lie wholly inside the input are visited without per-element bounds checks.
@inline(__always)
private func forEachTap(_ g: Window, _ images: Range<Int>, _ body: (Int, Int) -> Void) {
    let (oh, ow) = (g.oh, g.ow)
    for n in images {
        for oy in 0..<oh {
            for ox in 0..<ow {
                var c = ((n * oh + oy) * ow + ox) * g.cols
                let x0 = ox * g.stride - g.pad
                let inside = x0 >= 0 && x0 + g.fw <= g.w
                for ch in 0..<g.c {
                    let plane = (n * g.c + ch) * g.h
                    for ky in 0..<g.fh {
                        let y = oy * g.stride + ky - g.pad
                        if y >= 0 && y < g.h {
                            let row = (plane + y) * g.w + x0
                            if inside {
                                for kx in 0..<g.fw { body(c + kx, row + kx) }
                            } else {
                                for kx in 0..<g.fw where x0 + kx >= 0 && x0 + kx < g.w { body(c + kx, row + kx) }
                            }
                        }
                        c += g.fw
                    }
                }
            }
        }
    }
}

/// A data set of random 8×8 images: 40 to train on (labels 0...9 in turn) and 10 to test.
func tinyDataset(seed: UInt64) -> Dataset {
    var rng = RandomSource(seed: seed)
    return Dataset(
        name: "tiny", imageShape: [1, 8, 8], classes: 10,
        trainImages: (0..<(40 * 64)).map { _ in Float(rng.uniform()) }, trainLabels: (0..<40).map { $0 % 10 },
        testImages: (0..<(10 * 64)).map { _ in Float(rng.uniform()) }, testLabels: Array(0..<10))
}
