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
                withBuffers(output, dout.data) { ys, ds in
                    parallelChunks(ds.count, work: ds.count) { range in
                        // Both loaded first, so the choice is a select the compiler vectorizes.
                        for i in range {
                            let (y, d) = (ys[i], ds[i])
                            dx[i] = y <= 0 ? 0 : d
                        }
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

/// An elementwise activation function besides ReLU, as a layer of the spec names it. Each is
/// written as ONNX defines its operator; NaN passes through every one.
public enum ActivationFunction: Equatable, Sendable {
    /// `min(max(x, min), max)`; ReLU6 is `clip(0, 6)`.
    case clip(min: Double, max: Double)
    /// `x` where `x > 0`, else `alpha·x`.
    case leakyReLU(alpha: Double)
    /// `1 / (1 + e^(-x))`.
    case sigmoid
    /// `min(max(alpha·x + beta, 0), 1)`: PyTorch's is alpha 1/6, beta 1/2 (the default here);
    /// ONNX's default and old Keras's are alpha 0.2.
    case hardSigmoid(alpha: Double, beta: Double)
    /// `x · min(max(x/6 + 1/2, 0), 1)`.
    case hardSwish

    /// The short name in layer names and the text syntax (which also reads `relu6` for `clip(0,6)`).
    public var keyword: String {
        switch self {
        case .clip: return "clip"
        case .leakyReLU: return "leakyrelu"
        case .sigmoid: return "sigmoid"
        case .hardSigmoid: return "hardsigmoid"
        case .hardSwish: return "hardswish"
        }
    }

    /// The kind as the weight file names it.
    public var kind: String {
        switch self {
        case .clip: return "Clip"
        case .leakyReLU: return "LeakyReLU"
        case .sigmoid: return "Sigmoid"
        case .hardSigmoid: return "HardSigmoid"
        case .hardSwish: return "HardSwish"
        }
    }

    /// The arguments by name.
    public var arguments: [(String, Double)] {
        switch self {
        case let .clip(lo, hi): return [("min", lo), ("max", hi)]
        case let .leakyReLU(a): return [("alpha", a)]
        case let .hardSigmoid(a, b): return [("alpha", a), ("beta", b)]
        case .sigmoid, .hardSwish: return []
        }
    }

    /// What is wrong with the arguments, or nil.
    var problem: String? {
        switch self {
        case let .clip(lo, hi) where !(lo.isFinite && hi.isFinite && lo < hi):
            return "clip needs finite min < max, got \(lo), \(hi)"
        case let .leakyReLU(a) where !a.isFinite: return "leakyrelu needs a finite alpha, got \(a)"
        case let .hardSigmoid(a, b) where !(a.isFinite && b.isFinite && a != 0):
            return "hardsigmoid needs a finite, non-zero alpha and a finite beta, got \(a), \(b)"
        default: return nil
        }
    }

    /// `f(x)`.
    @inline(__always)
    func value<T: NetworkScalar>(_ x: T) -> T {
        switch self {
        case let .clip(lo, hi): return Self.clip(x, T(lo), T(hi))
        case let .leakyReLU(a): return x > 0 ? x : T(a) * x
        case .sigmoid: return 1 / (1 + T.exp(-x))
        case let .hardSigmoid(a, b): return Self.unit(T(a) * x + T(b))
        case .hardSwish: return x * Self.unit(x * T(1.0 / 6) + T(0.5))
        }
    }

    /// `f'(x)`, where `f` has a kink the side PyTorch takes (0 at a clip's bounds).
    @inline(__always)
    func derivative<T: NetworkScalar>(_ x: T) -> T {
        switch self {
        case let .clip(lo, hi): return x > T(lo) && x < T(hi) ? 1 : 0
        case let .leakyReLU(a): return x > 0 ? 1 : T(a)
        case .sigmoid:
            let s = 1 / (1 + T.exp(-x))
            return s * (1 - s)
        case let .hardSigmoid(a, b):
            let z = T(a) * x + T(b)
            return z > 0 && z < 1 ? T(a) : 0
        case .hardSwish: return x < -3 ? 0 : x > 3 ? 1 : x * T(1.0 / 3) + T(0.5)
        }
    }

    /// Which smooth piece of `f` holds `x` (gradient checks skip steps that change it).
    func piece<T: NetworkScalar>(_ x: T) -> Int32 {
        switch self {
        case let .clip(lo, hi): return x <= T(lo) ? 0 : x >= T(hi) ? 2 : 1
        case .leakyReLU: return x > 0 ? 1 : 0
        case .sigmoid: return 0
        case let .hardSigmoid(a, b):
            let z = T(a) * x + T(b)
            return z <= 0 ? 0 : z >= 1 ? 2 : 1
        case .hardSwish: return x < -3 ? 0 : x > 3 ? 2 : 1
        }
    }

    /// `ys[i] = f(xs[i])`, the elements split between the cores (specialized: a layer calls it
    /// through its protocol, where generic code would run unspecialized).
    /// The loop runs once per function, its arguments converted before it, so that the compiler
    /// vectorizes it; each element gets exactly `value`'s arithmetic.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    func values<T: NetworkScalar>(_ xs: UnsafeBufferPointer<T>, _ ys: UnsafeMutableBufferPointer<T>) {
        parallelChunks(xs.count, work: 8 * xs.count) { range in
            switch self {
            case let .clip(lo, hi):
                let (l, h) = (T(lo), T(hi))
                for i in range { ys[i] = Self.clip(xs[i], l, h) }
            case let .leakyReLU(a):
                let a = T(a)
                for i in range { ys[i] = xs[i] > 0 ? xs[i] : a * xs[i] }
            case let .hardSigmoid(a, b):
                let (a, b) = (T(a), T(b))
                for i in range { ys[i] = Self.unit(a * xs[i] + b) }
            case .sigmoid, .hardSwish:
                for i in range { ys[i] = value(xs[i]) }
            }
        }
    }

    /// `dx[i] = f'(xs[i])·ds[i]`, as `values` splits, specializes and vectorizes it.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    func gradients<T: NetworkScalar>(
        _ xs: UnsafeBufferPointer<T>, _ ds: UnsafeBufferPointer<T>, _ dx: UnsafeMutableBufferPointer<T>
    ) {
        parallelChunks(xs.count, work: 8 * xs.count) { range in
            switch self {
            case let .clip(lo, hi):
                let (l, h) = (T(lo), T(hi))
                for i in range { dx[i] = (xs[i] > l && xs[i] < h ? 1 : 0) * ds[i] }
            case let .leakyReLU(a):
                let a = T(a)
                for i in range { dx[i] = (xs[i] > 0 ? 1 : a) * ds[i] }
            case .sigmoid, .hardSigmoid, .hardSwish:
                for i in range { dx[i] = derivative(xs[i]) * ds[i] }
            }
        }
    }

    /// `x` clipped to `[l, h]`, NaN passing.
    @inline(__always)
    private static func clip<T: NetworkScalar>(_ x: T, _ l: T, _ h: T) -> T { x <= l ? l : x >= h ? h : x }

    /// `min(max(z, 0), 1)`, NaN passing.
    @inline(__always)
    private static func unit<T: NetworkScalar>(_ z: T) -> T { z <= 0 ? 0 : z >= 1 ? 1 : z }
}

/// `y = f(x)` elementwise for an `ActivationFunction`; `dx = f'(x)·dout`.
public final class Elementwise<T: NetworkScalar>: Layer {
    public let function: ActivationFunction
    /// The last training input.
    private var x: [T] = []

    public init(_ function: ActivationFunction) { self.function = function }

    /// The piece of the function each last training input lies on; gradient checks compare it.
    public var lastPieces: [Int32] { x.map { function.piece($0) } }

    public func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        self.x = isTraining ? x.data : []
        return Tensor(
            shape: x.shape,
            data: filledArray(x.count) { ys in x.data.withUnsafeBufferPointer { function.values($0, ys) } })
    }

    public func backward(_ dout: Tensor<T>) -> Tensor<T> {
        precondition(x.count == dout.count, "\(function.kind).backward needs a training forward of the same shape")
        return Tensor(
            shape: dout.shape,
            data: filledArray(dout.count) { dx in withBuffers(x, dout.data) { function.gradients($0, $1, dx) } })
    }
}
