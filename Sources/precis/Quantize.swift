import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "int8 post-training quantization: store a quantized variant, or compare schemes and calibration methods.",
        discussion: """
            Calibrates on images drawn from the training set only. With one --scheme and one --calibration, stores \
            /variants/int8-<scheme> in the file (precis eval --precision int8-<scheme> runs it); --max-drop stores a \
            mixed-precision variant, --dynamic a dynamic one. With --compare, evaluates every scheme × calibration \
            method (and dynamic quantization) on the test set with integer-only inference, checked against a \
            quantize-dequantize simulation in Float, and prints each layer's SQNR against float64.
            """)

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Flag(help: "Run every scheme × calibration method and print a table sorted by accuracy.")
    var compare = false

    @Flag(help: "With one scheme and method: quantize one layer at a time (the rest in float32) and rank the layers.")
    var sensitivity = false

    @Flag(help: "Correct each quantized layer's bias for the mean output shift its quantization causes on the calibration set (reported with and without).")
    var biasCorrection = false

    @Flag(help: "With one scheme: store dynamic quantization, int8-<scheme>-dynamic (int8 weights, float biases, each batch's inputs quantized with their own min-max range; no calibration).")
    var dynamic = false

    @Option(help: ArgumentHelp("Keep the most sensitive layers in float32 until the accuracy drop against float32 is at most this many points; stores the mixed variant int8-<scheme>-mixed.",
                               valueName: "points"))
    var maxDrop: Double?

    @Option(help: ArgumentHelp("With --max-drop: the precision of the layers kept in float: float32, or float16 (weights stored in IEEE half, arithmetic in float32).",
                               valueName: "precision"))
    var fallback = "float32"

    @Option(help: "Weight and activation schemes: \(QuantScheme.all.map(\.description).joined(separator: ", ")), or all (with --compare).")
    var scheme = "all"

    @Option(help: "Calibration methods: \(CalibrationMethod.allCases.map(\.rawValue).joined(separator: ", ")), or all (with --compare).")
    var calibration = "all"

    @Option(help: "Calibration images, drawn from the training set.")
    var calibrationSize = 500

    @Option(help: "The percentile of the percentile method.")
    var percentile = 99.99

    @Option(help: "Seed for drawing the calibration images.")
    var seed: UInt64 = 0

    @OptionGroup var data: DataOptions

    @Option(help: "Evaluate only the first N test images.")
    var limit: Int?

    @Flag(help: "Print the results as JSON.")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    var schemes: [QuantScheme] { scheme == "all" ? QuantScheme.all : QuantScheme.all.filter { scheme.split(separator: ",").map(String.init).contains($0.description) } }
    var methods: [CalibrationMethod] { calibration == "all" ? CalibrationMethod.allCases : calibration.split(separator: ",").compactMap { CalibrationMethod(rawValue: String($0)) } }

    func validate() throws {
        let names = Set(QuantScheme.all.map(\.description))
        if scheme != "all", let bad = scheme.split(separator: ",").first(where: { !names.contains(String($0)) }) {
            throw ValidationError("unknown scheme '\(bad)' (\(names.sorted().joined(separator: ", ")), all)")
        }
        if calibration != "all", let bad = calibration.split(separator: ",").first(where: { CalibrationMethod(rawValue: String($0)) == nil }) {
            throw ValidationError("unknown calibration '\(bad)' (\(CalibrationMethod.allCases.map(\.rawValue).joined(separator: ", ")), all)")
        }
        guard calibrationSize > 0 else { throw ValidationError("--calibration-size must be positive") }
        guard percentile > 50 && percentile <= 100 else { throw ValidationError("--percentile must be in (50, 100]") }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
        if (sensitivity || maxDrop != nil) && compare {
            throw ValidationError("--sensitivity and --max-drop take one --scheme and one --calibration, not --compare")
        }
        if let maxDrop, !(maxDrop >= 0) { throw ValidationError("--max-drop must be a number of points, 0 or more") }
        guard ["float32", "float16"].contains(fallback) else { throw ValidationError("unknown --fallback '\(fallback)' (float32, float16)") }
        if fallback != "float32" && maxDrop == nil { throw ValidationError("--fallback chooses the precision of the layers --max-drop keeps in float") }
        if dynamic && (compare || sensitivity || maxDrop != nil || biasCorrection || calibration != "all") {
            throw ValidationError("--dynamic stores one scheme without calibration: no --compare, --sensitivity, --max-drop, --bias-correction or --calibration")
        }
        if dynamic && schemes.count != 1 { throw ValidationError("--dynamic needs one --scheme") }
        if !compare && !dynamic && (schemes.count != 1 || methods.count != 1) {
            throw ValidationError("storing a variant needs one --scheme and one --calibration (or --compare to try them all)")
        }
    }

    func run() throws {
        try reportingErrors {
            let setup = try QuantizeSetup(file: file, data: data, calibrationSize: calibrationSize, seed: seed, limit: limit)
            if compare { try runCompare(setup) } else if dynamic { try storeDynamic(setup) } else { try store(setup) }
        }
    }

    /// Quantizes with one scheme and method (bias correction and mixed precision if asked),
    /// evaluates the integer path and stores the variant.
    func store(_ setup: QuantizeSetup) throws {
        let spec = setup.spec, tensors = setup.tensors
        var model = try QuantizedModel(spec: spec, tensors: tensors, scheme: schemes[0], observers: setup.observers, method: methods[0],
                                       percentile: percentile)
        var summary: [String: Any] = ["file": file, "calibration": methods[0].rawValue, "calibration_images": setup.calibrationCount,
                                      "bias_correction": biasCorrection]
        var lines: [String] = []
        if biasCorrection {
            let plain = setup.evaluate(try IntegerNetwork(spec: spec, model: model, tensors: tensors))
            model = try FakeQuantNetwork(spec: spec, model: model, tensors: tensors)
                .biasCorrected(spec: spec, tensors: tensors, images: setup.calibrationImages, count: setup.calibrationCount)
            let corrected = setup.evaluate(try IntegerNetwork(spec: spec, model: model, tensors: tensors))
            summary["without_bias_correction"] = plain.json
            lines.append(String(format: "bias correction: %@ with (%+.2f points, %d differ), %@ without (%+.2f points, %d differ)",
                                percent(corrected.accuracy), 100 * corrected.change.change, corrected.change.differs, percent(plain.accuracy),
                                100 * plain.change.change, plain.change.differs))
        }
        if sensitivity || maxDrop != nil {
            let ranked = try setup.sensitivity(model)
            summary["sensitivity"] = ranked.map(\.json)
            if sensitivity { lines += sensitivityTable(ranked) }
            if let maxDrop {
                let steps = try setup.mixedPrecision(model, order: ranked.map(\.layer), maxDrop: maxDrop, tensors: floatTensors(setup),
                                                     bytesPerValue: fallback == "float16" ? 2 : 4)
                summary["mixed_precision"] = ["max_drop": maxDrop, "steps": steps.map(\.json)] as [String: Any]
                model = model.only(Set(model.layers.keys).subtracting(steps.last!.floatLayers))
                lines.append(String(format: "mixed precision, drop budget %.2f points (simulated, most sensitive layer first):", maxDrop))
                for step in steps {
                    lines.append(String(format: "  \(fallback): %@  %+.2f points, %d differ, %d bytes",
                                        step.floatLayers.isEmpty ? "none" : step.floatLayers.map { spec.layerNames[$0] }.joined(separator: ", "),
                                        100 * step.result.change.change, step.result.change.differs, step.modelBytes))
                }
            }
        }
        let integer = try IntegerNetwork(spec: spec, model: model, tensors: try floatTensors(setup), floatBytesPerValue: fallback == "float16" ? 2 : 4)
        let result = setup.evaluate(integer)
        let floatLayers = quantizedLayers(spec).filter { model.layers[$0] == nil }.map { spec.layerNames[$0] }
        var attributes: [(String, HDF5Attribute)] = [("calibration", .string(methods[0].rawValue)), ("calibration_images", .int(setup.calibrationCount)),
                                                    ("calibration_seed", .int(Int(seed))),
                                                    ("calibration_source", .string("training set of \(setup.dataset.name)"))]
        if methods[0] == .percentile { attributes.append(("percentile", .double(percentile))) }
        attributes.append(("bias_correction", .string(biasCorrection ? "mean output shift on the calibration set" : "none")))
        let name = try WeightFile.storeInt8(file, model: model, form: maxDrop == nil ? .plain : .mixed(floatLayers: floatLayers, half: fallback == "float16"),
                                            calibration: attributes)
        summary.merge(result.json) { $1 }
        summary["variant"] = name
        summary["float_layers"] = floatLayers
        summary["fallback"] = fallback
        summary["model_bytes"] = integer.modelBytes
        if json { return try printJSON(summary) }
        print(String(format: "%@: stored /variants/%@ (%@ calibration, %d images): %@ on %d test images, %+.2f points against float32, %d differ; %d bytes",
                     file, name, methods[0].rawValue, setup.calibrationCount, percent(result.accuracy), setup.count, 100 * result.change.change,
                     result.change.differs, integer.modelBytes))
        if !floatLayers.isEmpty {
            print("kept in \(fallback) (\(fallback == "float16" ? "stored in the variant" : "from /model")): " + floatLayers.joined(separator: ", "))
        }
        lines.forEach { print($0) }
    }

    /// Stores dynamic quantization for one scheme and evaluates its integer path.
    func storeDynamic(_ setup: QuantizeSetup) throws {
        let model = try QuantizedModel(spec: setup.spec, tensors: setup.tensors, scheme: schemes[0], observers: setup.observers, method: .minmax)
        let integer = try IntegerNetwork(spec: setup.spec, model: model, tensors: setup.tensors, dynamic: true)
        let result = setup.evaluate(integer)
        let name = try WeightFile.storeInt8(file, model: model, form: .dynamic,
                                            calibration: [("calibration", .string("none: each batch's inputs quantized with their own min-max range"))])
        if json { return try printJSON(result.json.merging(["file": file, "variant": name, "model_bytes": integer.modelBytes]) { $1 }) }
        print(String(format: "%@: stored /variants/%@ (dynamic): %@ on %d test images, %+.2f points against float32, %d differ; %d bytes",
                     file, name, percent(result.accuracy), setup.count, 100 * result.change.change, result.change.differs, integer.modelBytes))
    }

    /// The master tensors as the layers kept in float use them: rounded to float16 for
    /// `--fallback float16`.
    func floatTensors(_ setup: QuantizeSetup) throws -> [String: Tensor<Double>] {
        fallback == "float16" ? setup.tensors.mapValues { $0.converted(to: Float16.self).converted(to: Double.self) } : setup.tensors
    }

    func sensitivityTable(_ ranked: [LayerSensitivity]) -> [String] {
        ["sensitivity: one layer at a time in int8 (simulated), the rest in float32; most harmful first:",
         "layer          change vs float32 [95% CI]  differs  logit SQNR  weight SQNR"]
            + ranked.map { l in
                String(format: "%@  %-26@ %7d  %@  %@", l.name.padding(toLength: 13, withPad: " ", startingAt: 0), changeText(l.change),
                       l.change.differs, rightAligned(decibels(l.logits.sqnrDB), 10), rightAligned(decibels(l.weightSQNR), 11))
            }
    }
}

/// `text` padded on the left to `width` characters (`%10@` does not pad on Linux).
func rightAligned(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }

/// A change against float32 with its 95% interval, in points: `+0.02 [-0.03, +0.07] pp`.
func changeText(_ c: PairedChange) -> String {
    String(format: "%+.2f [%+.2f, %+.2f] pp", 100 * c.change, 100 * c.interval.low, 100 * c.interval.high)
}

/// One network's predictions on the test set against float32's.
struct QuantizeResult {
    let predicted: [Int]
    let accuracy: Double
    let change: PairedChange
    let seconds: Double

    var json: [String: Any] {
        ["accuracy": accuracy, "change_vs_float32": change.change, "change_low": change.interval.low, "change_high": change.interval.high,
         "differs_from_float32": change.differs, "images_per_second": Double(predicted.count) / seconds]
    }
}

/// What one layer alone in int8 does to the network.
struct LayerSensitivity {
    let layer: Int, name: String
    let change: PairedChange
    /// The logits' errors against float64's.
    let logits: ErrorStats
    let weightSQNR: Double

    var json: [String: Any] {
        ["layer": name, "change_vs_float32": change.change, "change_low": change.interval.low, "change_high": change.interval.high,
         "differs_from_float32": change.differs, "logit_sqnr_db": jsonNumber(logits.sqnrDB), "weight_sqnr_db": jsonNumber(weightSQNR)]
    }
}

/// One step of the mixed-precision search: these layers in float32, the rest in int8 (simulated).
struct MixedStep {
    let floatLayers: [Int], names: [String]
    let result: QuantizeResult
    let modelBytes: Int

    var json: [String: Any] {
        ["float_layers": names, "change_vs_float32": result.change.change, "differs_from_float32": result.change.differs, "model_bytes": modelBytes]
    }
}

/// What every quantize run shares: the network, the calibration images (from the training set)
/// and their observers, the test images and float32's predictions on them.
struct QuantizeSetup {
    let file: String
    let spec: ModelSpec
    let tensors: [String: Tensor<Double>]
    let dataset: Dataset
    let calibrationImages: [Float], calibrationCount: Int
    let observers: [Int: Observer]
    /// Test images used, and their values and labels.
    let count: Int, images: [Float], labels: [Int]
    let net32: Network<Float>
    let float32: QuantizeResult

    init(file: String, data: DataOptions, calibrationSize: Int, seed: UInt64, limit: Int?) throws {
        let weights = try WeightFile.read(file), dataset = try data.load(fallback: weights.dataset)
        self.dataset = dataset
        guard dataset.imageShape == weights.spec.inputShape else {
            throw DataError(file: file, problem: "the network takes \(shapeText(weights.spec.inputShape)) images, \(dataset.name) has \(shapeText(dataset.imageShape))")
        }
        (self.file, spec, tensors) = (file, weights.spec, weights.tensors)
        let per = dataset.imageShape.reduce(1, *)
        (calibrationImages, calibrationCount) = drawCalibrationImages(dataset, count: calibrationSize, seed: seed)
        let net32 = try Network<Float>(spec: weights.spec, parameters: weights.tensors)
        self.net32 = net32
        observers = observeActivations(net32, images: calibrationImages, count: calibrationCount)
        let count = min(limit ?? dataset.testCount, dataset.testCount), images = Array(dataset.testImages[0..<count * per])
        (self.count, self.images) = (count, images)
        let labels = Array(dataset.testLabels[0..<count])
        self.labels = labels
        let (predicted, seconds) = Self.classify(images, count: count, shape: weights.spec.inputShape) { net32.predict($0) }
        let accuracy = Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(count)
        float32 = QuantizeResult(predicted: predicted, accuracy: accuracy, change: PairedChange(predicted: predicted, reference: predicted, labels: labels),
                                 seconds: seconds)
    }

    /// The predictions of `predict` on `count` images, in batches of 100, and the seconds taken.
    static func classify(_ images: [Float], count: Int, shape: [Int], _ predict: (Tensor<Float>) -> Tensor<Float>) -> ([Int], Double) {
        let per = shape.reduce(1, *)
        var predicted: [Int] = []
        let seconds = timed {
            for s in stride(from: 0, to: count, by: 100) {
                let k = min(100, count - s)
                predicted += argmaxRows(predict(Tensor(shape: [k] + shape, data: Array(images[s * per..<(s + k) * per]))))
            }
        }
        return (predicted, seconds)
    }

    /// `predict`'s accuracy and change against float32 on the test images.
    func evaluate(_ predict: (Tensor<Float>) -> Tensor<Float>) -> QuantizeResult {
        let (predicted, seconds) = Self.classify(images, count: count, shape: spec.inputShape, predict)
        return QuantizeResult(predicted: predicted, accuracy: Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(count),
                              change: PairedChange(predicted: predicted, reference: float32.predicted, labels: labels), seconds: seconds)
    }

    func evaluate(_ network: IntegerNetwork) -> QuantizeResult { evaluate { network.predict($0) } }

    /// Each quantized layer of `model` alone in int8 (simulated), the rest in float32: ranked by
    /// accuracy change, then by logit SQNR against float64, most harmful first.
    func sensitivity(_ model: QuantizedModel) throws -> [LayerSensitivity] {
        try explainInt8Layers(spec: spec, model: model, tensors: tensors, dynamic: false, reference: try Network<Double>(spec: spec, parameters: tensors),
                              images: images, labels: labels, float32Predicted: float32.predicted)
            .map { e in
                let i = spec.layerNames.firstIndex(of: e.layer)!
                return LayerSensitivity(layer: i, name: e.layer, change: e.change, logits: e.logits,
                                        weightSQNR: model.layers[i]!.weightSQNR(master: tensors[e.layer + "/W"]!))
            }
            .sorted { ($0.change.change, $0.logits.sqnrDB) < ($1.change.change, $1.logits.sqnrDB) }
    }

    /// Mixed precision: the layers of `order` (most harmful first) stay in float (their values
    /// from `tensors`, `bytesPerValue` bytes each) one more at a time until the simulated drop
    /// against float32 is at most `maxDrop` points. With every layer in float32 the change is 0, so
    /// the last step is always within the budget; in float16 it stops there too.
    func mixedPrecision(_ model: QuantizedModel, order: [Int], maxDrop: Double, tensors floats: [String: Tensor<Double>],
                        bytesPerValue: Int) throws -> [MixedStep] {
        var steps: [MixedStep] = []
        for kept in 0...order.count {
            let quantized = model.only(Set(order.dropFirst(kept)))
            let mixed = try FakeQuantNetwork(spec: spec, model: quantized, tensors: floats)
            let floatLayers = Array(order.prefix(kept)), names = floatLayers.map { spec.layerNames[$0] }
            let values = floats.filter { names.contains(String($0.key.split(separator: "/")[0])) }.values.reduce(0) { $0 + $1.count }
            steps.append(MixedStep(floatLayers: floatLayers, names: names, result: evaluate { mixed.predict($0) },
                                   modelBytes: quantized.bytes + bytesPerValue * values))
            if -100 * steps.last!.result.change.change <= maxDrop { break }
        }
        return steps
    }
}

/// `count` images drawn from the training set of `dataset` with `seed` (row-major), and how many.
func drawCalibrationImages(_ dataset: Dataset, count: Int, seed: UInt64) -> ([Float], Int) {
    let per = dataset.imageShape.reduce(1, *)
    var rng = RandomSource(seed: seed)
    let picked = rng.permutation(dataset.trainCount).prefix(min(count, dataset.trainCount))
    return (picked.flatMap { dataset.trainImages[$0 * per..<($0 + 1) * per] }, picked.count)
}
