import Foundation

// The typed results that `precis eval`, `precis quantize` and `precis inspect` print, write as
// JSON and store in weight files. JSON keys are snake_case, each named in a `CodingKeys`. A number that
// is not finite (an SQNR of an exact result, an error of an infinite value) is written as `null`;
// each such field documents how to read `null`.

/// The schema identifiers of Precis's JSON documents: `<document>/<version>`.
public enum ReportSchema {
    /// `precis eval --json`: a ``PrecisionReport``.
    public static let eval = "precis.eval/1"
    /// `precis quantize --compare --json`: a ``CompareReport``.
    public static let compare = "precis.quantize-compare/1"
    /// `precis quantize --json` when storing a variant: a ``QuantizeSummary``.
    public static let quantize = "precis.quantize/1"
    /// `precis quantize --budget | --candidates --json`: a `SearchSummary` (PrecisWorkflows).
    public static let search = "precis.search/1"
    /// `precis inspect --json`: a `FileSummary` (PrecisWeights).
    public static let inspect = "precis.inspect/1"
    /// `precis train --json`: a `TrainingSummary` (the command-line tool's).
    public static let train = "precis.train/1"
    /// `precis train --qat --json`.
    public static let qat = "precis.qat/1"
    /// `precis bench --json`: a `BenchReport` (the command-line tool's).
    public static let bench = "precis.bench/1"
    /// `precis formats --json`: the small number formats (the command-line tool's).
    public static let formats = "precis.formats/1"
}

/// The errors of one tensor (a layer's output or the logits) against float64.
public struct ErrorSummary: Codable, Equatable, Sendable {
    /// ‖value − reference‖ / ‖reference‖; +∞ (`null` in JSON) when a value is infinite or NaN.
    public var relativeL2: Double
    /// max |value − reference|; +∞ (`null`) when a value is infinite or NaN.
    public var maxAbsError: Double
    /// mean |value − reference|; +∞ (`null`) when a value is infinite or NaN.
    public var meanAbsError: Double
    /// 10·log10(Σ reference² / Σ error²): +∞ when exact (`null` with `exact` true), −∞ when a value
    /// is infinite or NaN (`null` with `exact` false).
    public var sqnrDB: Double
    /// Values that are ±∞, NaN, nonzero below the smallest normal, or zero where float64 is
    /// nonzero below it (underflow flushed to zero).
    public var infinities: Int, nans: Int, subnormals: Int, flushedToZero: Int

    public init(_ e: ErrorStats) {
        (relativeL2, maxAbsError, meanAbsError, sqnrDB) = (e.relativeL2, e.maxAbsolute, e.meanAbsolute, e.sqnrDB)
        (infinities, nans, subnormals, flushedToZero) = (e.infinities, e.nans, e.subnormals, e.flushed)
    }

    /// Whether every value equals float64's.
    public var exact: Bool { sqnrDB == .infinity }

    private enum Key: String, CodingKey {
        case relativeL2 = "relative_l2", maxAbsError = "max_abs_error", meanAbsError = "mean_abs_error"
        case sqnrDB = "sqnr_db", exact, infinities, nans, subnormals, flushedToZero = "flushed_to_zero"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encodeFinite(relativeL2, forKey: .relativeL2)
        try c.encodeFinite(maxAbsError, forKey: .maxAbsError)
        try c.encodeFinite(meanAbsError, forKey: .meanAbsError)
        try c.encodeFinite(sqnrDB, forKey: .sqnrDB)
        try c.encode(exact, forKey: .exact)
        try c.encode(infinities, forKey: .infinities)
        try c.encode(nans, forKey: .nans)
        try c.encode(subnormals, forKey: .subnormals)
        try c.encode(flushedToZero, forKey: .flushedToZero)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        let exact = try c.decode(Bool.self, forKey: .exact)
        relativeL2 = try c.decodeIfPresent(Double.self, forKey: .relativeL2) ?? .infinity
        maxAbsError = try c.decodeIfPresent(Double.self, forKey: .maxAbsError) ?? .infinity
        meanAbsError = try c.decodeIfPresent(Double.self, forKey: .meanAbsError) ?? .infinity
        sqnrDB = try c.decodeIfPresent(Double.self, forKey: .sqnrDB) ?? (exact ? .infinity : -.infinity)
        infinities = try c.decode(Int.self, forKey: .infinities)
        nans = try c.decode(Int.self, forKey: .nans)
        subnormals = try c.decode(Int.self, forKey: .subnormals)
        flushedToZero = try c.decode(Int.self, forKey: .flushedToZero)
    }
}

/// One layer's output errors, or none when an integer path folds the layer into the one before
/// (`folded`: a ReLU inside a requantization clamp has no values of its own).
public struct LayerError: Codable, Equatable, Sendable {
    public var layer: String
    /// nil when folded.
    public var errors: ErrorSummary?

    public init(layer: String, errors: ErrorSummary?) {
        (self.layer, self.errors) = (layer, errors)
    }

    private enum Key: String, CodingKey { case layer, folded }

    /// `{"layer": "00_conv1", "folded": false, "relative_l2": ..., ...}`: the errors sit beside the name.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(layer, forKey: .layer)
        try c.encode(errors == nil, forKey: .folded)
        try errors?.encode(to: encoder)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        layer = try c.decode(String.self, forKey: .layer)
        errors = try c.decode(Bool.self, forKey: .folded) ? nil : try ErrorSummary(from: decoder)
    }
}

/// A run's predictions against float32's on the same images. Changes are in percentage points.
public struct AccuracyChange: Codable, Equatable, Sendable {
    /// The accuracy change in percentage points, and its 95% interval (see ``PairedChange``).
    public var changePP: Double, ci95LowPP: Double, ci95HighPP: Double
    /// Images whose predicted class differs from float32's; images this run gets right and
    /// float32 wrong, and the reverse.
    public var differs: Int, gained: Int, lost: Int
    /// Images this run gives no answer for (logits not all finite): wrong, and never agreeing.
    public var unanswered: Int
    /// The fraction of images with float32's predicted class (0...1).
    public var agreement: Double

    private enum CodingKeys: String, CodingKey {
        case changePP = "change_pp", ci95LowPP = "ci95_low_pp", ci95HighPP = "ci95_high_pp", differs, gained, lost,
            unanswered, agreement
    }

    public init(
        changePP: Double, ci95LowPP: Double, ci95HighPP: Double, differs: Int, gained: Int, lost: Int,
        unanswered: Int = 0, agreement: Double
    ) {
        (self.changePP, self.ci95LowPP, self.ci95HighPP) = (changePP, ci95LowPP, ci95HighPP)
        (self.differs, self.gained, self.lost, self.unanswered, self.agreement) = (
            differs, gained, lost, unanswered, agreement
        )
    }

    public init(_ c: PairedChange) {
        (changePP, ci95LowPP, ci95HighPP) = (100 * c.change, 100 * c.interval.low, 100 * c.interval.high)
        (differs, gained, lost, unanswered, agreement) = (c.differs, c.gained, c.lost, c.unanswered, c.agreement)
    }

    /// The reference's change against itself: 0, with no interval to it.
    public init(reference c: PairedChange) {
        self.init(c)
        (ci95LowPP, ci95HighPP) = (0, 0)
    }

    /// Reads a change; documents written before `unanswered` was counted had none.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        (changePP, ci95LowPP, ci95HighPP) = (
            try c.decode(Double.self, forKey: .changePP), try c.decode(Double.self, forKey: .ci95LowPP),
            try c.decode(Double.self, forKey: .ci95HighPP)
        )
        (differs, gained, lost) = (
            try c.decode(Int.self, forKey: .differs), try c.decode(Int.self, forKey: .gained),
            try c.decode(Int.self, forKey: .lost)
        )
        unanswered = try c.decodeIfPresent(Int.self, forKey: .unanswered) ?? 0
        agreement = try c.decode(Double.self, forKey: .agreement)
    }

    /// Whether the interval excludes 0 on the losing side.
    public var isLossBeyondNoise: Bool { ci95HighPP < 0 }

    /// `+0.02 [-0.03, +0.07] pp`.
    public var text: String { String(format: "%+.2f [%+.2f, %+.2f] pp", changePP, ci95LowPP, ci95HighPP) }

    /// `no change beyond noise`, `a loss beyond noise` or `a gain beyond noise`.
    public var verdict: String {
        ci95HighPP < 0 ? "a loss beyond noise" : ci95LowPP > 0 ? "a gain beyond noise" : "no change beyond noise"
    }
}

/// One precision's row of the precision report.
public struct ModeResult: Codable, Equatable, Sendable {
    /// The mode's name (`float16-acc32`) or a quantized variant's (`int8-wchannel-au8z`).
    public var precision: String
    /// Whether the network ran with integer-only inference (its layer values are dequantized).
    public var integer: Bool
    /// Where the weights came from: `/model`, `/variants/<name>`, or a note for weights made on the spot.
    public var weights: String
    public var images: Int, correct: Int
    /// correct / images (0...1).
    public var accuracy: Double
    public var vsFloat32: AccuracyChange
    /// The logits' errors against float64 (the last layer's).
    public var logits: ErrorSummary
    public var modelBytes: Int
    /// modelBytes / float32's.
    public var modelRatioToFloat32: Double
    /// Seconds in the network, and images per second.
    public var seconds: Double, imagesPerSecond: Double
    /// Infinite and NaN values over every layer.
    public var nonfinite: Int
    /// Every layer's output errors, in order.
    public var layers: [LayerError]
    /// Bits per weight value, scales included, of a simulated number format (`FormatMode`); nil for
    /// the floating modes and int8.
    public var bitsPerWeight: Double?

    /// Whether the row is a number format simulated in Float.
    public var isFormat: Bool { bitsPerWeight != nil }

    private enum CodingKeys: String, CodingKey {
        case precision, integer, weights, images, correct, accuracy, vsFloat32 = "vs_float32", logits, seconds,
            nonfinite, layers, bitsPerWeight = "bits_per_weight"
        case modelBytes = "model_bytes", modelRatioToFloat32 = "model_ratio_to_float32", imagesPerSecond =
            "images_per_second"
    }

    public init(
        precision: String, integer: Bool, weights: String, images: Int, correct: Int, vsFloat32: AccuracyChange,
        logits: ErrorSummary, modelBytes: Int, float32Bytes: Int, seconds: Double, layers: [LayerError]
    ) {
        (self.precision, self.integer, self.weights, self.images, self.correct) = (
            precision, integer, weights, images, correct
        )
        accuracy = Double(correct) / Double(max(images, 1))
        (self.vsFloat32, self.logits, self.modelBytes, self.seconds, self.layers) = (
            vsFloat32, logits, modelBytes, seconds, layers
        )
        modelRatioToFloat32 = Double(modelBytes) / Double(max(float32Bytes, 1))
        imagesPerSecond = seconds > 0 ? Double(images) / seconds : 0
        nonfinite = layers.reduce(0) { $0 + ($1.errors.map { $0.infinities + $0.nans } ?? 0) }
    }
}

/// What computing one layer alone in a reduced precision does to the whole network.
public struct LayerEffectResult: Codable, Equatable, Sendable {
    public var layer: String
    public var vsFloat32: AccuracyChange
    /// The logits' errors against float64.
    public var logits: ErrorSummary
    /// The int8 weights' SQNR against the float weights, for quantized layers.
    public var weightSQNRDB: Double?

    public init(_ e: LayerEffect, weightSQNRDB: Double? = nil) {
        (layer, vsFloat32, logits, self.weightSQNRDB) = (
            e.layer, AccuracyChange(e.change), ErrorSummary(e.logits), weightSQNRDB
        )
    }

    private enum CodingKeys: String, CodingKey {
        case layer, vsFloat32 = "vs_float32", logits, weightSQNRDB = "weight_sqnr_db"
    }
}

/// `--explain`: float32 with one layer at a time in a reduced precision.
public struct Explanation: Codable, Equatable, Sendable {
    public var precision: String
    /// Whether the layer ran as a quantize-dequantize simulation in Float (int8).
    public var simulated: Bool
    /// Ranked: layers that lower accuracy beyond noise first (largest loss first), then the rest
    /// by the SQNR they leave in the logits, lowest first.
    public var layers: [LayerEffectResult]

    public init(precision: String, simulated: Bool, effects: [LayerEffectResult]) {
        (self.precision, self.simulated) = (precision, simulated)
        func key(_ e: LayerEffectResult) -> (Int, Double, Double) {
            e.vsFloat32.isLossBeyondNoise
                ? (0, e.vsFloat32.changePP, e.logits.sqnrDB) : (1, e.logits.sqnrDB, e.vsFloat32.changePP)
        }
        layers = effects.sorted { key($0) < key($1) }
    }
}

/// The precision report of one network on one test set (`precis eval`).
public struct PrecisionReport: Codable, Equatable, Sendable {
    /// ``ReportSchema/eval``.
    public var schema = ReportSchema.eval
    public var file: String, dataset: String, model: String
    public var images: Int
    /// Which test images, as ``ImageSelection/text(of:noun:)`` names them.
    public var sample: String
    /// The factor every input was multiplied by.
    public var inputScale: Double
    public var layerNames: [String]
    public var results: [ModeResult]
    public var explain: Explanation?
    /// Remarks a reader needs, such as how an int8 variant made on the spot can be stored.
    public var notes: [String]

    private enum CodingKeys: String, CodingKey {
        case schema, file, dataset, model, images, sample, inputScale = "input_scale", layerNames = "layer_names"
        case results, explain, notes
    }

    public init(
        file: String, dataset: String, model: String, images: Int, sample: String? = nil, inputScale: Double,
        layerNames: [String], results: [ModeResult], explain: Explanation? = nil, notes: [String] = []
    ) {
        (self.file, self.dataset, self.model, self.images, self.inputScale) = (file, dataset, model, images, inputScale)
        self.sample = sample ?? ImageSelection.all.text(of: images)
        (self.layerNames, self.results, self.explain, self.notes) = (layerNames, results, explain, notes)
    }
}

extension ModeResult {
    /// The row of `report` against `float32`, its layers named by `layerNames`.
    public init(_ report: ModeReport, float32: ModeReport, labels: [Int], weights: String, layerNames: [String]) {
        let change = PairedChange(predicted: report.predicted, reference: float32.predicted, labels: labels)
        let layers = zip(layerNames, report.layers.indices).map { name, i in
            LayerError(layer: name, errors: report.computed[i] ? ErrorSummary(report.layers[i]) : nil)
        }
        self.init(
            precision: report.name, integer: report.mode == nil && report.bitsPerWeight == nil, weights: weights,
            images: labels.count,
            correct: zip(report.predicted, labels).filter { $0 == $1 }.count,
            vsFloat32: report === float32 ? AccuracyChange(reference: change) : AccuracyChange(change),
            logits: ErrorSummary(report.logits), modelBytes: report.modelBytes, float32Bytes: float32.modelBytes,
            seconds: report.seconds, layers: layers)
        bitsPerWeight = report.bitsPerWeight
    }
}

extension KeyedEncodingContainer {
    /// `x`, or `null` when it is not finite.
    mutating func encodeFinite(_ x: Double, forKey key: Key) throws {
        if x.isFinite { try encode(x, forKey: key) } else { try encodeNil(forKey: key) }
    }
}

extension JSONEncoder {
    /// The encoder of every Precis JSON document: sorted keys, pretty-printed.
    public static var precis: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
