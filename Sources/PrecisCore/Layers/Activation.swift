/// `max(0, x)` elementwise; NaN passes through (as in the book: only `x <= 0` is zeroed).
public final class ReLU<T: NetworkScalar>: Layer {
    /// The last training output (set by a convolution fused with this layer, too): the gradient
    /// passes where it is not `<= 0`.
    var output: [T] = []

    public init() {}

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        let y: [T] = filledArray(x.count) { ys in
            x.data.withUnsafeBufferPointer { xs in
                for i in xs.indices { ys[i] = xs[i] <= 0 ? 0 : xs[i] }
            }
        }
        output = isTraining ? y : []
        return Tensor(shape: x.shape, data: y)
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        precondition(output.count == dout.count, "ReLU.backward needs a training forward of the same shape")
        return Tensor(
            shape: dout.shape,
            data: filledArray(dout.count) { dx in
                output.withUnsafeBufferPointer { ys in
                    dout.data.withUnsafeBufferPointer { ds in
                        for i in ds.indices { dx[i] = ys[i] <= 0 ? 0 : ds[i] }
                    }
                }
            })
    }

    /// Where the last training forward's input was `<= 0` (the kink side); gradient checks compare it.
    public var lastMask: [Bool] { output.map { $0 <= 0 } }
}

/// The book's (non-inverted) dropout. Training: each element is kept (multiplied by 1) with
/// probability `1 - ratio` and zeroed otherwise. Inference: every element is multiplied by
/// `1 - ratio`, the expected value of the training mask. Weights trained by the book's code load
/// unchanged. With `freezesMask`, training forwards reuse the last mask (for gradient checks).
public final class Dropout<T: NetworkScalar>: Layer {
    public let ratio: Double
    /// Reuse the previous mask instead of drawing a new one.
    public var freezesMask = false
    private var rng: RandomSource
    private var mask: [T] = []

    /// The mask generator, for a checkpoint.
    public var generator: RandomSource {
        get { rng }
        set { rng = newValue }
    }

    public init(ratio: Double, seed: UInt64) {
        precondition(ratio >= 0 && ratio < 1, "dropout ratio in [0, 1)")
        self.ratio = ratio
        self.rng = RandomSource(seed: seed)
    }

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        var y = x
        if isTraining {
            if !(freezesMask && mask.count == x.count) {
                var r = rng
                mask = (0..<x.count).map { _ in r.uniform() > ratio ? 1 : 0 }
                rng = r
            }
            for i in 0..<y.count { y.data[i] *= mask[i] }
        } else {
            let keep = T(1 - ratio)
            for i in 0..<y.count { y.data[i] *= keep }
        }
        return y
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        var dx = dout
        for i in 0..<dx.count { dx.data[i] *= mask[i] }
        return dx
    }
}
