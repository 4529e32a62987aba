import RealModule

/// The update rules of the book (common/optimizer.py) plus Nesterov and RMSprop as written there.
public enum OptimizerKind: String, CaseIterable, Sendable {
    case sgd, momentum, nesterov, adagrad, rmsprop, adam

    /// The book's default learning rate for this rule.
    public var defaultLearningRate: Double { self == .adam ? 0.001 : 0.01 }
}

/// An optimizer with its hyper-parameters and per-tensor state. `update` applies one step to every
/// learnable parameter of a network; each tensor's step is the pure function `step`.
public final class Optimizer<T: NetworkScalar> {
    public let kind: OptimizerKind
    /// The current learning rate (a schedule may change it between epochs).
    public var learningRate: Double
    public let momentum = 0.9
    public let beta1 = 0.9
    public let beta2 = 0.999
    public let decay = 0.99
    public let eps = 1e-7
    /// Number of updates applied so far.
    public private(set) var iteration = 0
    private var state1: [[T]] = []
    private var state2: [[T]] = []

    public init(_ kind: OptimizerKind, learningRate: Double? = nil) {
        self.kind = kind
        self.learningRate = learningRate ?? kind.defaultLearningRate
    }

    /// The state a checkpoint keeps: the update count and each learnable tensor's two state tensors
    /// (empty before the first update), widened to Double (exact).
    public var state: (iteration: Int, first: [[Double]], second: [[Double]]) {
        get { (iteration, state1.map { $0.map { Double($0) } }, state2.map { $0.map { Double($0) } }) }
        set {
            iteration = newValue.iteration
            state1 = newValue.first.map { $0.map { T($0) } }
            state2 = newValue.second.map { $0.map { T($0) } }
        }
    }

    /// The share of the running averages of squared gradients (Adam's second moment, RMSprop's and
    /// AdaGrad's `h`) that are exactly 0, or nil for rules without them. In float16, `(1 − β₂)·g²`
    /// underflows for small gradients, and a weight whose average is 0 moves by `lr·m / eps`.
    public var zeroSquaredAverages: Double? {
        let squares: [[T]]
        switch kind {
        case .adam: squares = state2
        case .rmsprop, .adagrad: squares = state1
        case .sgd, .momentum, .nesterov: return nil
        }
        let total = squares.reduce(0) { $0 + $1.count }
        guard total > 0 else { return nil }
        return Double(squares.reduce(0) { $0 + $1.filter { $0 == 0 }.count }) / Double(total)
    }

    /// One step for every learnable parameter, using its current `grad`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    public func update(_ parameters: [Parameter<T>]) {
        let learnable = parameters.filter(\.learnable)
        if state1.isEmpty {
            state1 = learnable.map { [T](repeating: 0, count: $0.value.count) }
            state2 = state1
        }
        iteration += 1
        for (i, p) in learnable.enumerated() {
            step(&p.value.data, p.grad.data, &state1[i], &state2[i])
        }
    }

    /// The update of one tensor `p` with gradient `g` and its two state tensors.
    func step(_ p: inout [T], _ g: [T], _ s1: inout [T], _ s2: inout [T]) {
        let lr = T(learningRate), mu = T(momentum), e = T(eps)
        if kernelStep(&p, g, &s1, &s2) { return }
        switch kind {
        case .sgd:
            for j in p.indices { p[j] -= lr * g[j] }
        case .momentum:  // v = mu·v - lr·g; p += v
            for j in p.indices {
                s1[j] = mu * s1[j] - lr * g[j]
                p[j] += s1[j]
            }
        case .nesterov:  // v = mu·v - lr·g; p += mu²·v - (1 + mu)·lr·g
            for j in p.indices {
                s1[j] = mu * s1[j] - lr * g[j]
                p[j] += mu * mu * s1[j] - (1 + mu) * lr * g[j]
            }
        case .adagrad:  // h += g²; p -= lr·g / (sqrt(h) + eps)
            for j in p.indices {
                s1[j] += g[j] * g[j]
                p[j] -= lr * g[j] / (s1[j].squareRoot() + e)
            }
        case .rmsprop:  // h = decay·h + (1 - decay)·g²; p -= lr·g / (sqrt(h) + eps)
            let d = T(decay)
            for j in p.indices {
                s1[j] = d * s1[j] + (1 - d) * g[j] * g[j]
                p[j] -= lr * g[j] / (s1[j].squareRoot() + e)
            }
        case .adam:  // the book's form: bias correction folded into lr_t
            let lrt = adamRate
            let b1 = T(1 - beta1), b2 = T(1 - beta2)
            for j in p.indices {
                s1[j] += b1 * (g[j] - s1[j])
                s2[j] += b2 * (g[j] * g[j] - s2[j])
                p[j] -= lrt * s1[j] / (s2[j].squareRoot() + e)
            }
        }
    }

    /// `step` in the scalar type's kernel, when it has one for this kind (the same values).
    private func kernelStep(_ p: inout [T], _ g: [T], _ s1: inout [T], _ s2: inout [T]) -> Bool {
        let constants: [T]
        switch kind {
        case .sgd: constants = [T(learningRate)]
        case .momentum: constants = [T(learningRate), T(momentum)]
        case .adam: constants = [adamRate, T(1 - beta1), T(1 - beta2), T(eps)]
        case .nesterov, .adagrad, .rmsprop: return false
        }
        return g.withUnsafeBufferPointer { g in
            withMutableBuffers(&p, &s1) { p, s1 in
                s2.withUnsafeMutableBufferPointer { s2 in
                    guard let pp = p.baseAddress else { return true }
                    return T.optimizerStep(
                        kind, pp, g.baseAddress!, s1.baseAddress!, s2.baseAddress!, count: p.count,
                        constants: constants)
                }
            }
        }
    }

    /// Adam's step size at this iteration: the book's form, bias correction folded into the rate.
    private var adamRate: T {
        let t = Double(iteration)
        return T(learningRate * (1 - Double.pow(beta2, t)).squareRoot() / (1 - Double.pow(beta1, t)))
    }
}
