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

    /// The ε added to the variance unless a layer is given its own: 1e-5, as in PyTorch.
    public static var epsilon: T { 1e-5 }

    public init(channels: Int, momentum: T = 0.9, eps: T = epsilon) {
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
            withMutableBuffers(&mean, &variance) { ms, vs in
                x.data.withUnsafeBufferPointer { xs in
                    parallelChunks(c, work: 2 * x.count) { channels in
                        for ch in channels {
                            var sum: T = 0
                            for i in 0..<n { for k in 0..<s { sum += xs[(i * c + ch) * s + k] } }
                            let m = sum / count
                            var sq: T = 0
                            for i in 0..<n {
                                for k in 0..<s {
                                    let d = xs[(i * c + ch) * s + k] - m
                                    sq += d * d
                                }
                            }
                            (ms[ch], vs[ch]) = (m, sq / count)
                        }
                    }
                }
            }
            for ch in 0..<c {
                runningMean.value.data[ch] = momentum * runningMean.value.data[ch] + (1 - momentum) * mean[ch]
                runningVar.value.data[ch] = momentum * runningVar.value.data[ch] + (1 - momentum) * variance[ch]
            }
        }
        let std = variance.map { ($0 + eps).squareRoot() }, g = gamma.value.data, bt = beta.value.data
        // Training keeps the normalized input for `backward`; inference computes the same values
        // without keeping them.
        var y = x.data, xn: [T] = isTraining ? x.data : []
        withMutableBuffers(&y, &xn) { ys, xns in
            x.data.withUnsafeBufferPointer { xs in
                parallelChunks(n * c, work: x.count) { planes in
                    for plane in planes {
                        let ch = plane % c, (m, d, gc, bc) = (mean[ch], std[ch], g[ch], bt[ch])
                        let pixels = (plane * s)..<((plane + 1) * s)
                        if isTraining {
                            for at in pixels {
                                xns[at] = (xs[at] - m) / d
                                ys[at] = gc * xns[at] + bc
                            }
                        } else {
                            for at in pixels { ys[at] = gc * ((xs[at] - m) / d) + bc }
                        }
                    }
                }
            }
        }
        (self.xn, self.std, shape) = (xn, std, x.shape)
        return Tensor(shape: x.shape, data: y)
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        let (n, c, s) = dims(shape)
        let count = T(n * s), g = gamma.value.data, std = self.std
        var dgamma = [T](repeating: 0, count: c), dbeta = [T](repeating: 0, count: c)
        var dx = dout.data
        withMutableBuffers(&dx, &dgamma) { dxs, dgs in
            dbeta.withUnsafeMutableBufferPointer { dbs in
                withBuffers(dout.data, xn) { ds, xns in
                    parallelChunks(c, work: dout.count) { channels in
                        for ch in channels {
                            var sumD: T = 0, sumDXn: T = 0
                            for i in 0..<n {
                                for k in 0..<s {
                                    let at = (i * c + ch) * s + k
                                    sumD += ds[at]
                                    sumDXn += ds[at] * xns[at]
                                }
                            }
                            (dbs[ch], dgs[ch]) = (sumD, sumDXn)
                            // dx = gamma/std · (dout - mean(dout) - xn·mean(dout·xn))
                            let scale = g[ch] / std[ch]
                            for i in 0..<n {
                                for k in 0..<s {
                                    let at = (i * c + ch) * s + k
                                    dxs[at] = scale * (ds[at] - sumD / count - xns[at] * sumDXn / count)
                                }
                            }
                        }
                    }
                }
            }
        }
        gamma.grad = Tensor(shape: [c], data: dgamma)
        beta.grad = Tensor(shape: [c], data: dbeta)
        return Tensor(shape: shape, data: dx)
    }
}

/// The network's input normalized per channel of `(N, C, H, W)`: `y = (x - mean) / std`, with
/// fixed statistics (typically the training images' own), so that inputs keep pixel values in
/// [0, 1] while the first layer sees zero-mean, unit-variance channels.
public final class InputNormalization<T: NetworkScalar>: Layer {
    public let mean: Parameter<T>
    public let std: Parameter<T>

    /// The identity (mean 0, standard deviation 1) for `channels` channels.
    public init(channels: Int) {
        mean = Parameter("mean", Tensor(zeros: [channels]), learnable: false)
        std = Parameter("std", Tensor(shape: [channels], data: [T](repeating: 1, count: channels)), learnable: false)
    }

    public var parameters: [Parameter<T>] { [mean, std] }

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        let c = mean.value.count
        precondition(x.shape.count == 4 && x.shape[1] == c, "input normalization expects \(c) channels")
        let s = x.shape[2] * x.shape[3], m = mean.value.data, d = std.value.data
        var y = x.data
        for at in y.indices { y[at] = (y[at] - m[at / s % c]) / d[at / s % c] }
        return Tensor(shape: x.shape, data: y)
    }

    /// `dout / std` per channel.
    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        let c = mean.value.count, s = dout.shape[2] * dout.shape[3], d = std.value.data
        var dx = dout.data
        for at in dx.indices { dx[at] /= d[at / s % c] }
        return Tensor(shape: dout.shape, data: dx)
    }
}
