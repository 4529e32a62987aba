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
    /// The number-format or int8 model each candidate's options come from.
    let models: [(format: FormatModel?, int8: QuantizedModel?)]
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
        var options: [[LayerOption]] = [], models: [(format: FormatModel?, int8: QuantizedModel?)] = []
        for c in self.candidates {
            let built = try Self.options(c, study, layers, floats)
            options.append(built.options)
            models.append((built.format, built.int8))
        }
        (self.options, self.models) = (options, models)
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

    /// Every layer of `layers` in candidate `c`, with `floats` the folded float tensors, and the
    /// model (number format or int8) they come from.
    static func options(
        _ c: SearchCandidate, _ study: QuantizationStudy, _ layers: [Int], _ floats: [String: Tensor<Double>]
    ) throws -> (options: [LayerOption], format: FormatModel?, int8: QuantizedModel?) {
        let spec = study.spec, geometry = try spec.geometry()
        switch c {
        case .format(let mode):
            let model = try study.formatModel(mode)
            return (try layers.map { try LayerOption.format(model, geometry[$0]) }, model, nil)
        case .int8:
            let model = try study.quantize(Precision.defaultInt8Scheme, .mse)
            let values = try model.dequantized(spec, study.tensors)
            return (try layers.map { try LayerOption.int8(model, geometry[$0], values) }, nil, model)
        case .float16:
            var half: [String: Tensor<Double>] = [:]
            for (key, v) in floats { half[key] = Tensor(shape: v.shape, data: v.data.map(StorageFormat.float16.round)) }
            return (try layers.map { try LayerOption.half(geometry[$0], half) }, nil, nil)
        case .float32:
            return (try layers.map { try LayerOption.float32(geometry[$0]) }, nil, nil)
        }
    }

    /// The model of `outcome`'s assignment, named by `goal` (`bits4.5`, `drop0.5`).
    public func model(_ outcome: SearchOutcome, goal: String) -> SearchedModel {
        model(outcome.assignment.map { a in candidates.firstIndex { $0.description == a.candidate }! }, goal: goal)
    }

    /// The model of `choice` (a candidate index per layer), named by `goal`.
    func model(_ choice: [Int], goal: String) -> SearchedModel {
        var formats: [FormatModel] = [], int8: QuantizedModel?, half: [String: Tensor<Double>] = [:]
        for c in Set(choice).sorted() {
            let chosen = Set(layers.indices.filter { choice[$0] == c }.map { layers[$0] })
            if let m = models[c].format { formats.append(m.only(chosen)) }
            if let m = models[c].int8 {
                int8 = m.only(chosen)
                if chosen.count < layers.count { int8?.form = .mixed(half: false) }
            }
            if candidates[c] == .float16 {
                for l in layers.indices where choice[l] == c { half.merge(options[c][l].tensors) { $1 } }
            }
        }
        return SearchedModel(goal: goal, formats: formats, int8: int8, half: half, folded: folded)
    }

    /// The network with layer `layers[l]` in `candidates[choice[l]]`, measured on the test images.
    func measure(_ choice: [Int]) throws -> RunResult {
        let network = try network(choice)
        return study.evaluate { network.predict($0) }
    }

    /// The network with layer `layers[l]` in `candidates[choice[l]]`.
    func network(_ choice: [Int]) throws -> Network<Float> {
        var chosen: [Int: LayerOption] = [:]
        for (l, c) in choice.enumerated() { chosen[layers[l]] = options[c][l] }
        return try LayerOption.network(spec: study.spec, floats: floats, options: chosen, folded: folded)
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
    var weightCount: Int { options[0].reduce(0) { $0 + $1.values } }

    /// `choice` measured and described.
    func outcome(_ choice: [Int], rejected: Int) throws -> SearchOutcome {
        let assignment = layers.indices.map { l in
            LayerAssignment(
                layer: study.spec.layerNames[layers[l]], candidate: candidates[choice[l]].description,
                weights: options[0][l].values, bits: options[choice[l]][l].bits,
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
