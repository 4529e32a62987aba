/// What a layer may be stored in by the precision search: a number format, int8 (the default
/// scheme, per-channel weights and uint8 inputs calibrated by MSE), float16 (weights and inputs
/// rounded to half, float32 arithmetic) or float32.
public enum SearchCandidate: Sendable, Hashable, CustomStringConvertible {
    case format(FormatMode)
    case int8, float16, float32

    /// The candidate called `name`: `int8`, `float16`, `float32`, or a number format without `-cle`.
    public init?(name: String) {
        switch name {
        case "int8": self = .int8
        case "float16": self = .float16
        case "float32": self = .float32
        default:
            guard case .format(let mode, mixed: false)? = Precision(name: name), !mode.equalized else { return nil }
            self = .format(mode)
        }
    }

    public var description: String {
        switch self {
        case .format(let mode): return mode.name
        case .int8: return "int8"
        case .float16: return "float16"
        case .float32: return "float32"
        }
    }

    /// The candidates a search takes unless told.
    public static let defaults = ["int8", "int4-g32", "mxfp4", "nvfp4", "float8-e4m3", "float16"].map {
        SearchCandidate(name: $0)!
    }
}

/// One layer in one candidate: the tensors it runs with in place of the float ones, how its input
/// is rounded, and the bits its weights take (codes and scales).
struct LayerOption {
    var tensors: [String: Tensor<Double>] = [:]
    var rounding: OperandRounding?
    var bits: Int
}

/// A layer's part in a searched assignment.
public struct LayerAssignment: Codable, Equatable, Sendable {
    public var layer: String, candidate: String
    /// Weight values, and the bits they take in the candidate (scales included).
    public var weights: Int, bits: Int
    /// The accuracy change, in points, with this layer alone in the candidate.
    public var alonePP: Double

    private enum CodingKeys: String, CodingKey {
        case layer, candidate, weights, bits, alonePP = "alone_pp"
    }
}

/// The cheapest assignment of candidates to layers a search found, and how it does.
public struct SearchOutcome: Codable, Equatable, Sendable {
    public var assignment: [LayerAssignment]
    /// Bits per weight value of the whole network, scales counted.
    public var bitsPerWeight: Double
    /// The accuracy change the per-layer changes add up to, and the one measured on the test images.
    public var predictedPP: Double
    public var verified: RunResult
    /// Assignments verified before this one (each predicted within the limit, measured beyond it).
    public var rejected: Int

    private enum CodingKeys: String, CodingKey {
        case assignment, bitsPerWeight = "bits_per_weight", predictedPP = "predicted_pp", verified, rejected
    }
}

/// A search for the per-layer candidates that meet a budget: every layer is measured alone in
/// every candidate (the rest float32) on the test images, and an exact multiple-choice knapsack
/// (dynamic programming over bits in 4,096 steps, each layer's bits rounded up) over those measured
/// changes, taken as adding up, picks the assignment; the assignment is then measured whole.
public struct PrecisionSearch {
    let study: QuantizationStudy
    public let candidates: [SearchCandidate]
    /// The quantized layers, in order.
    public let layers: [Int]
    /// The batch normalizations folded into the layer before them, in every candidate, and the
    /// float tensors with them folded.
    let folded: Set<Int>, floats: [String: Tensor<Double>]
    /// `options[c][l]`: layer `layers[l]` in `candidates[c]`; the last row is float32.
    let options: [[LayerOption]]
    /// `alone[c][l]`: the accuracy change, in points, with only that layer in that candidate.
    public private(set) var alone: [[Double]] = []

    /// Builds every candidate for `study`'s network and measures each layer alone in each; `progress`
    /// gets the measurements done and their total.
    public init(
        study: QuantizationStudy, candidates: [SearchCandidate], progress: (Int, Int) -> Void = { _, _ in }
    ) throws {
        self.study = study
        self.candidates = candidates.filter { $0 != .float32 } + [.float32]
        layers = quantizedLayers(study.spec)
        folded = Set(study.spec.foldableBatchNorms.keys)
        floats = try study.spec.folding(folded, in: study.tensors)
        var options: [[LayerOption]] = []
        for c in self.candidates { options.append(try Self.options(c, study, layers, floats)) }
        self.options = options
        let total = self.candidates.count * layers.count
        for c in options.indices.dropLast() {
            alone.append(
                try layers.indices.map { l in
                    progress(c * layers.count + l, total)
                    return try measure(Array(repeating: options.count - 1, count: layers.count).with(l, c))
                        .vsFloat32.changePP
                })
        }
        alone.append(Array(repeating: 0, count: layers.count))
        progress(total, total)
    }

    /// Every layer of `layers` in candidate `c`, with `floats` the folded float tensors.
    static func options(
        _ c: SearchCandidate, _ study: QuantizationStudy, _ layers: [Int], _ floats: [String: Tensor<Double>]
    ) throws -> [LayerOption] {
        let spec = study.spec, geometry = try spec.geometry()
        switch c {
        case .format(let mode):
            let model = try study.formatModel(mode)
            return try layers.map { i in
                let layer = geometry[i]
                guard let t = model.weights[i], let gemm = layer.gemm, let w = layer.tensor(.weight) else {
                    throw ModelError.badSpec("\(layer.name) has no \(mode.name) weights")
                }
                let decoded = Tensor(shape: w.shape, data: gemm.stored(t.decoded()).map(Double.init))
                return LayerOption(
                    tensors: [layer.key(w.name): decoded],
                    rounding: try mode.activations.map {
                        try FormatNetwork.inputRounding($0, model.inputs[i], layer.name)
                    }, bits: 8 * t.bytes)
            }
        case .int8:
            let model = try study.quantize(Precision.defaultInt8Scheme, .mse)
            let values = try model.dequantized(spec, study.tensors)
            return try layers.map { i in
                let keys = ["W", "b"].map { tensorKey(spec.layerNames[i], $0) }
                guard let q = model.layers[i], let w = values[keys[0]], let b = values[keys[1]] else {
                    throw ModelError.badSpec("\(spec.layerNames[i]) has no int8 weights")
                }
                return LayerOption(
                    tensors: [keys[0]: w, keys[1]: b], rounding: .int8(q.input),
                    bits: 8 * q.weights.count + 32 * q.weightScales.count)
            }
        case .float16, .float32:
            return try layers.map { i in
                let layer = geometry[i]
                guard let w = layer.tensor(.weight) else { throw ModelError.badSpec("\(layer.name) has no weights") }
                let count = w.shape.reduce(1, *)
                guard c == .float16 else { return LayerOption(bits: 32 * count) }
                var tensors: [String: Tensor<Double>] = [:]
                for t in layer.tensors {
                    guard let v = floats[layer.key(t.name)] else { continue }
                    tensors[layer.key(t.name)] = Tensor(shape: v.shape, data: v.data.map(StorageFormat.float16.round))
                }
                return LayerOption(tensors: tensors, rounding: .half, bits: 16 * count)
            }
        }
    }

    /// The network with layer `layers[l]` in `candidates[choice[l]]`, measured on the test images.
    func measure(_ choice: [Int]) throws -> RunResult {
        var parameters = floats, roundings: [Int: OperandRounding] = [:]
        for (l, c) in choice.enumerated() {
            let option = options[c][l]
            parameters.merge(option.tensors) { $1 }
            roundings[layers[l]] = option.rounding
        }
        let network = try Network<Float>(
            spec: study.spec, parameters: parameters, inputRoundings: roundings, folded: folded)
        return study.evaluate { network.predict($0) }
    }

    /// The least change the knapsack can predict within each number of bits, in `units` steps up to
    /// `capacity` bits: `best[k]` and the choice that gives it. A layer's bits are rounded up to
    /// whole units, so a choice within `k` units is within `k` units' bits.
    /// Of equal predictions, the one with fewer bits.
    func knapsack(capacity: Int, units: Int) -> [Plan?] {
        let unit = max(1, (capacity + units - 1) / units), slots = capacity / unit
        var best: [Plan?] = Array(repeating: Plan(change: 0, bits: 0, choice: []), count: slots + 1)
        for l in layers.indices {
            var next: [Plan?] = Array(repeating: nil, count: slots + 1)
            for k in 0...slots {
                for c in candidates.indices {
                    let bits = options[c][l].bits, cost = (bits + unit - 1) / unit
                    guard cost <= k, let before = best[k - cost] else { continue }
                    let plan = Plan(
                        change: before.change + predicted(c, l), bits: before.bits + bits, choice: before.choice + [c])
                    if next[k].map({ plan.isBetter(than: $0) }) ?? true { next[k] = plan }
                }
            }
            best = next
        }
        return best
    }

    /// The change the search counts for layer `l` in candidate `c`: the measured one, or 0 where
    /// it measured a gain (one layer rounded alone rarely helps; such gains are the test set's noise).
    func predicted(_ c: Int, _ l: Int) -> Double { min(0, alone[c][l]) }

    /// A choice of candidate per layer (of the first layers), its predicted change and its bits.
    struct Plan {
        var change: Double, bits: Int, choice: [Int]

        /// A larger predicted change (a smaller drop), or the same in fewer bits.
        func isBetter(than other: Plan) -> Bool {
            change > other.change + 1e-9 || (abs(change - other.change) <= 1e-9 && bits < other.bits)
        }
    }

    /// The assignment with the least predicted loss within `bitsPerWeight` bits per weight, measured.
    public func within(bitsPerWeight: Double) throws -> SearchOutcome {
        let capacity = Int((bitsPerWeight * Double(weightCount)).rounded(.down))
        guard let pick = knapsack(capacity: capacity, units: 4096).last!, !pick.choice.isEmpty else {
            throw ModelError.badSpec(
                String(format: "no assignment of the candidates fits in %.2f bits per weight", bitsPerWeight))
        }
        return try outcome(pick.choice, rejected: 0)
    }

    /// The assignment with the fewest bits whose measured change is at least `-maxDrop` points: the
    /// smallest that the knapsack predicts within it, then, while the measurement disagrees, the next
    /// larger ones with a better prediction, at most `tries` of them (all float32 at the end, which
    /// changes nothing).
    public func within(maxDrop: Double, tries: Int = 12) throws -> SearchOutcome {
        let table = knapsack(capacity: 32 * weightCount, units: 4096)
        var floor = -maxDrop, rejected = 0
        for entry in table {
            guard rejected < tries, let entry, entry.change >= floor, entry.change > floor || rejected == 0 else {
                continue
            }
            let result = try outcome(entry.choice, rejected: rejected)
            if -result.verified.vsFloat32.changePP <= maxDrop { return result }
            (floor, rejected) = (entry.change, rejected + 1)
        }
        return try outcome(Array(repeating: candidates.count - 1, count: layers.count), rejected: rejected)
    }

    /// Weight values of the quantized layers.
    var weightCount: Int { options[candidates.count - 1].reduce(0) { $0 + $1.bits } / 32 }

    /// `choice` measured and described.
    func outcome(_ choice: [Int], rejected: Int) throws -> SearchOutcome {
        let assignment = layers.indices.map { l in
            LayerAssignment(
                layer: study.spec.layerNames[layers[l]], candidate: candidates[choice[l]].description,
                weights: options[candidates.count - 1][l].bits / 32, bits: options[choice[l]][l].bits,
                alonePP: alone[choice[l]][l])
        }
        return SearchOutcome(
            assignment: assignment,
            bitsPerWeight: Double(assignment.reduce(0) { $0 + $1.bits }) / Double(weightCount),
            predictedPP: layers.indices.reduce(0) { $0 + predicted(choice[$1], $1) }, verified: try measure(choice),
            rejected: rejected)
    }
}

extension Array {
    /// The array with element `i` replaced by `value`.
    func with(_ i: Int, _ value: Element) -> [Element] {
        var out = self
        out[i] = value
        return out
    }
}

extension OperandRounding {
    /// IEEE half: each value rounded to the nearest float16, to nearest even.
    static let half = OperandRounding { x, layout in
        let count = (layout.vectors - 1) * layout.vectorStride + (layout.length - 1) * layout.elementStride + 1
        for k in 0..<count { x[k] = StorageFormat.float16.round(x[k]) }
    }
}
