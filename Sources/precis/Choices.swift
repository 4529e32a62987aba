import ArgumentParser
import PrecisCore
import PrecisWeights

// Command-line choices as types: the parser checks them, `--help` lists their values, and a
// typo gets the parser's error with the list (exit code 64).

extension PrecisionMode: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

extension CalibrationMethod: ExpressibleByArgument {}
extension TrainingPrecision: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}

extension QuantScheme: ExpressibleByArgument {
    public init?(argument: String) {
        guard let s = QuantScheme.all.first(where: { $0.description == argument }) else { return nil }
        self = s
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
    public init?(argument: String) { self.init(name: argument) }
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

/// One entry of `eval --precision`.
enum PrecisionChoice: Equatable {
    case mode(PrecisionMode)
    /// Every stored int8 variant, or the default scheme calibrated on the spot.
    case int8
    /// One stored int8 variant.
    case int8Variant(String)
    /// A number format simulated in Float, by name (or a stored `<format>-mixed` variant).
    case format(String)

    init?(argument: String) {
        if argument == "int8" {
            self = .int8
        } else if argument.hasPrefix("int8-") {
            self = .int8Variant(argument)
        } else if let mode = PrecisionMode(name: argument) {
            self = .mode(mode)
        } else if WeightFile.formatMode(ofVariant: argument) != nil {
            self = .format(argument)
        } else {
            return nil
        }
    }

    static let valueList =
        (PrecisionMode.allValueStrings + ["int8", "int8-<scheme>"] + FormatMode.namePatterns).joined(separator: ", ")
}

/// `values` without repeats, each where it first comes (`bfloat16,bfloat16-acc32` is one mode).
func firstOfEach<V: Equatable>(_ values: [V]) -> [V] {
    values.enumerated().filter { i, v in !values[..<i].contains(v) }.map(\.element)
}

/// `eval --precision`: comma-separated choices, or `all` (every floating mode and every stored int8 variant).
struct PrecisionList: ExpressibleByArgument {
    let all: Bool
    let choices: [PrecisionChoice]

    init?(argument: String) { try? self.init(parsing: argument) }

    /// Throws an error naming the first unknown entry.
    init(parsing text: String) throws {
        if text == "all" {
            (all, choices) = (
                true, PrecisionMode.allCases.map { .mode($0) } + FormatMode.standard.map { .format($0.name) }
            )
            return
        }
        var choices: [PrecisionChoice] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard let choice = PrecisionChoice(argument: item) else {
                throw ValidationError("unknown precision '\(item)' (\(PrecisionChoice.valueList), all)")
            }
            choices.append(choice)
        }
        (all, self.choices) = (false, firstOfEach(choices))
    }

    static var allValueStrings: [String] {
        PrecisionMode.allValueStrings + ["int8", "int8-<scheme>"] + FormatMode.namePatterns + ["all"]
    }
    var defaultValueDescription: String { all ? "all" : "" }

    /// The floating modes, in order.
    var modes: [PrecisionMode] { choices.compactMap { if case .mode(let m) = $0 { m } else { nil } } }

    /// The number formats, in order.
    var formats: [String] { choices.compactMap { if case .format(let f) = $0 { f } else { nil } } }
}

/// `eval --explain`: a floating mode other than float32, or a stored int8 variant.
enum ExplainChoice {
    case mode(PrecisionMode)
    case int8Variant(String)
    case format(String)

    /// The precision's name, as `--precision` takes it.
    var name: String {
        switch self {
        case .mode(let m): m.rawValue
        case .int8Variant(let name), .format(let name): name
        }
    }

    init(parsing text: String) throws {
        switch PrecisionChoice(argument: text) {
        case .mode(.float32)?:
            throw ValidationError("float32 is the reference; explain another precision (\(PrecisionChoice.valueList))")
        case .mode(let m)?: self = .mode(m)
        case .int8Variant(let name)?: self = .int8Variant(name)
        case .format(let f)?: self = .format(f)
        case .int8?: throw ValidationError("--explain takes one stored variant, int8-<scheme>")
        case nil: throw ValidationError("unknown precision '\(text)' (\(PrecisionChoice.valueList))")
        }
    }
}

/// `quantize --fallback`: the precision of the layers kept in float.
enum FallbackPrecision: String, CaseIterable, ExpressibleByArgument {
    case float32, float16

    /// Bytes per kept weight.
    var bytesPerValue: Int { self == .float16 ? 2 : 4 }
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
