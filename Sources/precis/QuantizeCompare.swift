import Foundation
import PrecisCore

/// One row of `quantize --compare`: a scheme and calibration run by the integer path, and by the
/// simulation it is checked against.
private struct CompareRun {
    let scheme: QuantScheme
    /// The calibration method, `dynamic`, or a method with `+bc` for bias correction.
    let calibration: String
    let integer: ModeReport, simulated: ModeReport
}

extension Quantize {
    /// Every scheme × calibration method (with bias correction if asked, and dynamic quantization
    /// with min-max), run side by side over the test set against float64 (per-layer errors) and
    /// float32 (predictions): a table sorted by accuracy, then per-layer SQNR.
    func runCompare(_ setup: QuantizeSetup) throws {
        let spec = setup.spec, tensors = setup.tensors, depth = spec.layers.count
        var runs: [CompareRun] = []
        func add(_ s: QuantScheme, _ calibration: String, _ model: QuantizedModel, dynamic: Bool = false) throws {
            let integer = try IntegerNetwork(spec: spec, model: model, tensors: tensors, dynamic: dynamic)
            let fake = try FakeQuantNetwork(spec: spec, model: model, tensors: tensors, dynamic: dynamic)
            runs.append(CompareRun(scheme: s, calibration: calibration,
                                   integer: ModeReport(name: "\(s) \(calibration)", depth: depth, modelBytes: integer.modelBytes,
                                                       forward: integer.forwardAll, predict: integer.predict),
                                   simulated: ModeReport(name: "fake-quant", depth: depth, modelBytes: fake.modelBytes,
                                                         forward: { _ in [Tensor<Float>?](repeating: nil, count: depth + 1) }, predict: fake.predict)))
        }
        let progress = ProgressLine(quiet: quiet || json)
        let configurations = schemes.flatMap { s in methods.map { (s, $0) } }
        for (done, (s, method)) in configurations.enumerated() {
            progress.update("calibrate", done: done, total: configurations.count, unit: "runs", suffix: "\(s) \(method.rawValue)")
            let model = try QuantizedModel(spec: spec, tensors: tensors, scheme: s, observers: setup.observers, method: method, percentile: percentile)
            try add(s, method.rawValue, model)
            if biasCorrection {
                try add(s, method.rawValue + "+bc", try FakeQuantNetwork(spec: spec, model: model, tensors: tensors)
                    .biasCorrected(spec: spec, tensors: tensors, images: setup.calibrationImages, count: setup.calibrationCount))
            }
        }
        // Dynamic quantization: int8 weights, each batch's activations quantized with that batch's
        // own min-max range, float biases.
        for s in schemes where methods.contains(.minmax) {
            try add(s, "dynamic", try QuantizedModel(spec: spec, tensors: tensors, scheme: s, observers: setup.observers, method: .minmax), dynamic: true)
        }
        let float32 = ModeReport(.float32, setup.net32)
        runPrecisionReport(reference: try Network<Double>(spec: spec, parameters: tensors), [float32] + runs.flatMap { [$0.integer, $0.simulated] },
                           images: setup.images, count: setup.count) { done in
            progress.update("quantize", done: done, total: setup.count, unit: "img", suffix: "\(runs.count) runs side by side")
        }
        progress.clear()

        // Per-layer columns: each quantized layer at the output the integer path leaves after it.
        let stages = try IntegerNetwork(spec: spec, model: try QuantizedModel(spec: spec, tensors: tensors, scheme: QuantScheme.all[0],
                                                                               observers: setup.observers, method: .minmax), tensors: tensors).stages
        let weightSQNR = Dictionary(uniqueKeysWithValues: QuantScheme.Weights.allCases.map { w in
            (w, stages.map { st in
                (try? QuantizedModel(spec: spec, tensors: tensors, scheme: QuantScheme(weights: w, activations: .int8Symmetric), observers: [:],
                                     method: .minmax))?.layers[st.layer]?.weightSQNR(master: tensors[spec.layerNames[st.layer] + "/W"]!) ?? .nan
            })
        })
        let labels = setup.labels, n = setup.count
        var rows: [[String: Any]] = runs.map { run in
            let r = run.integer, change = PairedChange(predicted: r.predicted, reference: float32.predicted, labels: labels)
            let correct = zip(r.predicted, labels).filter { $0 == $1 }.count
            return ["scheme": run.scheme.description, "calibration": run.calibration, "accuracy": Double(correct) / Double(n), "correct": correct,
                    "change_vs_float32": change.change, "change_low": change.interval.low, "change_high": change.interval.high,
                    "differs_from_float32": change.differs, "model_bytes": r.modelBytes,
                    "model_ratio_to_float32": Double(r.modelBytes) / Double(float32.modelBytes), "seconds": r.seconds,
                    "images_per_second": Double(n) / r.seconds, "logit_sqnr_db": jsonNumber(r.logits.sqnrDB),
                    "differs_from_fake_quant": zip(r.predicted, run.simulated.predicted).filter { $0 != $1 }.count,
                    "layers": stages.enumerated().map { k, st in
                        ["layer": spec.layerNames[st.layer], "output_of": spec.layerNames[st.output], "sqnr_db": jsonNumber(r.layers[st.output].sqnrDB),
                         "relative_l2": jsonNumber(r.layers[st.output].relativeL2), "max_abs_error": jsonNumber(r.layers[st.output].maxAbsolute),
                         "weight_sqnr_db": jsonNumber(weightSQNR[run.scheme.weights]![k])] as [String: Any]
                    }]
        }
        rows.sort { ($0["accuracy"] as! Double, -($0["differs_from_float32"] as! Int)) > ($1["accuracy"] as! Double, -($1["differs_from_float32"] as! Int)) }
        let float32Accuracy = Double(zip(float32.predicted, labels).filter { $0 == $1 }.count) / Double(n)
        // The answer to "which scheme?": the run that changes the fewest predictions (then the most
        // accurate, then the smallest), and the command that stores it.
        func key(_ r: [String: Any]) -> (Int, Double, Int) { (r["differs_from_float32"] as! Int, -(r["accuracy"] as! Double), r["model_bytes"] as! Int) }
        let best = rows.min { key($0) < key($1) }!
        let calibrationName = best["calibration"] as! String
        let storeCommand = "precis quantize \(file) --scheme \(best["scheme"] as! String) "
            + (calibrationName == "dynamic" ? "--dynamic" : calibrationName.hasSuffix("+bc")
                ? "--calibration \(calibrationName.dropLast(3)) --bias-correction" : "--calibration \(calibrationName)")
        if json {
            return try printJSON(["file": file, "dataset": setup.dataset.name, "images": n, "calibration_images": setup.calibrationCount, "seed": Int(seed),
                                  "percentile": percentile, "float32_accuracy": float32Accuracy, "float32_images_per_second": Double(n) / float32.seconds,
                                  "int8_gemm_path": int8GEMMPath, "results": rows,
                                  "recommended": ["scheme": best["scheme"]!, "calibration": calibrationName, "store_command": storeCommand]] as [String: Any])
        }
        print("\(file): \(setup.dataset.name), \(n) test images, \(setup.calibrationCount) calibration images from the training set (seed \(seed))")
        print(String(format: "float32 %@ at %.0f images/s; int8 with integer-only inference (%@), sorted by accuracy", percent(float32Accuracy),
                     Double(n) / float32.seconds, int8GEMMPath))
        print("(vs fake-quant: predictions that differ from the quantize-dequantize simulation in Float):")
        print("scheme          calibration    accuracy  change vs float32 [95% CI]  differs  vs fake-quant  logit SQNR  model KB  ratio  images/s")
        for r in rows {
            print(String(format: "%@  %@  %8@  %-26@ %7d  %13d  %10@  %8.1f  %5.2fx  %8.0f", (r["scheme"] as! String).padding(toLength: 14, withPad: " ", startingAt: 0),
                         (r["calibration"] as! String).padding(toLength: 13, withPad: " ", startingAt: 0), percent(r["accuracy"] as! Double),
                         String(format: "%+.2f [%+.2f, %+.2f] pp", 100 * (r["change_vs_float32"] as! Double), 100 * (r["change_low"] as! Double),
                                100 * (r["change_high"] as! Double)),
                         r["differs_from_float32"] as! Int, r["differs_from_fake_quant"] as! Int, decibels(number(r["logit_sqnr_db"]!)),
                         Double(r["model_bytes"] as! Int) / 1024, r["model_ratio_to_float32"] as! Double, r["images_per_second"] as! Double))
        }
        if rows.contains(where: { $0["calibration"] as! String == "dynamic" }) {
            print("dynamic: int8 weights, each batch's activations quantized with that batch's min-max range, float biases")
        }
        if biasCorrection { print("+bc: biases corrected for the mean output shift of each quantized layer on the calibration set") }
        let names = stages.map { String(spec.layerNames[$0.layer].drop { $0 != "_" }.dropFirst()) }
        let header = "scheme          calibration  " + names.map { rightAligned($0, 8) }.joined()
        print("\nper layer: SQNR in dB against float64 of each quantized layer's output (after the ReLU, pooling and dropout folded into it):")
        print(header)
        for r in rows {
            let layers = r["layers"] as! [[String: Any]]
            print((r["scheme"] as! String).padding(toLength: 14, withPad: " ", startingAt: 0) + "  " +
                  (r["calibration"] as! String).padding(toLength: 13, withPad: " ", startingAt: 0) +
                  layers.map { rightAligned(decibels(number($0["sqnr_db"]!)), 8) }.joined())
        }
        print("weight SQNR in dB (int8 codes against the float weights):")
        for w in QuantScheme.Weights.allCases {
            print("w\(w.rawValue)".padding(toLength: 29, withPad: " ", startingAt: 0) + weightSQNR[w]!.map { rightAligned(decibels($0), 8) }.joined())
        }
        let low = best["change_low"] as! Double, high = best["change_high"] as! Double
        print(String(format: "\nfewest changed predictions: %@ %@, %@ (%+.2f points [%+.2f, %+.2f], %@), %d of %d differ from float32, %.1f KB, %.0f images/s",
                     best["scheme"] as! String, calibrationName, percent(best["accuracy"] as! Double), 100 * (best["change_vs_float32"] as! Double),
                     100 * low, 100 * high, low <= 0 && high >= 0 ? "no change beyond noise" : high < 0 ? "a loss beyond noise" : "a gain beyond noise",
                     best["differs_from_float32"] as! Int, n, Double(best["model_bytes"] as! Int) / 1024, best["images_per_second"] as! Double))
        print("store it: \(storeCommand)")
    }
}

/// A JSON number back as a Double ("inf" and "-inf" as ±∞).
private func number(_ x: Any) -> Double { x as? Double ?? ((x as? String) == "inf" ? .infinity : -.infinity) }
