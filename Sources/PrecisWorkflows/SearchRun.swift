import PrecisCore

/// What a precision search is asked to meet: a size, or an accuracy drop.
public enum SearchGoal: Sendable, Equatable {
    /// At most this many bits per weight value, scales counted.
    case bitsPerWeight(Double)
    /// At most this many points below float32, measured.
    case maxDrop(Double)
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

    private enum CodingKeys: String, CodingKey {
        case schema, file, budgetBitsPerWeight = "budget_bits_per_weight", maxDropPP = "max_drop_pp", candidates
        case layers, alonePP = "alone_pp", float32, outcome
    }

    /// The lines a person reads: the goal, the assignment layer by layer, and its predicted and measured change.
    public var lines: [String] {
        let goal =
            budgetBitsPerWeight.map { String(format: "at most %.2f bits per weight", $0) }
            ?? String(format: "at most %.2f points below float32", maxDropPP ?? 0)
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
        return out
    }
}

/// A precision search on a study's network (see `PrecisionSearch`).
public struct SearchRun {
    public let candidates: [SearchCandidate]
    public let goal: SearchGoal

    public init(candidates: [SearchCandidate], goal: SearchGoal) { (self.candidates, self.goal) = (candidates, goal) }

    /// Measures every layer in every candidate on the study's test images, picks the assignment
    /// and measures it; `progress` gets measurements done and their total.
    public func run(_ study: QuantizationStudy, file: String, progress: @escaping (Int, Int) -> Void = { _, _ in })
        throws -> SearchSummary
    {
        let search = try PrecisionSearch(study: study, candidates: candidates, progress: progress)
        let outcome: SearchOutcome, budget: Double?, drop: Double?
        switch goal {
        case .bitsPerWeight(let bits): (outcome, budget, drop) = (try search.within(bitsPerWeight: bits), bits, nil)
        case .maxDrop(let points): (outcome, budget, drop) = (try search.within(maxDrop: points), nil, points)
        }
        return SearchSummary(
            file: file, budgetBitsPerWeight: budget, maxDropPP: drop, candidates: search.candidates.map(\.description),
            layers: search.layers.map { study.spec.layerNames[$0] }, alonePP: search.alone, float32: study.float32,
            outcome: outcome)
    }
}
