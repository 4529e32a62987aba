/// Softmax over the last axis followed by the mean cross-entropy against integer labels, the book's
/// `SoftmaxWithLoss`: `loss = -Σ log(y[t] + δ) / N`, `dx = (y - onehot(t)) / N`. The book's
/// `δ = 1e-7` guards against log(0); the gradient ignores it, so gradient checks set `δ = 0`.
public final class SoftmaxWithLoss<T: NetworkScalar> {
    /// δ inside the logarithm.
    public var logDelta: T = T(1e-7)
    private var y: Tensor<T>?
    private var t: [Int] = []

    public init() {}

    /// The mean loss of logits `x: (N, K)` against labels `t` (N values in 0..<K).
    public func forward(_ x: Tensor<T>, _ t: [Int]) -> T {
        let y = softmax(x)
        precondition(t.count == x.shape[0], "labels \(t.count) for \(x.shape[0]) rows")
        let k = x.shape[1]
        var loss: T = 0
        for (i, label) in t.enumerated() { loss -= T.log(y.data[i * k + label] + logDelta) }
        self.y = y
        self.t = t
        return loss / T(t.count)
    }

    /// dLoss/dLogits of the last forward, `(N, K)`.
    public func backward() -> Tensor<T> {
        guard var dx = y else { preconditionFailure("SoftmaxWithLoss.backward before forward") }
        let (n, k) = (dx.shape[0], dx.shape[1])
        for (i, label) in t.enumerated() { dx.data[i * k + label] -= 1 }
        let inv = 1 / T(n)
        for i in 0..<dx.count { dx.data[i] *= inv }
        return dx
    }
}

/// Row-wise softmax of `x: (N, K)`, shifted by each row's maximum.
public func softmax<T: NetworkScalar>(_ x: Tensor<T>) -> Tensor<T> {
    precondition(x.shape.count == 2, "softmax expects (N, K), got \(shapeText(x.shape))")
    let (n, k) = (x.shape[0], x.shape[1])
    var y = x
    for i in 0..<n {
        let row = i * k..<(i + 1) * k
        let top = x.data[row].max() ?? 0
        var sum: T = 0
        for j in row {
            y.data[j] = T.exp(x.data[j] - top)
            sum += y.data[j]
        }
        for j in row { y.data[j] /= sum }
    }
    return y
}
