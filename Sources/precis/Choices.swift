import ArgumentParser
import PrecisCore
import PrecisWeights
import PrecisWorkflows

// Command-line choices as types: the parser checks them, `--help` lists their values, and a
// typo gets the parser's error with the list (exit code 64).

extension CalibrationMethod: ExpressibleByArgument {}
extension WeightRounding: ExpressibleByArgument {}
extension FallbackPrecision: ExpressibleByArgument {}
extension TrainingPrecision: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}

extension QuantScheme: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(name: argument)
    }
    public static var allValueStrings: [String] { all.map(\.description) }
}

extension MiniFloat: ExpressibleByArgument {
    public init?(argument: String) {
        guard let f = MiniFloat.all.first(where: { $0.name == argument }) else { return nil }
        self = f
    }
    public static var allValueStrings: [String] { all.map(\.name) }
}

extension FormatMode: ExpressibleByArgument {
    public init?(argument: String) {
        guard case .format(let mode, mixed: false)? = Precision(name: argument) else { return nil }
        self = mode
    }
    public static var allValueStrings: [String] { namePatterns }
}

/// `parse(text)` for an option's transform: a refusal becomes the parser's error with the
/// library's reason (`shift takes 1 to 8 pixels`), exit code 64.
func parsedOption<V>(_ parse: (String) throws -> V, _ text: String) throws -> V {
    do { return try parse(text) } catch let error as ModelError { throw ValidationError(error.description) }
}

/// `--seed`: a whole number from 0 to 2^64 - 1.
func seedValue(_ text: String) throws -> UInt64 {
    guard let seed = UInt64(text) else {
        throw ValidationError("a seed is a whole number from 0 to \(UInt64.max)")
    }
    return seed
}

/// A comma-separated list of values of `Value`, or `all`; a value named twice counts once.
struct ChoiceList<Value: ExpressibleByArgument & CaseIterable & Equatable>: ExpressibleByArgument {
    let values: [Value]

    init?(argument: String) {
        if argument == "all" {
            values = Array(Value.allCases)
            return
        }
        let items = argument.split(separator: ",", omittingEmptySubsequences: false).map { Value(argument: String($0)) }
        guard !items.isEmpty, items.allSatisfy({ $0 != nil }) else { return nil }
        values = firstOfEach(items.compactMap { $0 })
    }

    static var all: ChoiceList { ChoiceList(argument: "all")! }
    static var allValueStrings: [String] { Value.allValueStrings + ["all"] }
    var defaultValueDescription: String {
        values.count == Value.allCases.count ? "all" : values.map { "\($0)" }.joined(separator: ",")
    }
}

extension QuantScheme: CaseIterable {
    public static var allCases: [QuantScheme] { all }
}

/// `values` without repeats, each where it first comes (`bfloat16,bfloat16-acc32` is one mode).
func firstOfEach<V: Equatable>(_ values: [V]) -> [V] {
    values.enumerated().filter { i, v in !values[..<i].contains(v) }.map(\.element)
}

/// `eval --explain`: a precision other than float32, the reference.
func explainedPrecision(_ text: String) throws -> Precision {
    if text == "int8" { throw ValidationError("--explain takes one stored variant, int8-<scheme>") }
    guard let precision = Precision(name: text) else {
        throw ValidationError("unknown precision '\(text)' (\(PrecisionSelection.valueList))")
    }
    if precision == .floating(.float32) {
        throw ValidationError("float32 is the reference; explain another precision (\(PrecisionSelection.valueList))")
    }
    return precision
}

/// `--limit N` (a seeded sample stratified by class) or `--first N` (file order).
struct SampleOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Use a sample of N test images, stratified by class and drawn with --seed.")
    var limit: Int?

    @Option(
        parsing: .unconditional,
        help: "Use the first N test images in file order instead (they may all be of one class).")
    var first: Int?

    func validate() throws {
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
        if let first, first <= 0 { throw ValidationError("--first must be positive") }
        if limit != nil && first != nil { throw ValidationError("give --limit or --first, not both") }
    }

    /// The test images chosen, with `seed` for a sample.
    func selection(seed: UInt64) -> ImageSelection {
        if let limit { return .stratified(count: limit, seed: seed) }
        if let first { return .first(count: first) }
        return .all
    }
}
