import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "int8 post-training quantization: store a quantized variant, or compare schemes and calibration methods.",
        discussion: """
            Calibrates on images drawn from the training set only. With one --scheme and one --calibration, stores \
            /variants/int8-<scheme> in the file (precis eval --precision int8-<scheme> runs it). With --compare, \
            evaluates every scheme × calibration method on the test set with integer-only inference, checked \
            against a quantize-dequantize simulation in Float.
            """)

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Flag(help: "Run every scheme × calibration method and print a table sorted by accuracy.")
    var compare = false

    @Flag(help: "With one scheme and method: quantize one layer at a time (the rest in float32) and rank the layers.")
    var sensitivity = false

    @Flag(help: "Correct each quantized layer's bias for the mean output shift its quantization causes on the calibration set (reported with and without).")
    var biasCorrection = false

    @Option(help: ArgumentHelp("Keep the most sensitive layers in float32 until the simulated accuracy drop against float32 is at most this many points.",
                               valueName: "points"))
    var maxDrop: Double?

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
        if !compare && (schemes.count != 1 || methods.count != 1) {
            throw ValidationError("storing a variant needs one --scheme and one --calibration (or --compare to try them all)")
        }
    }

    func run() throws {
        try reportingErrors {
            let weights = try WeightFile.read(file)
            let dataset = try data.load(fallback: weights.dataset)
            guard dataset.imageShape == weights.spec.inputShape else {
                throw DataError(file: file, problem: "the network takes \(shapeText(weights.spec.inputShape)) images, \(dataset.name) has \(shapeText(dataset.imageShape))")
            }
            let per = dataset.imageShape.reduce(1, *), shape = weights.spec.inputShape
            var rng = RandomSource(seed: seed)
            let picked = rng.permutation(dataset.trainCount).prefix(min(calibrationSize, dataset.trainCount))
            let calibrationImages = picked.flatMap { dataset.trainImages[$0 * per..<($0 + 1) * per] }
            let net32 = try Network<Float>(spec: weights.spec, parameters: weights.tensors)
            let observers = observeActivations(net32, images: calibrationImages, count: picked.count)
            let n = min(limit ?? dataset.testCount, dataset.testCount)
            let labels = Array(dataset.testLabels[0..<n])
            func classify(_ predict: (Tensor<Float>) -> Tensor<Float>) -> (predicted: [Int], seconds: Double) {
                var predicted: [Int] = []
                let start = Date()
                for s in stride(from: 0, to: n, by: 100) {
                    let k = min(100, n - s)
                    predicted += argmaxRows(predict(Tensor(shape: [k] + shape, data: Array(dataset.testImages[s * per..<(s + k) * per]))))
                }
                return (predicted, Date().timeIntervalSince(start))
            }
            let float32 = classify { net32.predict($0) }
            let float32Bytes = 4 * net32.parameters.reduce(0) { $0 + $1.parameter.value.count }
            if !compare {
                var model = try QuantizedModel(spec: weights.spec, tensors: weights.tensors, scheme: schemes[0], observers: observers,
                                               method: methods[0], percentile: percentile)
                var uncorrected: (accuracy: Double, change: PairedChange)? = nil
                if biasCorrection {
                    let plain = try IntegerNetwork(spec: weights.spec, model: model)
                    let (p, _) = classify { plain.predict($0) }
                    uncorrected = (Double(zip(p, labels).filter { $0 == $1 }.count) / Double(n), PairedChange(predicted: p, reference: float32.predicted, labels: labels))
                    model = try FakeQuantNetwork(spec: weights.spec, model: model, tensors: weights.tensors)
                        .biasCorrected(spec: weights.spec, tensors: weights.tensors, images: calibrationImages, count: picked.count)
                }
                let integer = try IntegerNetwork(spec: weights.spec, model: model)
                let (predicted, seconds) = classify { integer.predict($0) }
                var calibrationAttributes: [(String, HDF5Attribute)] = [("calibration", .string(methods[0].rawValue)),
                                                                       ("calibration_images", .int(picked.count)), ("calibration_seed", .int(Int(seed))),
                                                                       ("calibration_source", .string("training set of \(dataset.name)"))]
                if methods[0] == .percentile { calibrationAttributes.append(("percentile", .double(percentile))) }
                calibrationAttributes.append(("bias_correction", .string(biasCorrection ? "mean output shift on the calibration set" : "none")))
                let name = try WeightFile.storeInt8(file, model: model, calibration: calibrationAttributes)
                let change = PairedChange(predicted: predicted, reference: float32.predicted, labels: labels)
                var summary: [String: Any] = ["file": file, "variant": name, "calibration": methods[0].rawValue, "calibration_images": picked.count,
                                              "accuracy": Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(n),
                                              "change_vs_float32": change.change, "differs_from_float32": change.differs, "model_bytes": model.bytes,
                                              "images_per_second": Double(n) / seconds, "bias_correction": biasCorrection]
                if let uncorrected {
                    summary["without_bias_correction"] = ["accuracy": uncorrected.accuracy, "change_vs_float32": uncorrected.change.change,
                                                          "differs_from_float32": uncorrected.change.differs]
                }
                if sensitivity || maxDrop != nil {
                    // One layer at a time in int8 (simulated), against float32's predictions and logits.
                    let exact = net32.logits(Array(dataset.testImages[0..<n * per]), count: n).data
                    var layers: [[String: Any]] = []
                    for i in model.layers.keys.sorted() {
                        let one = try FakeQuantNetwork(spec: weights.spec, model: model.only([i]), tensors: weights.tensors)
                        var logits: [Float] = []
                        let (p, _) = classify { x in
                            let y = one.predict(x)
                            logits += y.data
                            return y
                        }
                        var e = ErrorStats()
                        e.add(logits, reference: exact, minNormal: 0)
                        let c = PairedChange(predicted: p, reference: float32.predicted, labels: labels)
                        layers.append(["layer": weights.spec.layerNames[i], "change_vs_float32": c.change, "change_low": c.interval.low,
                                       "change_high": c.interval.high, "differs_from_float32": c.differs, "logit_sqnr_db": jsonNumber(e.sqnrDB),
                                       "weight_sqnr_db": jsonNumber(model.layers[i]!.weightSQNR(master: weights.tensors[weights.spec.layerNames[i] + "/W"]!))])
                    }
                    let ranked = layers.sorted {
                        ($0["change_vs_float32"] as! Double, $0["logit_sqnr_db"] as? Double ?? .infinity)
                            < ($1["change_vs_float32"] as! Double, $1["logit_sqnr_db"] as? Double ?? .infinity)
                    }
                    summary["sensitivity"] = ranked
                    if let maxDrop {
                        // Mixed precision: the most harmful layers stay in float32, one more at a time,
                        // until the simulated drop is within the budget.
                        let order = ranked.map { l in model.layers.keys.first { weights.spec.layerNames[$0] == l["layer"] as! String }! }
                        var steps: [[String: Any]] = []
                        for kept in 0...order.count {
                            let mixed = try FakeQuantNetwork(spec: weights.spec, model: model.only(Set(order.dropFirst(kept))), tensors: weights.tensors)
                            let (p, _) = classify { mixed.predict($0) }
                            let c = PairedChange(predicted: p, reference: float32.predicted, labels: labels)
                            steps.append(["float_layers": order.prefix(kept).map { weights.spec.layerNames[$0] }, "change_vs_float32": c.change,
                                          "differs_from_float32": c.differs, "model_bytes": mixed.modelBytes])
                            if -100 * c.change <= maxDrop { break }
                        }
                        // With every layer in float32 the change is 0, so the last step is always within budget.
                        summary["mixed_precision"] = ["max_drop": maxDrop, "steps": steps]
                    }
                }
                if json { try printJSON(summary) } else {
                    print(String(format: "%@: stored /variants/%@ (%@ calibration, %d images): %@ on %d test images, %+.2f points against float32, %d differ; %d bytes",
                                 file, name, methods[0].rawValue, picked.count, percent(summary["accuracy"] as! Double), n, 100 * change.change, change.differs,
                                 model.bytes))
                    if let uncorrected {
                        print(String(format: "bias correction: %@ with (%+.2f points, %d differ), %@ without (%+.2f points, %d differ)",
                                     percent(summary["accuracy"] as! Double), 100 * change.change, change.differs, percent(uncorrected.accuracy),
                                     100 * uncorrected.change.change, uncorrected.change.differs))
                    }
                    if let mixed = summary["mixed_precision"] as? [String: Any] {
                        print(String(format: "mixed precision, drop budget %.2f points (simulated; the stored variant stays all int8):", maxDrop!))
                        for step in mixed["steps"] as! [[String: Any]] {
                            let kept = step["float_layers"] as! [String]
                            print(String(format: "  float32: %@  %+.2f points, %d differ, %d bytes", kept.isEmpty ? "none" : kept.joined(separator: ", "),
                                         100 * (step["change_vs_float32"] as! Double), step["differs_from_float32"] as! Int, step["model_bytes"] as! Int))
                        }
                    }
                    if let layers = summary["sensitivity"] as? [[String: Any]], sensitivity {
                        print("sensitivity: one layer at a time in int8 (simulated), the rest in float32; most harmful first:")
                        print("layer          change vs float32 [95% CI]  differs  logit SQNR  weight SQNR")
                        for l in layers {
                            print(String(format: "%@  %-26@ %7d  %10.1f  %11.1f", (l["layer"] as! String).padding(toLength: 13, withPad: " ", startingAt: 0),
                                         String(format: "%+.2f [%+.2f, %+.2f] pp", 100 * (l["change_vs_float32"] as! Double), 100 * (l["change_low"] as! Double),
                                                100 * (l["change_high"] as! Double)),
                                         l["differs_from_float32"] as! Int, l["logit_sqnr_db"] as? Double ?? .infinity, l["weight_sqnr_db"] as? Double ?? .infinity))
                        }
                    }
                }
                return
            }
            let progress = ProgressLine(quiet: quiet || json)
            var rows: [[String: Any]] = []
            let runs = schemes.flatMap { s in methods.map { (s, $0) } }
            for (done, (s, method)) in runs.enumerated() {
                progress.update("quantize", done: done, total: runs.count, unit: "runs", suffix: "\(s) \(method.rawValue)")
                let q = try FakeQuantNetwork(spec: weights.spec, tensors: weights.tensors, scheme: s, observers: observers, method: method,
                                             percentile: percentile)
                let (simulated, _) = classify { q.predict($0) }
                let integer = try IntegerNetwork(spec: weights.spec, model: q.model)
                let (predicted, seconds) = classify { integer.predict($0) }
                let change = PairedChange(predicted: predicted, reference: float32.predicted, labels: labels)
                let correct = zip(predicted, labels).filter { $0 == $1 }.count
                rows.append(["scheme": s.description, "calibration": method.rawValue, "accuracy": Double(correct) / Double(n), "correct": correct,
                             "change_vs_float32": change.change, "change_low": change.interval.low, "change_high": change.interval.high,
                             "differs_from_float32": change.differs, "model_bytes": q.modelBytes,
                             "model_ratio_to_float32": Double(q.modelBytes) / Double(float32Bytes), "seconds": seconds,
                             "images_per_second": Double(n) / seconds, "differs_from_fake_quant": zip(predicted, simulated).filter { $0 != $1 }.count])
            }
            // Dynamic quantization (simulated): int8 weights, each batch's activations quantized
            // with that batch's own min-max range, biases in float.
            for s in schemes where methods.contains(.minmax) {
                let q = try FakeQuantNetwork(spec: weights.spec, model: try QuantizedModel(spec: weights.spec, tensors: weights.tensors, scheme: s,
                                                                                          observers: observers, method: .minmax),
                                             tensors: weights.tensors, dynamic: true)
                let (predicted, seconds) = classify { q.predict($0) }
                let change = PairedChange(predicted: predicted, reference: float32.predicted, labels: labels)
                let correct = zip(predicted, labels).filter { $0 == $1 }.count
                rows.append(["scheme": s.description, "calibration": "dynamic", "accuracy": Double(correct) / Double(n), "correct": correct,
                             "change_vs_float32": change.change, "change_low": change.interval.low, "change_high": change.interval.high,
                             "differs_from_float32": change.differs, "model_bytes": q.modelBytes,
                             "model_ratio_to_float32": Double(q.modelBytes) / Double(float32Bytes), "seconds": seconds,
                             "images_per_second": Double(n) / seconds, "simulated": true])
            }
            progress.clear()
            rows.sort { ($0["accuracy"] as! Double, -($0["differs_from_float32"] as! Int)) > ($1["accuracy"] as! Double, -($1["differs_from_float32"] as! Int)) }
            let float32Accuracy = Double(zip(float32.predicted, labels).filter { $0 == $1 }.count) / Double(n)
            if json {
                try printJSON(["file": file, "dataset": dataset.name, "images": n, "calibration_images": picked.count, "seed": Int(seed),
                               "percentile": percentile, "float32_accuracy": float32Accuracy, "float32_images_per_second": Double(n) / float32.seconds,
                               "int8_gemm_path": int8GEMMPath, "results": rows] as [String: Any])
                return
            }
            print("\(file): \(dataset.name), \(n) test images, \(picked.count) calibration images from the training set (seed \(seed))")
            print(String(format: "float32 %@ at %.0f images/s; int8 with integer-only inference (%@), sorted by accuracy", percent(float32Accuracy),
                         Double(n) / float32.seconds, int8GEMMPath))
            print("(vs fake-quant: predictions that differ from the quantize-dequantize simulation in Float):")
            print("scheme          calibration  accuracy  change vs float32 [95% CI]  differs  vs fake-quant  model KB  ratio  images/s")
            for r in rows {
                print(String(format: "%@  %@  %8@  %-26@ %7d  %13@  %8.1f  %5.2fx  %8.0f", (r["scheme"] as! String).padding(toLength: 14, withPad: " ", startingAt: 0),
                             (r["calibration"] as! String).padding(toLength: 11, withPad: " ", startingAt: 0), percent(r["accuracy"] as! Double),
                             String(format: "%+.2f [%+.2f, %+.2f] pp", 100 * (r["change_vs_float32"] as! Double), 100 * (r["change_low"] as! Double),
                                    100 * (r["change_high"] as! Double)),
                             r["differs_from_float32"] as! Int, rightAligned((r["differs_from_fake_quant"] as? Int).map(String.init) ?? "simulated", 13),
                             Double(r["model_bytes"] as! Int) / 1024,
                             r["model_ratio_to_float32"] as! Double, r["images_per_second"] as! Double))
            }
            if rows.contains(where: { $0["calibration"] as! String == "dynamic" }) {
                print("dynamic: int8 weights, each batch's activations quantized with that batch's min-max range, float biases;")
                print("simulated in Float (quantize-dequantize), so its images/s are the simulation's, not an integer path's")
            }
        }
    }
}

/// `text` padded on the left to `width` characters.
private func rightAligned(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
