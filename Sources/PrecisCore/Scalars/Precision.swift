/// What an int8 variant holds besides int8 layers, as the end of its name says: nothing
/// (`int8-<scheme>`), some layers kept in float (`-mixed`), or no input ranges (`-dynamic`).
public enum Int8Kind: String, Sendable, CaseIterable {
    case plain, mixed, dynamic
}

/// A precision Precis measures, named as every command, weight file and report names it.
///
/// The grammar, and the only place it is written:
/// - a floating mode: `float64`, `float32`, `float16`, `float16-acc32`, `bfloat16-acc32`, and
///   `bfloat16`, the stored variant that `bfloat16-acc32` runs;
/// - an int8 scheme: `int8-w<tensor|channel>-a<s8|s8z|u8z>`, with `-mixed` or `-dynamic`;
/// - a number format: `float8-<e4m3|e5m2>[-nosat]`, `mxfp8-<e4m3|e5m2>`, `mxfp6-<e3m2|e2m3>`, `mxfp4`,
///   `mxint8`, `nvfp4`, `int4-<channel|g32|g64|g128>[-z][-a8]`; then `-gptq` or `-adaround` for a
///   stored variant whose weights GPTQ or AdaRound rounded, and `-mixed` for a stored variant that
///   keeps some layers in float;
/// - a searched assignment: `search-<goal>` (`search-bits4.5`, `search-drop0.5`), each layer in the
///   candidate a precision search chose for it.
public enum Precision: Sendable, Hashable, CustomStringConvertible {
    /// A floating mode: a scalar type and a storage format.
    case floating(PrecisionMode)
    /// An int8 scheme on the integer path.
    case int8(QuantScheme, Int8Kind)
    /// A number format simulated in Float; `mixed` keeps some layers in float32.
    case format(FormatMode, mixed: Bool)
    /// A per-layer assignment a precision search stored, by the goal it met (see `SearchedModel`).
    case searched(String)

    /// The precision called `name`, or nil when the grammar has no such name.
    public init?(name: String) {
        if let mode = PrecisionMode(rawValue: name) ?? PrecisionMode.allCases.last(where: { $0.variant == name }) {
            self = .floating(mode)
            return
        }
        if name.hasPrefix(Self.searchPrefix) {
            let goal = name.dropFirst(Self.searchPrefix.count)
            guard !goal.isEmpty, goal.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == ".") }) else {
                return nil
            }
            self = .searched(String(goal))
            return
        }
        let mixed = name.hasSuffix("-mixed"), base = mixed ? String(name.dropLast(6)) : name
        if let format = FormatMode.named(base) {
            self = .format(format, mixed: mixed)
            return
        }
        var parts = name.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, parts[0] == "int8" else { return nil }
        let kind = Int8Kind(rawValue: parts.last!).flatMap { $0 == .plain ? nil : $0 } ?? .plain
        if kind != .plain { parts.removeLast() }
        guard parts.count <= 4, let scheme = QuantScheme(name: parts[1...].joined(separator: "-")) else { return nil }
        self = .int8(scheme, kind)
    }

    /// The name, which `init(name:)` reads back.
    public var name: String {
        switch self {
        case .floating(let mode): return mode.rawValue
        case .int8(let scheme, let kind): return "int8-\(scheme)" + (kind == .plain ? "" : "-\(kind.rawValue)")
        case .format(let format, let mixed): return format.name + (mixed ? "-mixed" : "")
        case .searched(let goal): return Self.searchPrefix + goal
        }
    }

    public var description: String { name }

    /// How a searched assignment's name begins.
    static let searchPrefix = "search-"

    /// The number format, for a format's precision.
    public var format: FormatMode? { if case .format(let f, _) = self { f } else { nil } }

    /// The precision called `name`, where `int8` alone is the default scheme (what training and
    /// quantizing aim at).
    public static func target(_ name: String) -> Precision? {
        name == "int8" ? .int8(defaultInt8Scheme, .plain) : Precision(name: name)
    }

    /// The default int8 scheme: int8 weights per output channel, uint8 inputs with a zero point.
    public static let defaultInt8Scheme = QuantScheme(weights: .perChannel, activations: .uint8Asymmetric)

    /// What `all` runs, in order: every floating mode, then the standard number formats.
    public static let all: [Precision] =
        PrecisionMode.allCases.map { .floating($0) } + FormatMode.standard.map { .format($0, mixed: false) }

    /// Every name and pattern `init(name:)` accepts, for help texts and errors.
    public static let namePatterns =
        PrecisionMode.allCases.map(\.rawValue) + ["bfloat16", "int8-<scheme>[-cle][-mixed|-dynamic]"]
        + FormatMode.namePatterns + ["search-<goal>"]
}

extension QuantScheme {
    /// `w<tensor|channel>-a<s8|s8z|u8z>[-cle]`, e.g. `wchannel-au8z`.
    public var description: String {
        "w\(weights.rawValue)-a\(activations.rawValue)" + (equalized ? FormatMode.equalizedSuffix : "")
    }

    /// The scheme called `name` (as `description` writes it).
    public init?(name: String) {
        let equalized = name.hasSuffix(FormatMode.equalizedSuffix)
        let base = equalized ? String(name.dropLast(FormatMode.equalizedSuffix.count)) : name
        guard var scheme = QuantScheme.all.first(where: { $0.description == base }) else { return nil }
        scheme.equalized = equalized
        self = scheme
    }
}

extension FormatMode {
    /// Float elements with a per-tensor scale: `float8-e4m3`, `float8-e5m2` (saturating), and the
    /// same with `-nosat`.
    static func float8(_ f: MiniFloat, saturating: Bool) -> FormatMode {
        let format = OperandFormat.scaled(f, saturating: saturating)
        return FormatMode(name: "float8-\(f.name)" + (saturating ? "" : "-nosat"), weights: format, activations: format)
    }

    static func mx(_ name: String, _ element: MXElement) -> FormatMode {
        let format = OperandFormat.mx(MXBlockFormat(element: element))
        return FormatMode(name: name, weights: format, activations: format)
    }

    /// The OFP8, MX and NVFP4 modes.
    static let floats: [FormatMode] = [
        float8(.e4m3, saturating: true), float8(.e5m2, saturating: true), mx("mxfp8-e4m3", .float(.e4m3)),
        mx("mxfp8-e5m2", .float(.e5m2)), mx("mxfp6-e3m2", .float(.e3m2)), mx("mxfp6-e2m3", .float(.e2m3)),
        mx("mxfp4", .float(.e2m1)), mx("mxint8", .int8),
        FormatMode(name: "nvfp4", weights: .nvfp4, activations: .nvfp4),
    ]

    /// The formats `all` runs, in order.
    public static let standard = floats + ["int4-channel", "int4-g32", "int4-g128-z", "int4-g32-a8"].map { named($0)! }

    /// The format names, as patterns.
    public static let namePatterns =
        floats.map(\.name) + ["float8-e4m3-nosat", "float8-e5m2-nosat", "int4-<channel|g32|g64|g128>[-z][-a8]"]
        + ["<format>[-cle][-gptq|-adaround]"]

    /// The format called `name` (without `-mixed`): `-cle` and then its rounding's suffix last.
    static func named(_ name: String) -> FormatMode? {
        if let r = WeightRounding.allCases.first(where: { $0 != .nearest && name.hasSuffix($0.suffix) }) {
            guard let base = named(String(name.dropLast(r.suffix.count))), base.rounding == .nearest else { return nil }
            return base.rounded(r)
        }
        if name.hasSuffix(FormatMode.equalizedSuffix) {
            guard let base = named(String(name.dropLast(FormatMode.equalizedSuffix.count))),
                base.rounding == .nearest && !base.equalized
            else { return nil }
            return base.equalizing(true)
        }
        if let mode = floats.first(where: { $0.name == name }) { return mode }
        if let f = [MiniFloat.e4m3, .e5m2].first(where: { name == "float8-\($0.name)-nosat" }) {
            return float8(f, saturating: false)
        }
        var parts = name.split(separator: "-").map(String.init)
        guard parts.count >= 2, parts[0] == "int4" else { return nil }
        let a8 = parts.last == "a8"
        if a8 { parts.removeLast() }
        let zeroPoint = parts.last == "z"
        if zeroPoint { parts.removeLast() }
        let groups: [String: Int?] = ["channel": nil, "g32": 32, "g64": 64, "g128": 128]
        guard parts.count == 2, let group = groups[parts[1]] else { return nil }
        return FormatMode(
            name: name, weights: .int4(Int4Weights(group: group, zeroPoint: zeroPoint)), activations: a8 ? .int8 : nil)
    }
}

/// A list of precisions as the precision report takes it: comma-separated names, `int8` (every
/// stored int8 variant, or the default scheme calibrated now), or `all`.
public struct PrecisionSelection: Sendable, Equatable {
    /// One entry of the list.
    public enum Item: Sendable, Hashable {
        case precision(Precision)
        /// Every stored int8 variant, or the default scheme calibrated now when there is none.
        case anyInt8
    }

    /// Whether the list is `all`: every floating mode and standard format, and every stored variant.
    public let all: Bool
    /// The entries, each once, in the order first named.
    public let items: [Item]

    /// Throws an error naming the first unknown entry.
    public init(parsing text: String) throws {
        if text == "all" {
            (all, items) = (true, Precision.all.map { .precision($0) })
            return
        }
        var items: [Item] = []
        for name in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            let precision = Precision(name: name)
            guard name == "int8" || precision != nil else {
                throw ModelError.badSpec("unknown precision '\(name)' (\(Self.valueList))")
            }
            let item = precision.map { Item.precision($0) } ?? .anyInt8
            if !items.contains(item) { items.append(item) }
        }
        (all, self.items) = (false, items)
    }

    /// The precisions named, in order.
    public var precisions: [Precision] { items.compactMap { if case .precision(let p) = $0 { p } else { nil } } }

    /// Every name and pattern the list takes, for help texts and errors.
    public static let valueList = (Precision.namePatterns + ["int8", "all"]).joined(separator: ", ")
}
