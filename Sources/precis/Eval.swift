import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The precision report: a trained network in several precisions, side by side, layer by layer.",
        discussion: """
            Every mode runs the full test set against float64 (per-layer errors) and float32 (accuracy change, \
            disagreements). The same stored parameters are rounded into Network<Double>, Network<Float> and \
            Network<Float16>; a stored variant (precis export) is used for the modes it serves.
            """)

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Option(help: "Comma-separated precisions (\(PrecisionMode.allCases.map(\.rawValue).joined(separator: ", ")); int8 for the stored int8 variants or, without one, the default scheme calibrated now; int8-<scheme> for one stored variant), or all.")
    var precision = "all"

    @OptionGroup var data: DataOptions

    @Option(help: "Evaluate only the first N test images.")
    var limit: Int?

    @Option(help: ArgumentHelp("Rank the layers by what computing each alone in this precision costs.", valueName: "precision"))
    var explain: String?

    @Option(help: ArgumentHelp("Multiply the inputs by K (stress beyond the trained range).", valueName: "K"))
    var inputScale: Float = 1

    @Option(help: ArgumentHelp("Write each precision's logits to PREFIX-<precision>.f64 (little-endian float64, images × classes).",
                               valueName: "prefix"))
    var saveLogits: String?

    @Flag(help: "Store the results in the file under /evaluations/<precision>.")
    var record = false

    @Flag(help: "Print the results as JSON.")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    /// The stored int8 variants asked for (`int8-<scheme>` names), in order.
    var int8Variants: [String] { precision.split(separator: ",").map(String.init).filter { $0.hasPrefix("int8-") } }

    /// Whether `int8` was asked for: every stored int8 variant, or one calibrated now.
    var int8: Bool { precision.split(separator: ",").contains("int8") }

    /// The floating modes asked for, in order.
    var modes: [PrecisionMode] {
        (precision == "all" ? PrecisionMode.allCases.map(\.rawValue) : precision.split(separator: ",").map(String.init)).compactMap(PrecisionMode.init)
    }

    func validate() throws {
        let names = precision == "all" ? [] : precision.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard precision == "all" || !names.isEmpty else { throw ValidationError("--precision needs at least one mode") }
        let known = PrecisionMode.allCases.map(\.rawValue).joined(separator: ", ")
        if let bad = names.first(where: { PrecisionMode(rawValue: $0) == nil && !$0.hasPrefix("int8-") && $0 != "int8" }) {
            throw ValidationError("unknown precision '\(bad)' (\(known), int8, int8-<scheme> for a stored variant, all)")
        }
        if let explain, !explain.hasPrefix("int8-"), PrecisionMode(rawValue: explain) == nil || explain == "float32" {
            throw ValidationError("--explain needs a precision other than float32 (\(known), or a stored int8-<scheme>)")
        }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
        guard inputScale.isFinite && inputScale > 0 else { throw ValidationError("--input-scale must be a positive number") }
    }

    func run() throws {
        try reportingErrors {
            let weights = try WeightFile.read(file)
            let variants = try WeightFile.variants(file)
            let dataset = try data.load(fallback: weights.dataset)
            guard dataset.imageShape == weights.spec.inputShape else {
                throw DataError(file: file, problem: "the network takes \(shapeText(weights.spec.inputShape)) images, \(dataset.name) has \(shapeText(dataset.imageShape))")
            }
            let n = min(limit ?? dataset.testCount, dataset.testCount)
            let images = Array(dataset.testImages[0..<n * dataset.imageShape.reduce(1, *)])
            let labels = Array(dataset.testLabels[0..<n])
            // A stored variant holds exactly the values the mode's storage rounds to.
            func source(_ mode: PrecisionMode) -> String? {
                let name = mode == .bfloat16Acc32 ? "bfloat16" : (mode == .float16 || mode == .float16Acc32) ? "float16" : ""
                return variants.contains(name) ? name : nil
            }
            func tensors(_ mode: PrecisionMode) throws -> [String: Tensor<Double>] {
                try source(mode).map { try WeightFile.readVariant(file, spec: weights.spec, precision: $0) } ?? weights.tensors
            }
            // float32 is the reference for predictions: run it even if not asked for.
            let runModes = modes.contains(.float32) ? modes : [.float32] + modes
            let reports = try runModes.map { mode in
                let t = try tensors(mode), keep = saveLogits != nil
                switch mode {
                case .float64: return ModeReport(mode, try Network<Double>(spec: weights.spec, parameters: t), inputScale: inputScale, keepLogits: keep)
                case .float16: return ModeReport(mode, try Network<Float16>(spec: weights.spec, parameters: t), inputScale: inputScale, keepLogits: keep)
                default:
                    return ModeReport(mode, try Network<Float>(spec: weights.spec, parameters: t, storage: mode.storage), inputScale: inputScale, keepLogits: keep)
                }
            }
            // Stored int8 variants ("all" includes every one the file holds): integer-only inference.
            // `int8` is every stored int8 variant, or, when the file has none, the default scheme
            // calibrated now as `precis quantize` would (not stored).
            let stored = variants.filter { $0.hasPrefix("int8-") }
            var int8Names = precision == "all" || (int8 && !stored.isEmpty) ? stored : []
            int8Names += int8Variants.filter { !int8Names.contains($0) }
            /// The report of an int8 network, run with integer-only inference.
            func int8Report(_ name: String, _ integer: IntegerNetwork) -> ModeReport {
                ModeReport(name: name, depth: weights.spec.layers.count, modelBytes: integer.modelBytes, inputScale: inputScale,
                           keepLogits: saveLogits != nil, forward: integer.forwardAll, predict: integer.predict)
            }
            // Where each int8 report's weights came from, by name.
            var int8Sources = Dictionary(uniqueKeysWithValues: int8Names.map { ($0, "/variants/\($0)") })
            var int8Reports = try int8Names.map { name in
                let v = try WeightFile.readInt8Variant(file, spec: weights.spec, variant: name)
                return int8Report(name, try IntegerNetwork(spec: weights.spec, model: v.model, tensors: weights.tensors.merging(v.floatTensors) { $1 },
                                                           floatBytesPerValue: v.floatBytesPerValue, dynamic: v.dynamic))
            }
            var calibratedNow: String? = nil
            if int8 && stored.isEmpty {
                let scheme = Self.defaultInt8Scheme, method = Self.defaultInt8Calibration
                let (calibration, count) = drawCalibrationImages(dataset, count: 500, seed: 0)
                let net32 = try Network<Float>(spec: weights.spec, parameters: weights.tensors)
                let model = try QuantizedModel(spec: weights.spec, tensors: weights.tensors, scheme: scheme,
                                               observers: observeActivations(net32, images: calibration, count: count), method: method)
                let name = WeightFile.int8VariantName(scheme)
                calibratedNow = "calibrated now: \(method.rawValue), \(count) training images, seed 0; not stored"
                int8Sources[name] = calibratedNow
                int8Reports.append(int8Report(name, try IntegerNetwork(spec: weights.spec, model: model, tensors: weights.tensors)))
            }
            let reference = try Network<Double>(spec: weights.spec, parameters: weights.tensors)
            let progress = ProgressLine(quiet: quiet || json)
            runPrecisionReport(reference: reference, reports + int8Reports, images: images, count: n, inputScale: inputScale) { done in
                progress.update("report", done: done, total: n, unit: "img")
            }
            progress.clear()
            let float32 = reports[runModes.firstIndex(of: .float32)!]
            let float32Bytes = Double(float32.modelBytes)
            let shown = reports.filter { modes.contains($0.mode!) } + int8Reports
            var rows: [[String: Any]] = []
            for r in shown {
                let change = PairedChange(predicted: r.predicted, reference: float32.predicted, labels: labels)
                let correct = zip(r.predicted, labels).filter { $0 == $1 }.count
                rows.append([
                    "precision": r.name, "images": n, "correct": correct, "accuracy": Double(correct) / Double(n),
                    "change_vs_float32": change.change, "change_low": change.interval.low, "change_high": change.interval.high,
                    "differs_from_float32": change.differs, "agreement": change.agreement, "gained": change.gained, "lost": change.lost,
                    "logit_max_abs_error": jsonNumber(r.logits.maxAbsolute), "logit_mean_abs_error": jsonNumber(r.logits.meanAbsolute), "logit_sqnr_db": jsonNumber(r.logits.sqnrDB),
                    "model_bytes": r.modelBytes, "model_ratio_to_float32": Double(r.modelBytes) / float32Bytes,
                    "seconds": r.seconds, "images_per_second": Double(n) / r.seconds,
                    "weights": r.mode.map { source($0).map { "/variants/\($0)" } ?? "/model" } ?? int8Sources[r.name]!, "input_scale": Double(inputScale),
                    "layers": weights.spec.layerNames.indices.map { layerJSON(weights.spec.layerNames[$0], r.layers[$0], computed: r.computed[$0]) },
                    "nonfinite": r.layers.reduce(0) { $0 + $1.infinities + $1.nans },
                ])
            }
            if let saveLogits {
                for r in shown {
                    let url = URL(fileURLWithPath: "\(saveLogits)-\(r.name).f64")
                    do { try r.logitValues.withUnsafeBytes { try Data($0).write(to: url) } } catch {
                        throw DataError(file: url.path, problem: "cannot write logits: \(error.localizedDescription)")
                    }
                }
            }
            var effects: [LayerEffect] = []
            if let explain, explain.hasPrefix("int8-") {
                // One quantized layer at a time in int8 (simulated), with the stored variant's ranges.
                let v = try WeightFile.readInt8Variant(file, spec: weights.spec, variant: explain)
                let progress = ProgressLine(quiet: quiet || json)
                effects = try explainInt8Layers(spec: weights.spec, model: v.model, tensors: weights.tensors.merging(v.floatTensors) { $1 },
                                                dynamic: v.dynamic, reference: reference, images: images, labels: labels,
                                                float32Predicted: float32.predicted, inputScale: inputScale) { done, total in
                    progress.update("explain \(explain)", done: done, total: total, unit: "img")
                }
                progress.clear()
            }
            if let explain, let mode = PrecisionMode(rawValue: explain) {
                let net32 = try Network<Float>(spec: weights.spec, parameters: weights.tensors), t = try tensors(mode)
                let progress = ProgressLine(quiet: quiet || json)
                func explained<T: NetworkScalar>(_ reduced: Network<T>) -> [LayerEffect] {
                    explainLayers(float32: net32, reduced: reduced, reference: reference, images: images, labels: labels,
                                  float32Predicted: float32.predicted, inputScale: inputScale) { done in
                        progress.update("explain \(explain)", done: done, total: n, unit: "img")
                    }
                }
                switch mode {
                case .float64: effects = explained(try Network<Double>(spec: weights.spec, parameters: t))
                case .float16: effects = explained(try Network<Float16>(spec: weights.spec, parameters: t))
                default: effects = explained(try Network<Float>(spec: weights.spec, parameters: t, storage: mode.storage))
                }
                progress.clear()
            }
            if record {
                let recordedAt = ISO8601DateFormatter().string(from: Date())
                try WeightFile.record(file, results: zip(rows, shown).map { row, r in
                    (r.name, recordAttributes(row, r, layerNames: weights.spec.layerNames, dataset: dataset.name) + [("recorded_at", .string(recordedAt))])
                })
            }
            if json {
                var out: [String: Any] = ["file": file, "dataset": dataset.name, "model": weights.spec.name, "images": n,
                                          "input_scale": Double(inputScale), "results": rows]
                if let explain { out["explain"] = ["precision": explain, "layers": effects.map(effectJSON)] }
                try printJSON(out)
                return
            }
            printReport(rows, shown, layerNames: weights.spec.layerNames, dataset: dataset.name, images: n)
            if let calibratedNow, let name = int8Reports.last?.name {
                print("\n\(name): \(calibratedNow) (precis quantize \(file) --scheme \(Self.defaultInt8Scheme) --calibration \(Self.defaultInt8Calibration.rawValue) stores it)")
            }
            if let explain { printExplain(effects, mode: explain) }
            if record { print("recorded under /evaluations in \(file)") }
        }
    }

    /// One layer's errors for JSON; a layer folded into an integer requantization has none.
    /// What `--precision int8` calibrates when the file stores no int8 variant: on the shipped
    /// network, the scheme and method that change the fewest predictions (`quantize --compare`).
    static let defaultInt8Scheme = QuantScheme(weights: .perChannel, activations: .uint8Asymmetric)
    static let defaultInt8Calibration = CalibrationMethod.mse

    func layerJSON(_ name: String, _ e: ErrorStats, computed: Bool) -> [String: Any] {
        guard computed else { return ["layer": name, "folded": true] }
        return ["layer": name, "relative_l2": jsonNumber(e.relativeL2), "max_abs_error": jsonNumber(e.maxAbsolute), "mean_abs_error": jsonNumber(e.meanAbsolute),
         "sqnr_db": jsonNumber(e.sqnrDB), "infinities": e.infinities, "nans": e.nans, "subnormals": e.subnormals, "flushed_to_zero": e.flushed]
    }

    func effectJSON(_ e: LayerEffect) -> [String: Any] {
        ["layer": e.layer, "change_vs_float32": e.change.change, "change_low": e.change.interval.low, "change_high": e.change.interval.high,
         "differs_from_float32": e.change.differs, "logit_sqnr_db": jsonNumber(e.logits.sqnrDB), "logit_max_abs_error": jsonNumber(e.logits.maxAbsolute)]
    }

    /// The attributes `--record` stores for one mode: the summary, and one array per layer column
    /// (NaN and 0 for the layers an integer path folds, which `layer_folded` marks with 1).
    func recordAttributes(_ row: [String: Any], _ r: ModeReport, layerNames: [String], dataset: String) -> [(String, HDF5Attribute)] {
        var a: [(String, HDF5Attribute)] = [("dataset", .string(dataset)), ("weights", .string(row["weights"] as! String)),
                                            ("layer_names", .string(layerNames.joined(separator: " ")))]
        for key in ["images", "correct", "differs_from_float32", "gained", "lost", "model_bytes"] { a.append((key, .int(row[key] as! Int))) }
        for key in ["accuracy", "change_vs_float32", "change_low", "change_high", "agreement", "model_ratio_to_float32", "seconds",
                    "images_per_second", "input_scale"] {
            a.append((key, .double(row[key] as! Double)))
        }
        func number(_ key: String) -> Double {
            row[key] as? Double ?? ((row[key] as? String) == "inf" ? .infinity : -.infinity)
        }
        a += ["logit_max_abs_error", "logit_mean_abs_error", "logit_sqnr_db"].map { ($0, .double(number($0))) }
        func doubles(_ f: (ErrorStats) -> Double) -> HDF5Attribute { .doubles(r.layers.indices.map { r.computed[$0] ? f(r.layers[$0]) : .nan }) }
        a += [("layer_relative_l2", doubles(\.relativeL2)), ("layer_max_abs_error", doubles(\.maxAbsolute)),
              ("layer_sqnr_db", doubles(\.sqnrDB)), ("layer_infinities", .ints(r.layers.map(\.infinities))),
              ("layer_nans", .ints(r.layers.map(\.nans))), ("layer_subnormals", .ints(r.layers.map(\.subnormals))),
              ("layer_flushed_to_zero", .ints(r.layers.map(\.flushed)))]
        if r.mode == nil { a.append(("layer_folded", .ints(r.computed.map { $0 ? 0 : 1 }))) }
        return a
    }

    func printReport(_ rows: [[String: Any]], _ reports: [ModeReport], layerNames: [String], dataset: String, images: Int) {
        let scale = inputScale == 1 ? "" : String(format: ", inputs x%g", inputScale)
        print("\(file): \(layerNames.count) layers on \(dataset), \(images) test images\(scale)")
        let width = max(14, rows.map { ($0["precision"] as! String).count }.max() ?? 0)
        print("precision".padding(toLength: width + 2, withPad: " ", startingAt: 0)
              + "accuracy  change vs float32 [95% CI]   differs  agree    logit max err  logit SQNR  inf+NaN  model KB  ratio  images/s")
        for row in rows {
            let change = String(format: "%+.2f [%+.2f, %+.2f] pp", 100 * (row["change_vs_float32"] as! Double),
                                100 * (row["change_low"] as! Double), 100 * (row["change_high"] as! Double))
            let maxError = row["logit_max_abs_error"] as? Double ?? .infinity, sqnr = row["logit_sqnr_db"] as? Double
            let name = row["precision"] as! String
            print(String(format: "%@  %8@  %-27@ %7d  %7.3f%%  %13.3g  %10@  %7d  %8.1f  %5.2fx  %8.0f",
                         name.padding(toLength: width, withPad: " ", startingAt: 0), percent(row["accuracy"] as! Double), change,
                         row["differs_from_float32"] as! Int, 100 * (row["agreement"] as! Double), maxError,
                         sqnr.map(decibels) ?? ((row["logit_sqnr_db"] as? String) == "inf" ? "exact" : "-inf"),
                         row["nonfinite"] as! Int, Double(row["model_bytes"] as! Int) / 1024, row["model_ratio_to_float32"] as! Double,
                         row["images_per_second"] as! Double))
        }
        // The layers of the floating mode whose logits drift furthest from float64, and of every int8 variant.
        let worst = reports.filter { $0.mode != nil && $0.mode != .float64 }.min { $0.logits.sqnrDB < $1.logits.sqnrDB }
        for r in (worst.map { [$0] } ?? []) + reports.filter({ $0.mode == nil }) {
            print(r.mode == nil ? "\nper layer, \(r.name) (integer-only inference, dequantized) against float64:"
                                : "\nper layer, \(r.name) against float64 (the floating mode with the lowest logit SQNR):")
            print("layer          relative L2  max abs error  SQNR dB      inf      NaN  subnormal  flushed")
            for (k, (name, e)) in zip(layerNames, r.layers).enumerated() {
                let label = name.padding(toLength: 13, withPad: " ", startingAt: 0)
                guard r.computed[k] else {
                    print("\(label)  fused: computed inside the int8 requantization, no values of its own")
                    continue
                }
                print(String(format: "%@  %11.3g  %13.3g  %7@  %7d  %7d  %9d  %7d", label, e.relativeL2, e.maxAbsolute, decibels(e.sqnrDB), e.infinities,
                             e.nans, e.subnormals, e.flushed))
            }
        }
    }

    func printExplain(_ effects: [LayerEffect], mode: String) {
        print("\nexplain \(mode): float32 with one layer at a time in \(mode)\(mode.hasPrefix("int8") ? " (simulated in Float)" : ""); layers that lower accuracy beyond noise first,")
        print("then the rest by the error they put into the logits (lowest SQNR first):")
        print("layer          change vs float32 [95% CI]   differs  logit SQNR")
        func key(_ e: LayerEffect) -> (Int, Double, Double) {
            e.change.interval.high < 0 ? (0, e.change.change, e.logits.sqnrDB) : (1, e.logits.sqnrDB, e.change.change)
        }
        let ranked = effects.sorted { key($0) < key($1) }
        for e in ranked {
            print(String(format: "%@  %-27@ %7d  %10@", e.layer.padding(toLength: 13, withPad: " ", startingAt: 0),
                         String(format: "%+.2f [%+.2f, %+.2f] pp", 100 * e.change.change, 100 * e.change.interval.low, 100 * e.change.interval.high),
                         e.change.differs, decibels(e.logits.sqnrDB)))
        }
        let hurting = ranked.filter { $0.change.interval.high < 0 }
        print(hurting.isEmpty ? "no single layer lowers accuracy beyond noise (every 95% interval holds 0)"
                              : "layers that lower accuracy beyond noise: " + hurting.map(\.layer).joined(separator: ", "))
    }
}

/// SQNR for a table cell: `exact` when there is no error, `-inf` when a value is inf or NaN.
func decibels(_ x: Double) -> String { x.isInfinite ? (x > 0 ? "exact" : "-inf") : String(format: "%.1f", x) }

/// A number for JSON, which has no infinity: ±∞ become the strings "inf" and "-inf".
func jsonNumber(_ x: Double) -> Any { x.isFinite ? x : (x > 0 ? "inf" : "-inf") }
