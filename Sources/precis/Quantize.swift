import ArgumentParser
import PrecisCore
import PrecisWeights
import PrecisWorkflows

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

    @Option(
        help: """
            With --compare: quantize every run again on K resamples of the calibration images (drawn with \
            replacement) and report each run's 95% interval.
            """)
    var bootstrap: Int?

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
            points; stores int8-<scheme>-mixed or <format>-mixed. Without either, stores search-drop<P> per layer.
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

    @Option(
        help: """
            With --format: how the weights are rounded once their scales are set (gptq: column by column, each \
            rounding error spread over the columns left so the layer's output on the calibration images changes \
            least; adaround: each weight up or down, learned to keep each layer's output on the calibration \
            images; stores /variants/<format>-<rounding>).
            """)
    var rounding = WeightRounding.nearest

    @Flag(
        help: """
            Equalize the network across layers first (cross-layer equalization with high-bias absorption, where a \
            pair of layers can be rescaled exactly; stores /variants/int8-<scheme>-cle or /variants/<format>-cle).
            """)
    var equalize = false

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

    @OptionGroup var search: SearchOptions

    @OptionGroup var data: DataOptions

    @OptionGroup var sample: SampleOptions

    @Flag(help: "Print the results as JSON (schemas \(ReportSchema.quantize), \(ReportSchema.compare)).")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "With --compare: store the table in the file under /comparisons/int8 (precis report draws it).")
    var record = false

    func run() throws {
        try reportingErrors(file: file) {
            let store = try WeightStore(file), dataset = try data.load(fallback: store.master.dataset)
            try store.spec.checkMemory(batch: 100, training: false)
            if let problem = dataset.problem(for: store.spec) { throw DataError(file: file, problem: problem) }
            let study = try QuantizationStudy(
                spec: store.spec, tensors: store.master.tensors, dataset: dataset,
                calibrationSize: calibrationSize, seed: seed, selection: sample.selection(seed: seed))
            if compare { return try runCompare(study, store, dataset: dataset.name) }
            if searching { return try runSearch(study, store, dataset: dataset.name) }
            var quantizer = Quantizer(target)
            (quantizer.percentile, quantizer.biasCorrection, quantizer.seed) = (percentile, biasCorrection, seed)
            (quantizer.sensitivity, quantizer.maxDrop, quantizer.fallback) = (sensitivity, maxDrop, fallback)
            let summary = try quantizer.store(study, in: store, dataset: dataset.name)
            if json { return try printJSON(summary) }
            for line in summary.lines(sample: study.selectionText, ranking: sensitivity, format: format?.name) {
                print(line)
            }
        }
    }

    /// What the options ask to store.
    var target: Quantizer.Target {
        Quantizer.Target(
            format: format, rounding: rounding, equalize: equalize, scheme: scheme.values[0],
            methods: calibration.values, dynamic: dynamic)
    }
}
