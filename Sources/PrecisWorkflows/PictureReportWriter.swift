import Foundation
import PrecisCore
import PrecisWeights

/// Draws the picture report of a weight file into a folder: a self-contained HTML page with one SVG
/// per chart (learning curves, filters, feature maps, mistakes, recorded precision, int8 ranges).
public struct PictureReportWriter {
    public let store: WeightStore
    /// The data set of the test images shown.
    public let dataset: Dataset
    public let folder: String
    /// The test images drawn and evaluated.
    public var selection = ImageSelection.all
    /// No progress line.
    public var quiet = true

    public init(
        store: WeightStore, dataset: Dataset, folder: String, selection: ImageSelection = .all, quiet: Bool = true
    ) {
        (self.store, self.dataset, self.folder, self.selection, self.quiet) = (store, dataset, folder, selection, quiet)
    }

    /// Builds the page from the file and the data set, writes it, and returns a line saying where.
    public func write() throws -> String {
        // Everything recorded is read (and so checked) before anything is computed.
        let spec = store.spec, compared = try store.comparison(), recorded = try store.evaluations()
        var sections = [
            PictureReport.Section(
                heading: "Network",
                text: "\(spec.name): \(spec.layerText)",
                charts: [
                    try networkChart(
                        spec: spec,
                        assignments: try store.searchedVariantNames.map { name in
                            let model = try store.variant(name, of: SearchedModel.self).model
                            return (name, model.assignment(spec).mapValues(\.description))
                        })
                ])
        ]
        if let t = store.master.training {
            sections.append(
                PictureReport.Section(
                    heading: "Training",
                    text:
                        "\(t.epochs) epochs on \(t.dataset) (\(t.trainSize) training images), "
                        + "batch \(t.batchSize), "
                        + "\(t.optimizer) with learning rate \(t.learningRate), seed \(t.seed), in \(t.precision)"
                        + (t.augmentation.isEmpty ? "" : ", images augmented by \(t.augmentation)")
                        + (t.startedFrom.isEmpty ? "" : ", fine-tuning \(t.startedFrom)")
                        + (t.quantizationAware.isEmpty ? "" : " with \(t.quantizationAware) simulated (QAT)") + ".",
                    charts: trainingCharts(
                        loss: t.loss, trainAccuracy: t.trainAccuracy, testAccuracy: t.testAccuracy)))
        } else {
            sections.append(
                PictureReport.Section(heading: "Training", text: "The file holds no training record.", charts: []))
        }
        // The initial weights are not stored: the seed and the init scheme reproduce them exactly
        // (not those of a fine-tuned network, which started from another file).
        let initial = try store.master.training.flatMap { $0.startedFrom.isEmpty ? $0 : nil }.map {
            try Network<Float>(spec: spec, seed: UInt64(truncatingIfNeeded: $0.seed)).tensorValues()
        }
        sections.append(
            PictureReport.Section(
                heading: "Filters",
                text: "What the convolutions learned."
                    + (initial == nil
                        ? ""
                        : " The first layer's filters are shown before training as well, drawn again from the seed "
                            + "and the weight init the file records."),
                charts: try filterCharts(spec: spec, trained: store.master.tensors, initial: initial)))
        if dataset.problem(for: spec) == nil {
            let net = try Network<Float>(spec: spec, parameters: store.master.tensors)
            let test = dataset.testImages(selection), predicted = net.classify(test.images, count: test.count)
            let (precisionSection, measured) = try precision(test, float32: predicted, recorded: recorded)
            sections += [
                mistakes(net, test, predicted), featureMaps(net), precisionSection,
                try sizes(test, recorded: recorded, measured: measured), try ranges(net, test),
            ]
        } else {
            sections.append(
                PictureReport.Section(
                    heading: "Test images", text: "\(dataset.name) does not fit the network's input.", charts: []))
        }
        if let compared {
            sections.append(
                PictureReport.Section(
                    heading: "int8 schemes and calibrations",
                    text: "The table precis quantize --compare --record stored: \(compared.runs.count) runs on "
                        + "\(compared.sample), calibrated on \(compared.calibrationImages) training images.",
                    charts: compareCharts(compared)))
        }
        let report = PictureReport(
            title: "Precis report: \(store.path) (\(spec.name), \(spec.layers.count) layers)", sections: sections)
        try write(report)
        return "\(folder)/index.html: \(report.charts.count) charts (\(report.html.utf8.count / 1024) KiB)"
    }

    /// The sizes section: float32 and float16, every standard number format (its stored variant, or
    /// rounded to nearest now) and every stored format, int8 and searched variant, run on the test images and
    /// drawn as accuracy change against bits per value, with the Pareto front. A precision `eval
    /// --record` recorded on this data set, or `measured` by the precision section, is taken as it is;
    /// the rest run now.
    func sizes(_ test: TestImages, recorded all: [RecordedEvaluation], measured: [ModeResult] = []) throws
        -> PictureReport.Section
    {
        var seen = Set<String>()
        let names =
            (["float32", "float16"] + FormatMode.standard.map(\.name) + store.formatVariantNames
            + store.int8VariantNames + store.searchedVariantNames).filter { seen.insert($0).inserted }
        let recorded = Dictionary(
            all.filter { $0.dataset == dataset.name && $0.inputScale == 1 }.map { ($0.result.precision, $0.result) }
                + measured.map { ($0.precision, $0) }
        ) { a, _ in a }
        let missing = names.filter { recorded[$0] == nil }
        var results = names.compactMap { recorded[$0] }
        if !missing.isEmpty {
            let progress = ProgressLine(quiet: quiet), formats = FormatCalibration(store: store, dataset: dataset)
            let evaluation = try PrecisionEvaluation(
                spec: store.spec, master: store.master.tensors,
                entries: try missing.map { try store.evaluationEntry(Precision(name: $0)!, formats: formats) },
                test: test
            ) { done in
                progress.update("report: sizes", done: done, total: test.count, unit: "img")
            }
            progress.clear()
            results += evaluation.results.filter { missing.contains($0.precision) }
        }
        return PictureReport.Section(
            heading: "Accuracy against size",
            text: "\(names.count) precisions: float32 and float16, the standard number formats (a stored variant "
                + "where the file has one, else rounded to nearest now) and every stored variant, including those "
                + "rounded by GPTQ or AdaRound, those equalized and the assignments searched per layer; "
                + "\(names.count - missing.count) as recorded "
                + "or measured for the precision section, the rest on \(selection.text(of: dataset.testCount)).",
            charts: [paretoChart(results)])
    }

    /// The precision section: each mode's accuracy change and per-layer SQNR, and the images whose
    /// answer it changes. Of `all`, the file's recorded evaluations, it takes those on this data set,
    /// and runs what they lack on the test images: every mode and stored int8 variant when nothing
    /// is recorded, the predictions of records without them.
    /// Also returns the results it measured now.
    func precision(_ test: TestImages, float32: [Int], recorded all: [RecordedEvaluation]) throws
        -> (PictureReport.Section, [ModeResult])
    {
        let recorded = all.filter { $0.dataset == dataset.name && $0.inputScale == 1 }
            .sorted { $0.result.precision < $1.result.precision }
        var results = recorded.map(\.result), measured: [ModeResult] = []
        var predictions = Dictionary(
            uniqueKeysWithValues: recorded.map { ($0.result.precision, $0.predictionsByTestIndex) })
        let missing =
            recorded.isEmpty
            ? PrecisionMode.allCases.map(\.rawValue) + store.int8VariantNames
            : recorded.filter { $0.predictions == nil }.map(\.result.precision)
        let indices = selection.indices(dataset.testLabels)
        if !missing.isEmpty {
            let progress = ProgressLine(quiet: quiet), formats = FormatCalibration(store: store, dataset: dataset)
            let evaluation = try PrecisionEvaluation(
                spec: store.spec, master: store.master.tensors,
                entries: try missing.map { name in
                    guard let precision = Precision(name: name) else {
                        throw DataError(
                            file: store.path, problem: "records an evaluation of unknown precision '\(name)'")
                    }
                    return try store.evaluationEntry(precision, formats: formats)
                },
                test: test
            ) { done in
                progress.update("report: precision", done: done, total: test.count, unit: "img")
            }
            progress.clear()
            if recorded.isEmpty { (results, measured) = (evaluation.results, evaluation.results) }
            for (name, predicted) in evaluation.predicted {
                predictions[name] = Dictionary(zip(indices, predicted)) { a, _ in a }
            }
        }
        let source =
            recorded.isEmpty
            ? "Nothing is recorded for \(dataset.name), so every mode ran now on "
                + "\(selection.text(of: dataset.testCount)) (precis eval --record stores the results)."
            : "From the evaluations recorded by precis eval --record"
                + (missing.isEmpty ? "." : "; the answers of \(missing.joined(separator: ", ")) were computed now.")
        let side = store.spec.inputShape[1]
        let changed =
            store.spec.inputShape[0] == 1 && side == store.spec.inputShape[2]
            ? results.filter { $0.precision != PrecisionMode.float32.rawValue }.map { r in
                changedChart(
                    mode: r.precision, images: test.images, side: side, labels: test.labels, float32: float32,
                    predicted: indices.map { predictions[r.precision]?[$0] }, names: dataset.classNames)
            } : []
        let section = PictureReport.Section(
            heading: "Precision", text: "What each precision costs against float32 and float64. " + source,
            charts: precisionCharts(results) + changed)
        return (section, measured)
    }

    /// The int8 section: for every stored int8 variant, each quantized layer's weights and inputs
    /// (float32, on up to 200 test images) against the ranges the variant clips them to.
    func ranges(_ net: Network<Float>, _ test: TestImages) throws -> PictureReport.Section {
        let names = store.int8VariantNames
        let count = min(200, test.count), per = net.spec.inputShape.reduce(1, *)
        let outs = net.forwardAll(
            Tensor(shape: [count] + net.spec.inputShape, data: Array(test.images.prefix(count * per))))
        var charts: [Chart] = []
        for name in names {
            let model = try store.variant(name, of: QuantizedModel.self),
                layers = model.model.layers.sorted { $0.key < $1.key }
            let weights = layers.map { i, layer in
                RangePanel(
                    title: "\(net.spec.layerNames[i]) weights",
                    values: store.master.tensors[tensorKey(net.spec.layerNames[i], "W")]?.data ?? [],
                    ranges: layer.weightScales.map { -127 * $0...127 * $0 })
            }
            charts.append(
                Chart(
                    name: "int8-weights-\(name)",
                    svg: rangeChart(title: "\(name): weights and their int8 ranges", panels: weights, steps: 254),
                    caption: "Each layer's float weights (counts on a log scale) and the range its int8 codes reach: "
                        + "vermillion lines for one scale per tensor, a blue bar per output channel for per-channel "
                        + "scales. A narrow channel under one wide tensor range would use only a few codes."))
            guard !model.dynamic else { continue }
            let inputs = layers.map { i, layer in
                RangePanel(
                    title: "\(net.spec.layerNames[i]) input",
                    values: outs[net.spec.inputs(of: i)[0] + 1].data.map(Double.init),
                    ranges: [layer.input.representable])
            }
            charts.append(
                Chart(
                    name: "int8-inputs-\(name)",
                    svg: rangeChart(title: "\(name): layer inputs and their int8 ranges", panels: inputs, steps: 255),
                    caption: "Each quantized layer's float32 input on \(count) test images, and the calibrated range "
                        + "its codes reach; values beyond the vermillion lines are clipped."))
        }
        return PictureReport.Section(
            heading: "int8 ranges",
            text: names.isEmpty
                ? "The file stores no int8 variant: precis quantize FILE stores one."
                : "Where the int8 grid sits on the values it quantizes.",
            charts: charts)
    }

    /// The mistakes section: float32's confusion matrix and misclassified images on the test images.
    func mistakes(_ net: Network<Float>, _ test: TestImages, _ predicted: [Int]) -> PictureReport.Section {
        let shape = net.spec.inputShape
        guard shape[0] == 1, shape[1] == shape[2] else {
            return PictureReport.Section(
                heading: "Mistakes", text: "Drawn for square one-channel images only.", charts: [])
        }
        let correct = zip(predicted, test.labels).filter { $0 == $1 }.count
        return PictureReport.Section(
            heading: "Mistakes",
            text: String(
                format: "float32 on %@ of %@: %d correct (%.2f%%), %d wrong.",
                selection.text(of: dataset.testCount), dataset.name, correct,
                100 * Double(correct) / Double(max(test.count, 1)), test.count - correct),
            charts: mistakeCharts(
                images: test.images, labels: test.labels, predicted: predicted, classes: net.spec.classes,
                side: shape[1], names: dataset.classNames))
    }

    /// The feature-map section: the first test image of each class through every convolution and pooling layer.
    func featureMaps(_ net: Network<Float>) -> PictureReport.Section {
        let per = net.spec.inputShape.reduce(1, *)
        let first = (0..<net.spec.classes).compactMap { c in dataset.testLabels.firstIndex(of: c) }
        let images = first.flatMap { dataset.testImages[$0 * per..<($0 + 1) * per] }
        return PictureReport.Section(
            heading: "Feature maps",
            text: "The first test image of each class through "
                + (net.spec.wiring.isEmpty
                    ? "every convolution and pooling layer" : "the network, after its first layer and each block")
                + " (float32): the book's claim that deeper layers respond to more abstract features, to look at.",
            charts: featureMapCharts(network: net, images: images, labels: first.map { dataset.testLabels[$0] }))
    }

    /// Writes the folder whole: the page and every chart, replacing an earlier report there
    /// (charts it had and this one has not go with it).
    func write(_ report: PictureReport) throws {
        try AtomicFiles.writeFolder(
            folder,
            files: report.charts.map { ("\($0.name).svg", Data($0.svg.utf8)) } + [
                ("index.html", Data(report.html.utf8))
            ],
            owned: { $0 == "index.html" || $0.hasSuffix(".svg") })
    }
}
