/// Batch normalization per channel of `(N, C, H, W)` input (statistics over N, H, W) or per feature
/// of `(N, D)` input. Training normalizes with the batch mean and variance and updates running
/// statistics `r = momentum·r + (1 - momentum)·batch`; inference uses the running statistics.
/// (The book's version normalizes every C·H·W feature separately; per channel is the usual choice
/// for convolutions and what PyTorch's BatchNorm2d does.) `backward` assumes a training forward.
public final class BatchNormalization<T: NetworkScalar>: Layer {
    public let gamma: Parameter<T>
    public let beta: Parameter<T>
    public let runningMean: Parameter<T>
    public let runningVar: Parameter<T>
    public let momentum: T
    public let eps: T
    private var xn: [T] = []  // normalized input, like x
    private var std: [T] = []  // (C)
    private var shape: [Int] = []

    public init(channels: Int, momentum: T = 0.9, eps: T = 1e-5) {
        gamma = Parameter("gamma", Tensor(shape: [channels], data: [T](repeating: 1, count: channels)))
        beta = Parameter("beta", Tensor(zeros: [channels]))
        runningMean = Parameter("running_mean", Tensor(zeros: [channels]), learnable: false)
        runningVar = Parameter(
            "running_var", Tensor(shape: [channels], data: [T](repeating: 1, count: channels)), learnable: false)
        (self.momentum, self.eps) = (momentum, eps)
    }

    public var parameters: [Parameter<T>] { [gamma, beta, runningMean, runningVar] }

    /// `(N, C, S)` view of the input: S = H·W for images, 1 for features.
    private func dims(_ shape: [Int]) -> (n: Int, c: Int, s: Int) {
        let c = gamma.value.count
        precondition(
            shape.count >= 2 && shape[1] == c, "batch normalization expects \(c) channels, got \(shapeText(shape))")
        return (shape[0], c, shape.dropFirst(2).reduce(1, *))
    }

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        let (n, c, s) = dims(x.shape)
        let count = T(n * s)
        var mean = runningMean.value.data, variance = runningVar.value.data
        if isTraining {
            for ch in 0..<c {
                var sum: T = 0
                for i in 0..<n { for k in 0..<s { sum += x.data[(i * c + ch) * s + k] } }
                mean[ch] = sum / count
                var sq: T = 0
                for i in 0..<n {
                    for k in 0..<s {
                        let d = x.data[(i * c + ch) * s + k] - mean[ch]
                        sq += d * d
                    }
                }
                variance[ch] = sq / count
                runningMean.value.data[ch] = momentum * runningMean.value.data[ch] + (1 - momentum) * mean[ch]
                runningVar.value.data[ch] = momentum * runningVar.value.data[ch] + (1 - momentum) * variance[ch]
            }
        }
        std = variance.map { ($0 + eps).squareRoot() }
        var y = x
        xn = x.data
        for i in 0..<n {
            for ch in 0..<c {
                for k in 0..<s {
                    let at = (i * c + ch) * s + k
                    xn[at] = (x.data[at] - mean[ch]) / std[ch]
                    y.data[at] = gamma.value.data[ch] * xn[at] + beta.value.data[ch]
                }
            }
        }
        shape = x.shape
        return y
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        let (n, c, s) = dims(shape)
        let count = T(n * s)
        var dgamma = [T](repeating: 0, count: c), dbeta = [T](repeating: 0, count: c)
        var dx = dout
        for ch in 0..<c {
            var sumD: T = 0, sumDXn: T = 0
            for i in 0..<n {
                for k in 0..<s {
                    let at = (i * c + ch) * s + k
                    sumD += dout.data[at]
                    sumDXn += dout.data[at] * xn[at]
                }
            }
            dbeta[ch] = sumD
            dgamma[ch] = sumDXn
            // dx = gamma/std · (dout - mean(dout) - xn·mean(dout·xn))
            let scale = gamma.value.data[ch] / std[ch]
            for i in 0..<n {
                for k in 0..<s {
                    let at = (i * c + ch) * s + k
                    dx.data[at] = scale * (dout.data[at] - sumD / count - xn[at] * sumDXn / count)
                }
            }
        }
        gamma.grad = Tensor(shape: [c], data: dgamma)
        beta.grad = Tensor(shape: [c], data: dbeta)
        return dx
    }
}
