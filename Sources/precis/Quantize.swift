import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Post-training quantization: store an int8 variant or a number format, or compare int8 schemes.",
        discussion: """
            Calibrates on images drawn from the training set only. With one --scheme and one --calibration, stores \
            /variants/int8-<scheme> in the file (precis eval --precision int8-<scheme> runs it); --max-drop stores a \
            mixed-precision variant, --dynamic a dynamic one. With --compare, evaluates every scheme × calibration \
            method (and dynamic quantization) on the test set with integer-only inference, checked against a \
            quantize-dequantize simulation in Float, and prints each layer's SQNR against float64. With --format F, \
            stores /variants/F instead: FP8, MX, NVFP4 or int4 codes with their scales (precis eval runs it).
            """)

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Flag(help: "Run every scheme × calibration method and print a table sorted by accuracy.")
    var compare = false

    @Flag(help: "With one scheme and method: quantize one layer at a time (the rest in float32) and rank the layers.")
    var sensitivity = false

    @Flag(
        help: """
            Correct each quantized layer's bias for the mean output shift its quantization causes on the calibration \
            set (reported with and without).
            """)
    var biasCorrection = false

    @Flag(
        help: """
            With one scheme: store dynamic quantization, int8-<scheme>-dynamic (int8 weights, float biases, each \
            batch's inputs quantized with their own min-max range; no calibration).
            """)
    var dynamic = false

    @Option(
        help: ArgumentHelp(
            """
            Keep the most sensitive layers in float until the accuracy drop against float32 is at most this many \
            points; stores the mixed variant int8-<scheme>-mixed.
            """, valueName: "points"))
    var maxDrop: Double?

    @Option(
        help: """
            With --max-drop: the precision of the layers kept in float (float16: weights stored in IEEE half, \
            arithmetic in float32).
            """)
    var fallback = FallbackPrecision.float32

    @Option(
        help: ArgumentHelp(
            "Store a number format instead of int8: \(FormatMode.namePatterns.joined(separator: ", ")).",
            valueName: "format"))
    var format: FormatMode?

    @Option(help: "Comma-separated weight and activation schemes, or all (with --compare).")
    var scheme = ChoiceList<QuantScheme>.all

    @Option(help: "Comma-separated calibration methods, or all (with --compare).")
    var calibration = ChoiceList<CalibrationMethod>.all

    @Option(help: "Calibration images, drawn from the training set.")
    var calibrationSize = 500

    @Option(
        name: .customLong("percentile"),
        help: "With --calibration percentile: the percentile, in (50, 100] (default: 99.99).")
    var percentileOption: Double?

    /// `--percentile`, or its default.
    var percentile: Double { percentileOption ?? 99.99 }

    @Option(
        parsing: .unconditional, help: "Seed for drawing the calibration images (and the --limit sample).",
        transform: seedValue)
    var seed: UInt64 = 0

    @OptionGroup var data: DataOptions

    @OptionGroup var sample: SampleOptions

    @Flag(help: "Print the results as JSON (schemas \(ReportSchema.quantize), \(ReportSchema.compare)).")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "With --compare: store the table in the file under /comparisons/int8 (precis report draws it).")
    var record = false

    func validate() throws {
        if let format { try validate(format) }
        guard calibrationSize > 0 else { throw ValidationError("--calibration-size must be positive") }
        guard percentile > 50 && percentile <= 100 else { throw ValidationError("--percentile must be in (50, 100]") }
        if percentileOption != nil && !calibration.values.contains(.percentile) {
            throw ValidationError("--percentile goes with --calibration percentile")
        }
        if record && !compare { throw ValidationError("--record stores the --compare table: give --compare") }
        // Quantizing stores a variant, and --record a table: the folder is checked before the work.
        if record || !compare, let problem = editProblem(file) { throw ValidationError("\(file): \(problem)") }
        if (sensitivity || maxDrop != nil) && compare {
            throw ValidationError("--sensitivity and --max-drop take one --scheme and one --calibration, not --compare")
        }
        if let maxDrop, !(maxDrop >= 0) { throw ValidationError("--max-drop must be a number of points, 0 or more") }
        if fallback != .float32 && maxDrop == nil {
            throw ValidationError("--fallback chooses the precision of the layers --max-drop keeps in float")
        }
        let allMethods = calibration.values.count == CalibrationMethod.allCases.count
        if dynamic && (compare || sensitivity || maxDrop != nil || biasCorrection || !allMethods) {
            throw ValidationError(
                "--dynamic stores one scheme without calibration: no --compare, --sensitivity, --max-drop, "
                    + "--bias-correction or --calibration")
        }
        if dynamic && scheme.values.count != 1 { throw ValidationError("--dynamic needs one --scheme") }
        if !compare && !dynamic && format == nil && (scheme.values.count != 1 || calibration.values.count != 1) {
            throw ValidationError(
                "storing a variant needs one --scheme and one --calibration (or --compare to try them all)")
        }
    }

    func run() throws {
        try reportingErrors {
            let store = try WeightStore(file), dataset = try data.load(fallback: store.master.dataset)
            try store.spec.checkMemory(batch: 100, training: false)
            if let problem = dataset.problem(for: store.spec) { throw DataError(file: file, problem: problem) }
            let study = try QuantizationStudy(
                spec: store.spec, tensors: store.master.tensors, dataset: dataset,
                calibrationSize: calibrationSize, seed: seed, selection: sample.selection(seed: seed))
            if compare { return try runCompare(study, store, dataset: dataset.name) }
            let summary =
                if let format { try storeFormat(format, study, store, dataset: dataset.name) } else if dynamic {
                    try storeDynamic(study, store)
                } else { try storeStatic(study, store, dataset: dataset.name) }
            if json { return try printJSON(summary) }
            print(summaryText(summary, study))
        }
    }

    /// Quantizes with one scheme and method (bias correction and mixed precision if asked),
    /// evaluates the integer path and stores the variant.
    func storeStatic(_ study: QuantizationStudy, _ store: WeightStore, dataset: String) throws -> QuantizeSummary {
        let spec = study.spec, method = calibration.values[0]
        var model = try study.quantize(scheme.values[0], method, percentile: percentile, biasCorrection: biasCorrection)
        let without =
            biasCorrection
            ? study.evaluate(
                try IntegerNetwork(
                    spec: spec, model: try study.quantize(scheme.values[0], method, percentile: percentile),
                    tensors: study.tensors))
            : nil
        var ranked: [LayerSensitivity]? = nil, steps: [MixedPrecisionStep]? = nil
        if sensitivity || maxDrop != nil { ranked = try study.sensitivity(model) }
        if let maxDrop, let ranked {
            let found = try study.mixedPrecision(
                model, order: ranked.map(\.index), maxDrop: maxDrop, floats: floatTensors(study),
                bytesPerValue: fallback.bytesPerValue)
            steps = found
            let kept = Set(found.last?.floatLayers ?? [])
            model = model.only(Set(model.layers.keys.filter { !kept.contains(spec.layerNames[$0]) }))
        }
        let integer = try IntegerNetwork(
            spec: spec, model: model, tensors: floatTensors(study), floatBytesPerValue: fallback.bytesPerValue)
        let floatLayers = quantizedLayers(spec).filter { model.layers[$0] == nil }.map { spec.layerNames[$0] }
        var attributes = calibrationAttributes(
            method.rawValue, images: study.calibrationCount, seed: seed, source: "training set of \(dataset)")
        if method == .percentile { attributes.append(("percentile", .double(percentile))) }
        attributes.append(
            ("bias_correction", .string(biasCorrection ? "mean output shift on the calibration set" : "none")))
        let form: Int8Form = maxDrop == nil ? .plain : .mixed(floatLayers: floatLayers, half: fallback == .float16)
        let name = try store.storeInt8(model, form: form, calibration: attributes)
        var summary = QuantizeSummary(
            file: file, variant: name, calibration: method.rawValue, calibrationImages: study.calibrationCount,
            biasCorrection: biasCorrection, result: study.evaluate(integer), modelBytes: integer.modelBytes,
            floatLayers: floatLayers, fallback: fallback.rawValue)
        (summary.withoutBiasCorrection, summary.sensitivity, summary.mixedPrecision) = (without, ranked, steps)
        summary.maxDropPP = maxDrop
        return summary
    }

    /// The options `--format` takes: not the int8 ones; `--calibration` minmax or mse for int4 weights.
    func validate(_ format: FormatMode) throws {
        if compare || dynamic || biasCorrection || fallback != .float32 || scheme.values.count != QuantScheme.all.count
        {
            throw ValidationError(
                "--format stores a number format: no --compare, --dynamic, --bias-correction, --fallback or --scheme")
        }
        if calibration.values.count != CalibrationMethod.allCases.count {
            guard case .int4 = format.weights else {
                throw ValidationError(
                    "--calibration with --format applies to the int4 formats only (their weight ranges); "
                        + "\(format.name) takes its scales from the values")
            }
            guard calibration.values.count == 1, [.minmax, .mse].contains(calibration.values[0]) else {
                throw ValidationError(
                    "--calibration with --format \(format.name) chooses its weight ranges: minmax or mse")
            }
        }
    }

    /// Stores `format` (with the chosen int4 weight ranges), after the sensitivity ranking and the
    /// mixed search when asked, and evaluates the stored network.
    func storeFormat(_ format: FormatMode, _ study: QuantizationStudy, _ store: WeightStore, dataset: String) throws
        -> QuantizeSummary
    {
        let mode = calibration.values.count == 1 ? format.weightRanges(calibration.values[0]) : format
        var model = try study.formatModel(mode)
        var ranked: [LayerSensitivity]? = nil, steps: [MixedPrecisionStep]? = nil
        if sensitivity || maxDrop != nil { ranked = try study.sensitivity(model) }
        if let maxDrop, let ranked {
            let found = try study.mixedPrecision(model, order: ranked.map(\.index), maxDrop: maxDrop)
            steps = found
            let kept = Set(found.last?.floatLayers ?? [])
            model = model.only(Set(model.weights.keys.filter { !kept.contains(study.spec.layerNames[$0]) }))
        }
        let network = try FormatNetwork(spec: study.spec, tensors: study.tensors, model: model)
        let floatLayers = quantizedLayers(study.spec).filter { model.weights[$0] == nil }.map {
            study.spec.layerNames[$0]
        }
        let attributes =
            mode.needsCalibration
            ? calibrationAttributes(
                FormatModel.inputCalibrationName(mode), images: study.calibrationCount, seed: seed,
                source: "training set of \(dataset)") : []
        let name = try store.storeFormat(model, calibration: attributes)
        let how =
            if case .int4(let w) = mode.weights {
                "int4 ranges \(w.method.rawValue)" + (mode.needsCalibration ? ", inputs mse" : "")
            } else { mode.needsCalibration ? "amax" : "block scales from the values" }
        var summary = QuantizeSummary(
            file: file, variant: name, calibration: how,
            calibrationImages: mode.needsCalibration ? study.calibrationCount : 0, biasCorrection: false,
            result: study.evaluate { network.predict($0) }, modelBytes: network.modelBytes, floatLayers: floatLayers)
        (summary.sensitivity, summary.mixedPrecision, summary.maxDropPP) = (ranked, steps, maxDrop)
        return summary
    }

    /// Stores dynamic quantization for one scheme and evaluates its integer path.
    func storeDynamic(_ study: QuantizationStudy, _ store: WeightStore) throws -> QuantizeSummary {
        let model = try study.quantize(scheme.values[0], .minmax)
        let integer = try IntegerNetwork(spec: study.spec, model: model, tensors: study.tensors, dynamic: true)
        let name = try store.storeInt8(
            model, form: .dynamic,
            calibration: [
                ("calibration", .string("none: each batch's inputs quantized with their own min-max range"))
            ])
        return QuantizeSummary(
            file: file, variant: name, calibration: "none", calibrationImages: 0, biasCorrection: false,
            result: study.evaluate(integer), modelBytes: integer.modelBytes)
    }

    /// The master tensors as the layers kept in float use them: rounded to float16 for
    /// `--fallback float16`.
    func floatTensors(_ study: QuantizationStudy) -> [String: Tensor<Double>] {
        fallback == .float16
            ? study.tensors.mapValues { $0.converted(to: Float16.self).converted(to: Double.self) } : study.tensors
    }

    func summaryText(_ s: QuantizeSummary, _ study: QuantizationStudy) -> String {
        let how =
            format != nil
            ? s.calibration + (s.calibrationImages > 0 ? " calibration, \(s.calibrationImages) images" : "")
            : s.calibration == "none" ? "dynamic" : "\(s.calibration) calibration, \(s.calibrationImages) images"
        var out = [
            String(
                format:
                    "%@: stored /variants/%@ (%@): %@ on %@, %+.2f points against float32, "
                    + "%d differ; %d bytes",
                file, s.variant, how, percentText(s.result.accuracy), study.selectionText, s.result.vsFloat32.changePP,
                s.result.vsFloat32.differs, s.modelBytes)
        ]
        if !s.floatLayers.isEmpty {
            out.append(
                "kept in \(s.fallback) (\(fallback == .float16 ? "stored in the variant" : "from /model")): "
                    + s.floatLayers.joined(separator: ", "))
        }
        if let plain = s.withoutBiasCorrection {
            out.append(
                String(
                    format: "bias correction: %@ with (%+.2f points, %d differ), %@ without (%+.2f points, %d differ)",
                    percentText(s.result.accuracy), s.result.vsFloat32.changePP, s.result.vsFloat32.differs,
                    percentText(plain.accuracy), plain.vsFloat32.changePP, plain.vsFloat32.differs))
        }
        if sensitivity, let ranked = s.sensitivity { out += ranked.lines(in: format?.name ?? "int8") }
        if let steps = s.mixedPrecision, let maxDrop = s.maxDropPP {
            out.append(
                String(
                    format: "mixed precision, drop budget %.2f points (simulated, most sensitive layer first):", maxDrop
                ))
            for step in steps {
                out.append(
                    String(
                        format: "  %@: %@  %+.2f points, %d differ, %d bytes", s.fallback,
                        step.floatLayers.isEmpty ? "none" : step.floatLayers.joined(separator: ", "),
                        step.result.vsFloat32.changePP, step.result.vsFloat32.differs, step.modelBytes))
            }
        }
        return out.joined(separator: "\n")
    }
}

/// The attributes a stored variant's calibration is described by: its method, and how many images
/// from where, drawn with which seed (stratified by class, as `QuantizationStudy` draws them).
func calibrationAttributes(_ method: String, images: Int, seed: UInt64, source: String) -> [(String, HDF5Attribute)] {
    [
        ("calibration", .string(method)), ("calibration_images", .int(images)),
        ("calibration_seed", .int(Int(truncatingIfNeeded: seed))), ("calibration_source", .string(source)),
        ("calibration_draw", .string("stratified by class")),
    ]
}
