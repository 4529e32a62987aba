import Foundation
import PrecisCore
import PrecisWeights

/// What a precision search is asked to meet: a size, or an accuracy drop.
public enum SearchGoal: Sendable, Equatable {
    /// At most this many bits per weight value, scales counted.
    case bitsPerWeight(Double)
    /// At most this many points below float32, measured.
    case maxDrop(Double)

    /// How the stored variant's name ends: `bits4.5`, `drop0.5`.
    public var tag: String {
        let (word, value) =
            switch self {
            case .bitsPerWeight(let bits): ("bits", bits)
            case .maxDrop(let points): ("drop", points)
            }
        var digits = String(format: "%.4f", value)
        while digits.hasSuffix("0") { digits.removeLast() }
        if digits.hasSuffix(".") { digits.removeLast() }
        return word + digits
    }

    /// The goal in words.
    public var text: String {
        switch self {
        case .bitsPerWeight(let bits): String(format: "at most %.2f bits per weight", bits)
        case .maxDrop(let points): String(format: "at most %.2f points below float32", points)
        }
    }
}

/// `precis quantize --budget | --max-drop --candidates --json` (precis.search/1): the candidates, each
/// layer's measured change in each, and the assignment found with its measured result.
public struct SearchSummary: Codable, Equatable, Sendable {
    public var schema = ReportSchema.search
    public var file: String
    public var budgetBitsPerWeight: Double?, maxDropPP: Double?
    public var candidates: [String]
    /// The quantized layers, and `alonePP[c][l]`: the change with only layer `l` in candidate `c`.
    public var layers: [String], alonePP: [[Double]]
    public var float32: RunResult
    public var outcome: SearchOutcome
    /// The variant the assignment is stored as (`search-bits4.5`).
    public var variant: String

    private enum CodingKeys: String, CodingKey {
        case schema, file, budgetBitsPerWeight = "budget_bits_per_weight", maxDropPP = "max_drop_pp", candidates
        case layers, alonePP = "alone_pp", float32, outcome, variant
    }

    /// The lines a person reads: the goal, the assignment layer by layer, and its predicted and measured change.
    public var lines: [String] {
        let goal = (budgetBitsPerWeight.map(SearchGoal.bitsPerWeight) ?? .maxDrop(maxDropPP ?? 0)).text
        var out = [
            "precision search over \(candidates.joined(separator: ", ")) per layer, \(goal) "
                + "(exact knapsack over each layer's measured change alone):",
            "  layer                 candidate      bits/weight   alone (points)",
        ]
        for a in outcome.assignment {
            out.append(
                "  " + a.layer.padding(toLength: 22, withPad: " ", startingAt: 0)
                    + a.candidate.padding(toLength: 15, withPad: " ", startingAt: 0)
                    + String(format: "%11.2f   %+14.2f", Double(a.bits) / Double(a.weights), a.alonePP))
        }
        let v = outcome.verified
        out.append(
            String(
                format: "%.2f bits per weight: predicted %+.2f points, measured %@ (%+.2f points, %d answers differ)",
                outcome.bitsPerWeight, outcome.predictedPP, percentText(v.accuracy), v.vsFloat32.changePP,
                v.vsFloat32.differs)
                + (outcome.rejected > 0 ? "; \(outcome.rejected) cheaper assignments measured beyond the limit" : ""))
        out.append("stored /variants/\(variant) (precis eval \(file) --precision \(variant) runs it)")
        return out
    }
}

/// A precision search on a study's network (see `PrecisionSearch`).
public struct SearchRun {
    public let candidates: [SearchCandidate]
    public let goal: SearchGoal
    /// The seed the calibration images were drawn with, recorded with the variant.
    public var seed: UInt64 = 0

    public init(candidates: [SearchCandidate], goal: SearchGoal) { (self.candidates, self.goal) = (candidates, goal) }

    /// Measures every layer in every candidate on the study's test images, picks the assignment,
    /// measures it and stores it in `store` as `/variants/search-<goal>`, the calibration described
    /// as drawn from `dataset`'s training set; `progress` gets measurements done and their total.
    public func run(
        _ study: QuantizationStudy, store: WeightStore, dataset: String,
        progress: @escaping (Int, Int) -> Void = { _, _ in }
    ) throws -> SearchSummary {
        let search = try PrecisionSearch(study: study, candidates: candidates, progress: progress)
        let outcome: SearchOutcome, budget: Double?, drop: Double?
        switch goal {
        case .bitsPerWeight(let bits): (outcome, budget, drop) = (try search.within(bitsPerWeight: bits), bits, nil)
        case .maxDrop(let points): (outcome, budget, drop) = (try search.within(maxDrop: points), nil, points)
        }
        let attributes: [(String, HDF5Attribute)] =
            calibrationAttributes(
                "int8 inputs mse, number formats as each calibrates", images: study.calibrationCount,
                seed: seed, source: "training set of \(dataset)")
            + [
                ("search_goal", .string(goal.text)),
                ("search_candidates", .string(search.candidates.map(\.description).joined(separator: ","))),
                ("search_method", .string("exact multiple-choice knapsack over each layer's measured change alone")),
                ("search_predicted_pp", .double(outcome.predictedPP)),
                ("search_measured_pp", .double(outcome.verified.vsFloat32.changePP)),
            ]
        let variant = try store.store(search.model(outcome, goal: goal.tag), calibration: attributes)
        return SearchSummary(
            file: store.path, budgetBitsPerWeight: budget, maxDropPP: drop,
            candidates: search.candidates.map(\.description), layers: search.layers.map { study.spec.layerNames[$0] },
            alonePP: search.alone, float32: study.float32, outcome: outcome, variant: variant)
    }
}
