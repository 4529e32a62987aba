/// How many of one layer's parameter gradients fell where IEEE half cannot hold them, summed over
/// every step of a run. Counted in whatever precision the run computes in, so a float32 run shows
/// what half would have lost and a float16 run what it did lose.
public struct GradientUnderflow: Codable, Sendable, Equatable {
    /// The layer (`00_conv1`).
    public var layer: String
    /// Values of magnitude below 2⁻²⁵, which half rounds to zero (exact zeros included).
    public var zero = 0
    /// Values in half's subnormal range [2⁻²⁵, 2⁻¹⁴), kept with fewer than 11 significant bits.
    public var subnormal = 0
    /// Every gradient value counted.
    public var total = 0

    public init(layer: String, zero: Int = 0, subnormal: Int = 0, total: Int = 0) {
        (self.layer, self.zero, self.subnormal, self.total) = (layer, zero, subnormal, total)
    }

    /// Adds the counts of `g`.
    mutating func count<T: NetworkScalar>(_ g: [T]) {
        // Compared in Float: half cannot hold 2⁻²⁵ (it rounds to 0).
        let tiny = Float(0x1p-25), normal = Float(0x1p-14)
        for v in g {
            let a = Float(v.magnitude)
            if a < tiny {
                zero += 1
            } else if a < normal {
                subnormal += 1
            }
        }
        total += g.count
    }
}

/// The counts a run keeps about its updates: gradient underflow per layer, and how many weight values
/// an applied update left exactly as they were (their change rounded away).
struct UpdateCounter<T: NetworkScalar> {
    /// Each learnable tensor with the index of its layer's counts in `underflow`.
    let learnable: [(layer: Int, parameter: Parameter<T>)]
    var underflow: [GradientUnderflow]
    var unchanged = 0, updated = 0
    private var before: [[T]] = []

    init(_ parameters: [(name: String, parameter: Parameter<T>)], underflow: [GradientUnderflow]) {
        let named = parameters.filter(\.parameter.learnable).map {
            (layer: String($0.name.prefix { $0 != "/" }), parameter: $0.parameter)
        }
        var layers: [String] = []
        for (layer, _) in named where !layers.contains(layer) { layers.append(layer) }
        learnable = named.map { (layers.firstIndex(of: $0.layer)!, $0.parameter) }
        self.underflow = underflow.isEmpty ? layers.map { GradientUnderflow(layer: $0) } : underflow
    }

    /// Counts the gradients and keeps the values an update is about to change.
    mutating func beforeUpdate() {
        for (layer, p) in learnable { underflow[layer].count(p.grad.data) }
        before = learnable.map(\.parameter.value.data)
    }

    /// Counts the values the update left unchanged.
    mutating func afterUpdate() {
        for ((_, p), old) in zip(learnable, before) {
            unchanged += zip(p.value.data, old).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
            updated += old.count
        }
    }

    /// The fraction of updated values left unchanged since the last call, and a fresh start.
    mutating func unchangedFraction() -> Double {
        defer { (unchanged, updated) = (0, 0) }
        return updated == 0 ? 0 : Double(unchanged) / Double(updated)
    }
}
