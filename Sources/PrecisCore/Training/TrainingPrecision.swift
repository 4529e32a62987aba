/// The precision a network trains in.
public enum TrainingPrecision: String, CaseIterable, Sendable {
    /// float32 throughout.
    case float32
    /// IEEE half throughout: a `Network<Float16>` whose weights, activations, gradients and optimizer
    /// state are all half, every product and sum rounded to half. No loss scaling, no float32 copy.
    case float16
    /// Weights, activations and gradients stored in IEEE half between operations, sums in float32,
    /// float32 master weights and optimizer state, dynamic loss scaling.
    case mixedFloat16 = "mixed-float16"
    /// The same with bfloat16.
    case mixedBFloat16 = "mixed-bfloat16"

    /// How values are stored between operations.
    public var storage: StorageFormat {
        switch self {
        case .float32, .float16: return .native
        case .mixedFloat16: return .float16
        case .mixedBFloat16: return .bfloat16
        }
    }

    /// Whether the passes run in 16 bits around float32 master weights, with loss scaling.
    public var isMixed: Bool { storage != .native }
}

/// Dynamic loss scaling: the loss gradient is multiplied by `scale` before the backward pass, so
/// that small gradients survive being stored in 16 bits. A step whose gradients hold an infinity or
/// NaN is skipped and the scale halved; after `growthInterval` clean steps in a row it doubles.
public struct LossScaler: Sendable, Equatable {
    public private(set) var scale: Double
    /// Clean steps since the scale last changed.
    public private(set) var cleanSteps = 0
    public let growthInterval: Int

    /// Starts at 2^15 unless told otherwise; `growthInterval` 0 keeps the scale fixed.
    public init(scale: Double = 32768, growthInterval: Int = 1000, cleanSteps: Int = 0) {
        (self.scale, self.growthInterval, self.cleanSteps) = (scale, growthInterval, cleanSteps)
    }

    /// Records one step's outcome and says whether its update may be applied: false (skip) when a
    /// gradient was not finite.
    public mutating func step(finite: Bool) -> Bool {
        guard finite else {
            if growthInterval > 0 { scale = max(1, scale / 2) }
            cleanSteps = 0
            return false
        }
        cleanSteps += 1
        if growthInterval > 0 && cleanSteps >= growthInterval {
            scale *= 2
            cleanSteps = 0
        }
        return true
    }
}

extension Network {
    /// The same network storing values in `storage` between operations (the layers round their
    /// results), its tensors kept exactly as they are: master weights for mixed-precision training.
    /// With `.native`, the network itself.
    public func storing(_ storage: StorageFormat, seed: UInt64) throws -> Network {
        guard storage != self.storage else { return self }
        let net = try Network(spec: spec, parameters: tensorValues(), seed: seed, storage: storage)
        for (p, q) in zip(net.parameters, parameters) { p.parameter.value = q.parameter.value }
        return net
    }

    /// One mixed-precision step's gradients: the learnable tensors rounded to the network's storage
    /// format for the forward and backward pass (their values restored after), the input and every
    /// layer's output rounded at each layer boundary (and inside the layers every GEMM result), the
    /// loss gradient multiplied by `scale`, every gradient rounded as it passes a layer boundary, and
    /// the parameter gradients rounded, then divided by `scale` in `T`. Returns the loss and whether
    /// every parameter gradient was finite (if not, the gradients are unusable).
    public func mixedGradient(_ x: Tensor<T>, _ t: [Int], scale: Double) -> (loss: T, finite: Bool) {
        let learnable = parameters.map(\.parameter).filter(\.learnable)
        let master = learnable.map(\.value)
        for p in learnable { storage.round(&p.value.data) }
        let layers = nodes.indices.map { $0..<($0 + 1) }
        let l = loss(x, t, steps: layers, isTraining: true, stores: true)
        var d = lossLayer.backward()
        let s = T(scale)
        for i in d.data.indices { d.data[i] *= s }
        storage.round(&d.data)
        _ = backpropagate(d, steps: layers, inputGradient: false, stores: true)
        var finite = true
        for (p, m) in zip(learnable, master) {
            p.value = m
            storage.round(&p.grad.data)
            for j in p.grad.data.indices {
                p.grad.data[j] /= s
                if !p.grad.data[j].isFinite { finite = false }
            }
        }
        return (l, finite)
    }
}
