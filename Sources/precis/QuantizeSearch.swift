import ArgumentParser
import PrecisCore
import PrecisWeights
import PrecisWorkflows

/// `quantize --budget` and `--candidates`: the per-layer precision search.
struct SearchOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            """
            Search for the per-layer formats with the least measured accuracy loss within this many bits per weight \
            (scales counted), over --candidates; stores /variants/search-bits<BITS> (precis eval runs it).
            """, valueName: "bits"))
    var budget: Double?

    @Option(
        help: ArgumentHelp(
            """
            The formats a layer may take in the search, comma-separated (int8, float16, float32 or a number format; \
            default: \(SearchCandidate.defaults.map(\.description).joined(separator: ","))). With --max-drop and no \
            --format or int8 scheme, the search finds the fewest bits within the drop.
            """, valueName: "list"))
    var candidates: String?

    /// Whether a search is asked for by name.
    var requested: Bool { budget != nil || candidates != nil }

    /// The candidates named.
    var parsed: [SearchCandidate] {
        get throws {
            guard let candidates else { return SearchCandidate.defaults }
            let names = candidates.split(separator: ",").map(String.init)
            let parsed = names.compactMap(SearchCandidate.init(name:))
            guard parsed.count == names.count, !parsed.isEmpty else {
                let bad = names.first { SearchCandidate(name: $0) == nil } ?? candidates
                throw ValidationError(
                    "--candidates: unknown format '\(bad)' (int8, float16, float32, or "
                        + FormatMode.namePatterns.dropLast().joined(separator: ", ") + ")")
            }
            return parsed
        }
    }
}

extension Quantize {
    /// Whether the options ask for the search: `--budget` or `--candidates`, or `--max-drop` with
    /// neither a format nor one int8 scheme and calibration to keep layers of.
    var searching: Bool {
        search.requested
            || (maxDrop != nil && format == nil && !compare && !dynamic && scheme.values.count == QuantScheme.all.count
                && calibration.values.count == CalibrationMethod.allCases.count)
    }

    /// Refuses search options that do not go together, or with the others.
    func validateSearch() throws {
        guard searching else { return }
        _ = try search.parsed
        if let budget, !(budget > 0 && budget <= 32) {
            throw ValidationError("--budget takes bits per weight, more than 0 and at most 32")
        }
        guard (search.budget == nil) != (maxDrop == nil) else {
            throw ValidationError("the search meets one limit: give --budget BITS or --max-drop POINTS")
        }
        if compare || format != nil || dynamic || sensitivity || biasCorrection || equalize || record
            || fallback != .float32
        {
            throw ValidationError(
                "--budget and --candidates search per layer: no --compare, --format, --dynamic, --sensitivity, "
                    + "--bias-correction, --equalize, --record or --fallback")
        }
    }

    var budget: Double? { search.budget }

    /// The search, printed or as JSON.
    func runSearch(_ study: QuantizationStudy, _ store: WeightStore, dataset: String) throws {
        let progress = ProgressLine(quiet: quiet || json)
        let goal: SearchGoal = budget.map { .bitsPerWeight($0) } ?? .maxDrop(maxDrop ?? 0)
        var run = SearchRun(candidates: try search.parsed, goal: goal)
        run.seed = seed
        let summary = try run.run(study, store: store, dataset: dataset) {
            progress.update("measure", done: $0, total: $1, unit: "runs")
        }
        progress.clear()
        if json { return try printJSON(summary) }
        for line in summary.lines { print(line) }
    }
}
