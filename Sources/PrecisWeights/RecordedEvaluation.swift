import Foundation
import PrecisCore

/// One row of the precision report as `/evaluations/<precision>` stores it: the result, the data
/// set and input scale it was measured with, and when. The attribute names are the file format's
/// (see the Weight File Format article); this type is the one place that knows them.
public struct RecordedEvaluation: Equatable, Sendable {
    public var result: ModeResult
    public var dataset: String
    public var inputScale: Double
    /// ISO 8601.
    public var recordedAt: String
    /// The predicted class of every image (dataset `predicted`), when recorded.
    public var predictions: [Int]?
    /// The index in the test split of every image (dataset `test_index`); nil for the whole split
    /// in file order.
    public var testIndices: [Int]?
    /// The SHA-256 of the weights the row ran with (attribute `weights_digest`, see
    /// `WeightStore.weightsDigest`); nil in records written before it was kept.
    public var weightsDigest: String?

    public init(
        result: ModeResult, dataset: String, inputScale: Double, recordedAt: String, predictions: [Int]? = nil,
        testIndices: [Int]? = nil
    ) {
        (self.result, self.dataset, self.inputScale, self.recordedAt) = (result, dataset, inputScale, recordedAt)
        (self.predictions, self.testIndices) = (predictions, testIndices)
    }

    /// Each recorded image's prediction, by its index in the test split.
    public var predictionsByTestIndex: [Int: Int] {
        guard let predictions else { return [:] }
        let indices = testIndices ?? Array(predictions.indices)
        return Dictionary(zip(indices, predictions)) { first, _ in first }
    }

    /// The summary attributes holding integers, and those holding numbers, with their values.
    private var ints: [(String, Int)] {
        let r = result
        return [
            ("images", r.images), ("correct", r.correct), ("differs_from_float32", r.vsFloat32.differs),
            ("gained", r.vsFloat32.gained), ("lost", r.vsFloat32.lost), ("unanswered", r.vsFloat32.unanswered),
            ("model_bytes", r.modelBytes),
        ]
    }

    private var doubles: [(String, Double)] {
        let r = result, c = r.vsFloat32
        return [
            ("accuracy", r.accuracy), ("change_vs_float32", c.changePP / 100), ("change_low", c.ci95LowPP / 100),
            ("change_high", c.ci95HighPP / 100), ("agreement", c.agreement),
            ("model_ratio_to_float32", r.modelRatioToFloat32),
            ("seconds", r.seconds), ("images_per_second", r.imagesPerSecond), ("input_scale", inputScale),
            ("logit_max_abs_error", r.logits.maxAbsError), ("logit_mean_abs_error", r.logits.meanAbsError),
            ("logit_sqnr_db", r.logits.sqnrDB),
        ]
    }

    /// Per-layer arrays: NaN (numbers) or 0 (counts) for folded layers, which `layer_folded` marks.
    private static let layerDoubles: [(String, WritableKeyPath<ErrorSummary, Double>)] = [
        ("layer_relative_l2", \.relativeL2), ("layer_max_abs_error", \.maxAbsError),
        ("layer_mean_abs_error", \.meanAbsError),
        ("layer_sqnr_db", \.sqnrDB),
    ]
    private static let layerInts: [(String, WritableKeyPath<ErrorSummary, Int>)] = [
        ("layer_infinities", \.infinities), ("layer_nans", \.nans), ("layer_subnormals", \.subnormals),
        ("layer_flushed_to_zero", \.flushedToZero),
    ]

    /// Writes the attributes into `g`.
    func write(into g: HDF5Group) throws {
        let r = result
        try g.setAttribute("dataset", .string(dataset))
        try g.setAttribute("weights", .string(r.weights))
        try g.setAttribute("layer_names", .string(r.layers.map(\.layer).joined(separator: " ")))
        try g.setAttribute("recorded_at", .string(recordedAt))
        for (key, value) in ints { try g.setAttribute(key, .int(value)) }
        for (key, value) in doubles { try g.setAttribute(key, .double(value)) }
        for (key, path) in Self.layerDoubles {
            try g.setAttribute(key, .doubles(r.layers.map { $0.errors?[keyPath: path] ?? .nan }))
        }
        for (key, path) in Self.layerInts {
            try g.setAttribute(key, .ints(r.layers.map { $0.errors?[keyPath: path] ?? 0 }))
        }
        if r.integer { try g.setAttribute("layer_folded", .ints(r.layers.map { $0.errors == nil ? 1 : 0 })) }
        if let bits = r.bitsPerWeight { try g.setAttribute("bits_per_weight", .double(bits)) }
        if let weightsDigest { try g.setAttribute("weights_digest", .string(weightsDigest)) }
        if let predictions { try g.write("predicted", shape: [predictions.count], predictions.map { Int32($0) }) }
        if let testIndices { try g.write("test_index", shape: [testIndices.count], testIndices.map { Int32($0) }) }
    }

    /// Reads the attributes of `g` (`/evaluations/<precision>`), checking that every one is there,
    /// and the predictions if recorded, checking that there is one per image, each a class below
    /// `classes`.
    init(group g: HDF5Group, classes: Int) throws {
        func fail(_ message: String) -> HDF5Error { HDF5Error(file: g.file.path, path: g.path, message: message) }
        func attribute(_ key: String) throws -> HDF5Attribute {
            guard let a = try g.attribute(key) else { throw fail("missing attribute \(key)") }
            return a
        }
        func int(_ key: String) throws -> Int {
            guard case .int(let v) = try attribute(key) else { throw fail("attribute \(key) must be an integer") }
            return v
        }
        func double(_ key: String) throws -> Double {
            switch try attribute(key) {
            case .double(let v): return v
            case .int(let v): return Double(v)
            default: throw fail("attribute \(key) must be a number")
            }
        }
        let names = try WeightFile.string(g, "layer_names").split(separator: " ").map(String.init)
        func array<V>(_ key: String, _ read: (HDF5Attribute) -> [V]?) throws -> [V] {
            guard let values = read(try attribute(key)), values.count == names.count else {
                throw fail("attribute \(key) must hold one value per layer (\(names.count))")
            }
            return values
        }
        func doubles(_ a: HDF5Attribute) -> [Double]? {
            switch a {
            case .doubles(let v): return v
            case .double(let v): return [v]
            default: return nil
            }
        }
        func ints(_ a: HDF5Attribute) -> [Int]? {
            switch a {
            case .ints(let v): return v
            case .int(let v): return [v]
            default: return nil
            }
        }
        let integer = try g.attribute("layer_folded") != nil
        let folded = integer ? try array("layer_folded", ints) : names.map { _ in 0 }
        var summaries = names.map { _ in ErrorSummary(ErrorStats()) }
        for (key, path) in Self.layerDoubles {
            // Files recorded before the mean error was stored per layer lack it.
            let values =
                try g.attribute(key) == nil && key == "layer_mean_abs_error"
                ? names.map { _ in Double.nan }
                : try array(key, doubles)
            for i in names.indices { summaries[i][keyPath: path] = values[i] }
        }
        for (key, path) in Self.layerInts {
            let values = try array(key, ints)
            for i in names.indices { summaries[i][keyPath: path] = values[i] }
        }
        let layers = names.indices.map { LayerError(layer: names[$0], errors: folded[$0] == 1 ? nil : summaries[$0]) }
        guard var logits = summaries.last else { throw fail("attribute layer_names names no layer") }
        logits.maxAbsError = try double("logit_max_abs_error")
        logits.meanAbsError = try double("logit_mean_abs_error")
        logits.sqnrDB = try double("logit_sqnr_db")
        let change = AccuracyChange(
            changePP: 100 * (try double("change_vs_float32")), ci95LowPP: 100 * (try double("change_low")),
            ci95HighPP: 100 * (try double("change_high")), differs: try int("differs_from_float32"),
            gained: try int("gained"), lost: try int("lost"),
            unanswered: try g.attribute("unanswered") == nil ? 0 : try int("unanswered"),
            agreement: try double("agreement"))
        let images = try int("images"), bytes = try int("model_bytes"), ratio = try double("model_ratio_to_float32")
        var result = ModeResult(
            precision: String(g.path.split(separator: "/").last ?? ""), integer: integer,
            weights: try WeightFile.string(g, "weights"), images: images, correct: try int("correct"),
            vsFloat32: change, logits: logits, modelBytes: bytes,
            float32Bytes: ratio > 0 ? Int((Double(bytes) / ratio).rounded()) : 0, seconds: try double("seconds"),
            layers: layers)
        result.modelRatioToFloat32 = ratio
        result.imagesPerSecond = try double("images_per_second")
        if try g.attribute("bits_per_weight") != nil {
            let bits = try double("bits_per_weight")
            guard bits.isFinite && bits > 0 else { throw fail("attribute bits_per_weight must be a positive number") }
            result.bitsPerWeight = bits
        }
        self.init(
            result: result, dataset: try WeightFile.string(g, "dataset"), inputScale: try double("input_scale"),
            recordedAt: (try? WeightFile.string(g, "recorded_at")) ?? "")
        func perImage(_ name: String, in range: Range<Int>, what: String) throws -> [Int]? {
            guard g.contains(name) else { return nil }
            let (shape, values) = try g.read(name, as: Int32.self)
            guard shape == [images] else { throw fail("dataset \(name) must hold one value per image (\(images))") }
            if let bad = values.first(where: { !range.contains(Int($0)) }) {
                throw fail("dataset \(name) holds \(bad), not \(what)")
            }
            return values.map(Int.init)
        }
        weightsDigest = try g.attribute("weights_digest") == nil ? nil : try WeightFile.string(g, "weights_digest")
        predictions = try perImage(
            "predicted", in: -1..<classes, what: "a class of the network's \(classes) or -1 (no answer)")
        testIndices = try perImage("test_index", in: 0..<Int(Int32.max), what: "an image index")
        if testIndices != nil && predictions == nil { throw fail("dataset test_index without predicted") }
    }
}
