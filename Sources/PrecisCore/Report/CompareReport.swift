import Foundation

/// One quantized layer's output in one `quantize --compare` run, at the output the integer path
/// leaves after it (after the ReLU, pooling and dropout folded into it).
public struct StageError: Codable, Equatable, Sendable {
    public var layer: String
    /// The last layer folded into this one's requantization.
    public var outputOf: String
    public var errors: ErrorSummary
    /// The int8 weights' SQNR against the float weights, in dB.
    public var weightSQNRDB: Double

    private enum CodingKeys: String, CodingKey {
        case layer, outputOf = "output_of", errors, weightSQNRDB = "weight_sqnr_db"
    }
}

/// One scheme and calibration run by the integer path in `quantize --compare`.
public struct CompareRun: Codable, Equatable, Sendable {
    public var scheme: String
    /// A calibration method, `dynamic`, or a method with `+bc` for bias correction.
    public var calibration: String
    public var images: Int, correct: Int
    /// correct / images (0...1).
    public var accuracy: Double
    public var vsFloat32: AccuracyChange
    /// Predictions that differ from the quantize-dequantize simulation in Float.
    public var differsFromFakeQuant: Int
    public var logits: ErrorSummary
    public var modelBytes: Int
    public var modelRatioToFloat32: Double
    public var seconds: Double, imagesPerSecond: Double
    public var layers: [StageError]
    /// McNemar's p-value for the change against float32.
    public var pValue: Double?
    /// Whether the change is beyond noise once Holm's correction for every run of the table is made.
    public var beyondNoiseHolm: Bool?
    /// The smallest change, in points, the test images detect for this run (5% level, power 0.8).
    public var detectablePP: Double?
    /// With `--bootstrap K`: the 95% percentile interval of the accuracy, in points of change against
    /// float32, over K resamples of the calibration images.
    public var bootstrap: BootstrapInterval?

    private enum CodingKeys: String, CodingKey {
        case scheme, calibration, images, correct, accuracy, vsFloat32 = "vs_float32", differsFromFakeQuant =
            "differs_from_fake_quant"
        case logits, modelBytes = "model_bytes", modelRatioToFloat32 = "model_ratio_to_float32", seconds
        case imagesPerSecond = "images_per_second", layers, pValue = "p_value", beyondNoiseHolm = "beyond_noise_holm"
        case detectablePP = "detectable_pp", bootstrap
    }

    /// The `precis quantize` options that store this run.
    public var storeOptions: String {
        if calibration == "dynamic" { return "--scheme \(scheme) --dynamic" }
        if calibration.hasSuffix("+bc") {
            return "--scheme \(scheme) --calibration \(calibration.dropLast(3)) --bias-correction"
        }
        return "--scheme \(scheme) --calibration \(calibration)"
    }
}

/// How a run's accuracy moves when its calibration images are drawn again.
public struct BootstrapInterval: Codable, Equatable, Sendable {
    /// Resamples of the calibration images, each as many as the set, drawn with replacement.
    public var resamples: Int
    /// The 95% percentile interval of the change against float32, in points.
    public var lowPP: Double, highPP: Double

    private enum CodingKeys: String, CodingKey { case resamples, lowPP = "low_pp", highPP = "high_pp" }
}

/// `quantize --compare`: every scheme × calibration method on the test set, with integer-only
/// inference checked against its simulation, sorted by accuracy (then fewer changed predictions).
public struct CompareReport: Codable, Equatable, Sendable {
    /// ``ReportSchema/compare``.
    public var schema = ReportSchema.compare
    public var file: String, dataset: String
    public var images: Int, calibrationImages: Int, seed: Int
    /// Which test images, as ``ImageSelection/text(of:noun:)`` names them.
    public var sample: String
    public var percentile: Double
    public var float32Accuracy: Double, float32ImagesPerSecond: Double
    /// The int8 GEMM kernel used (`avx512-vnni` or `portable`).
    public var int8GemmPath: String
    public var runs: [CompareRun]
    /// Weight SQNR in dB per weight scheme (`tensor`, `channel`), one per quantized layer.
    public var weightSQNRDB: [String: [Double]]
    /// The run that changes the fewest predictions (then the most accurate, then the smallest).
    public var recommended: CompareRun?

    private enum CodingKeys: String, CodingKey {
        case schema, file, dataset, images, calibrationImages = "calibration_images", seed, percentile, sample
        case float32Accuracy = "float32_accuracy", float32ImagesPerSecond = "float32_images_per_second"
        case int8GemmPath = "int8_gemm_path", runs, weightSQNRDB = "weight_sqnr_db", recommended
    }
}

/// Every scheme × method of `study` (with bias-corrected runs when asked, and dynamic quantization
/// where `methods` holds min-max), run side by side over the test set against float64 (per-layer
/// errors) and float32 (predictions). `progress` gets a stage name, work done and total.
public func compareSchemes(
    _ study: QuantizationStudy, file: String, dataset: String, schemes: [QuantScheme],
    methods: [CalibrationMethod], percentile: Double, seed: UInt64, biasCorrection: Bool, bootstrap: Int = 0,
    progress: (String, Int, Int) -> Void = { _, _, _ in }
) throws -> CompareReport {
    let spec = study.spec, tensors = study.tensors, depth = spec.layers.count
    var runs: [(scheme: QuantScheme, calibration: String, integer: ModeReport, simulated: ModeReport)] = []
    func add(_ s: QuantScheme, _ calibration: String, _ model: QuantizedModel) throws {
        let integer = try IntegerNetwork(spec: spec, model: model, tensors: tensors)
        let fake = try FakeQuantNetwork(spec: spec, model: model, tensors: tensors)
        let none = [Tensor<Float>?](repeating: nil, count: depth + 1)
        runs.append(
            (
                s, calibration,
                ModeReport(
                    name: "\(s) \(calibration)", depth: depth, modelBytes: integer.modelBytes,
                    forward: integer.forwardAll,
                    predict: integer.predict),
                ModeReport(
                    name: "fake-quant", depth: depth, modelBytes: fake.modelBytes, forward: { _ in none },
                    predict: fake.predict)
            ))
    }
    let configurations = schemes.flatMap { s in methods.map { (s, $0) } }
    for (done, (s, method)) in configurations.enumerated() {
        progress("calibrate", done, configurations.count)
        try add(s, method.rawValue, try study.quantize(s, method, percentile: percentile))
        if biasCorrection {
            try add(
                s, method.rawValue + "+bc", try study.quantize(s, method, percentile: percentile, biasCorrection: true))
        }
    }
    for s in schemes where methods.contains(.minmax) {
        var dynamic = try study.quantize(s, .minmax)
        dynamic.form = .dynamic
        try add(s, "dynamic", dynamic)
    }
    let float32 = ModeReport(.float32, study.float32Network)
    runPrecisionReport(
        reference: try Network<Double>(spec: spec, parameters: tensors),
        [float32] + runs.flatMap { [$0.integer, $0.simulated] },
        images: study.test.images, count: study.test.count
    ) { progress("quantize", $0, study.test.count) }

    // Per-layer columns: each quantized layer at the output the integer path leaves after it.
    let stages = try IntegerNetwork(
        spec: spec, model: try study.quantize(QuantScheme.all[0], .minmax), tensors: tensors
    ).stages
    var weightSQNR: [QuantScheme.Weights: [Double]] = [:]
    for w in QuantScheme.Weights.allCases {
        let model = try QuantizedModel(
            spec: spec, tensors: tensors, scheme: QuantScheme(weights: w, activations: .int8Symmetric),
            observers: [:], method: .minmax)
        let sqnr = try model.weightSQNR(spec: spec, tensors: tensors)
        weightSQNR[w] = stages.map { sqnr[$0.layer] ?? .nan }
    }
    let labels = study.test.labels
    var rows: [CompareRun] = runs.map { run in
        let r = run.integer, change = PairedChange(predicted: r.predicted, reference: float32.predicted, labels: labels)
        let layers = stages.enumerated().map { k, st in
            StageError(
                layer: spec.layerNames[st.layer], outputOf: spec.layerNames[st.output],
                errors: ErrorSummary(r.layers[st.output]),
                weightSQNRDB: weightSQNR[run.scheme.weights]?[k] ?? .nan)
        }
        return CompareRun(
            scheme: run.scheme.description, calibration: run.calibration, images: labels.count,
            correct: zip(r.predicted, labels).filter { $0 == $1 }.count,
            accuracy: Double(zip(r.predicted, labels).filter { $0 == $1 }.count) / Double(max(labels.count, 1)),
            vsFloat32: AccuracyChange(change),
            differsFromFakeQuant: zip(r.predicted, run.simulated.predicted).filter { $0 != $1 }.count,
            logits: ErrorSummary(r.logits), modelBytes: r.modelBytes,
            modelRatioToFloat32: Double(r.modelBytes) / Double(max(float32.modelBytes, 1)), seconds: r.seconds,
            imagesPerSecond: r.seconds > 0 ? Double(labels.count) / r.seconds : 0, layers: layers)
    }
    let p = rows.map { Significance.mcnemarP(gained: $0.vsFloat32.gained, lost: $0.vsFloat32.lost) }
    for (k, beyond) in Significance.holm(p).enumerated() {
        let change = rows[k].vsFloat32
        rows[k].pValue = p[k]
        rows[k].beyondNoiseHolm = beyond
        rows[k].detectablePP =
            100 * Significance.detectableChange(discordant: change.gained + change.lost, images: labels.count)
    }
    if bootstrap > 0 {
        let intervals = try bootstrapIntervals(
            study, configurations: configurations, percentile: percentile, seed: seed, biasCorrection: biasCorrection,
            resamples: bootstrap
        ) { progress("bootstrap", $0, bootstrap) }
        for k in rows.indices { rows[k].bootstrap = intervals[rows[k].scheme + " " + rows[k].calibration] }
    }
    rows.sort { ($0.accuracy, -$0.vsFloat32.differs) > ($1.accuracy, -$1.vsFloat32.differs) }
    let recommended = rows.min {
        ($0.vsFloat32.differs, -$0.accuracy, $0.modelBytes) < ($1.vsFloat32.differs, -$1.accuracy, $1.modelBytes)
    }
    return CompareReport(
        file: file, dataset: dataset, images: labels.count, calibrationImages: study.calibrationCount, seed: Int(seed),
        sample: study.selectionText,
        percentile: percentile, float32Accuracy: study.float32.accuracy,
        float32ImagesPerSecond: float32.seconds > 0 ? Double(labels.count) / float32.seconds : 0,
        int8GemmPath: int8GEMMPath, runs: rows,
        weightSQNRDB: Dictionary(uniqueKeysWithValues: weightSQNR.map { ($0.key.rawValue, $0.value) }),
        recommended: recommended)
}

/// Each calibrated run's interval over `resamples` resamples of the study's calibration images (seeds
/// `seed + 1, seed + 2, ...`), by `"<scheme> <calibration>"`: every configuration quantized again on
/// each resample and run by the integer path on the test images.
func bootstrapIntervals(
    _ study: QuantizationStudy, configurations: [(QuantScheme, CalibrationMethod)], percentile: Double,
    seed: UInt64, biasCorrection: Bool, resamples: Int, progress: (Int) -> Void
) throws -> [String: BootstrapInterval] {
    var changes: [String: [Double]] = [:]
    for r in 0..<resamples {
        progress(r)
        let resampled = study.resampled(seed: seed &+ UInt64(r) &+ 1)
        for (s, method) in configurations {
            for bc in biasCorrection ? [false, true] : [false] {
                let model = try resampled.quantize(s, method, percentile: percentile, biasCorrection: bc)
                let result = study.evaluate(try IntegerNetwork(spec: study.spec, model: model, tensors: study.tensors))
                changes["\(s) \(method.rawValue)\(bc ? "+bc" : "")", default: []].append(result.vsFloat32.changePP)
            }
        }
    }
    return changes.mapValues { c in
        let (low, high) = Significance.percentileInterval(c)
        return BootstrapInterval(resamples: resamples, lowPP: low, highPP: high)
    }
}

extension CompareReport {
    /// The table sorted by accuracy, the per-layer SQNR table, and the recommendation.
    public var text: String {
        var out = [
            "\(file): \(dataset), \(sample), \(calibrationImages) calibration images from the training set "
                + "(seed \(seed))",
            String(
                format: "float32 %@ at %.0f images/s; int8 with integer-only inference (%@), sorted by accuracy",
                percentText(float32Accuracy), float32ImagesPerSecond, int8GemmPath),
            "(vs fake-quant: predictions that differ from the quantize-dequantize simulation in Float):",
        ]
        let resampled = runs.compactMap(\.bootstrap).first
        var table = TextTable(
            [
                ("scheme", .left), ("calibration", .left), ("accuracy", .right), ("change vs float32 [95% CI]", .left),
                ("Holm", .left), ("detectable", .right),
            ] + (resampled == nil ? [] : [("calibration resampled [95%]", .left)])
                + [
                    ("differs", .right), ("vs fake-quant", .right), ("logit SQNR dB", .right), ("model KiB", .right),
                    ("ratio", .right), ("images/s", .right),
                ])
        for r in runs {
            let holm = r.beyondNoiseHolm.map { $0 ? (r.vsFloat32.changePP < 0 ? "loss" : "gain") : "-" } ?? "?"
            let interval = r.bootstrap.map { String(format: "[%+.2f, %+.2f] pp", $0.lowPP, $0.highPP) } ?? "-"
            table.add(
                [
                    r.scheme, r.calibration, percentText(r.accuracy), r.vsFloat32.text, holm,
                    r.detectablePP.map { String(format: "%.2f pp", $0) } ?? "?",
                ] + (resampled == nil ? [] : [interval])
                    + [
                        "\(r.vsFloat32.differs)", "\(r.differsFromFakeQuant)", decibelText(r.logits.sqnrDB),
                        String(format: "%.1f", Double(r.modelBytes) / 1024),
                        String(format: "%.2fx", r.modelRatioToFloat32), String(format: "%.0f", r.imagesPerSecond),
                    ])
        }
        out += table.lines()
        out.append(
            "Holm: a loss or gain beyond noise by McNemar's test at 5% once corrected for the \(runs.count) runs "
                + "(Holm); detectable: the smallest change these test images detect for the run (5%, power 0.8)")
        if let resampled {
            out.append(
                "calibration resampled: the change over \(resampled.resamples) resamples of the calibration images "
                    + "(drawn with replacement), 95% percentile interval")
        }
        if runs.contains(where: { $0.calibration == "dynamic" }) {
            out.append(
                "dynamic: int8 weights, each batch's activations quantized with that batch's min-max range, "
                    + "float biases"
            )
        }
        if runs.contains(where: { $0.calibration.hasSuffix("+bc") }) {
            out.append("+bc: biases corrected for the mean output shift of each quantized layer on the calibration set")
        }
        let names = runs.first?.layers.map { String($0.layer.drop { $0 != "_" }.dropFirst()) } ?? []
        out += [
            "",
            "per layer: SQNR in dB against float64 of each quantized layer's output "
                + "(after the ReLU, pooling and dropout folded into it):",
        ]
        var layers = TextTable([("scheme", .left), ("calibration", .left)] + names.map { ($0, .right) })
        for r in runs { layers.add([r.scheme, r.calibration] + r.layers.map { decibelText($0.errors.sqnrDB) }) }
        for w in QuantScheme.Weights.allCases {
            layers.add(["w\(w.rawValue)", "weights"] + (weightSQNRDB[w.rawValue] ?? []).map(decibelText))
        }
        out += layers.lines()
        out.append("weights: the int8 weight codes' SQNR against the float weights, per tensor and per output channel")
        if let best = recommended {
            out.append("")
            out.append(
                String(
                    format: "fewest changed predictions: %@ %@, %@ (%+.2f points [%+.2f, %+.2f], %@), %d of %d differ "
                        + "from float32, %.1f KiB, %.0f images/s",
                    best.scheme, best.calibration, percentText(best.accuracy), best.vsFloat32.changePP,
                    best.vsFloat32.ci95LowPP,
                    best.vsFloat32.ci95HighPP, best.vsFloat32.verdict, best.vsFloat32.differs, images,
                    Double(best.modelBytes) / 1024, best.imagesPerSecond))
            out.append("store it: precis quantize \(file) \(best.storeOptions)")
        }
        return out.joined(separator: "\n")
    }
}
