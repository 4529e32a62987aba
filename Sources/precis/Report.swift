import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: """
            Draw a weight file: learning curves, filters, feature maps, mistakes and recorded precision, in a \
            self-contained HTML page with one SVG per chart.
            """)

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Option(
        help: ArgumentHelp(
            "The folder to write index.html and the SVG files into (default: NAME-report).", valueName: "dir"))
    var output: String?

    /// The output folder: `--output`, or the file's name with `-report` in the current folder.
    var folder: String {
        output ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent + "-report"
    }

    @OptionGroup var data: DataOptions

    func validate() throws {
        if let problem = writeProblem(folder + "/index.html"), FileManager.default.fileExists(atPath: folder) {
            throw ValidationError("--output \(folder): \(problem)")
        }
    }

    func run() throws {
        try reportingErrors {
            let store = try WeightStore(file)
            let dataset = try data.load(fallback: store.master.dataset)
            print(try PictureReportWriter(store: store, dataset: dataset, folder: folder).write())
        }
    }
}

/// Draws the picture report of a weight file into a folder: `precis report`, and `--report` of
/// `eval` and `train`.
struct PictureReportWriter {
    let store: WeightStore
    /// The data set of the test images shown.
    let dataset: Dataset
    let folder: String

    /// Builds the page from the file and the data set, writes it, and returns a line saying where.
    func write() throws -> String {
        let spec = store.spec
        var sections: [PictureReport.Section] = []
        if let t = store.master.training {
            sections.append(
                PictureReport.Section(
                    heading: "Training",
                    text:
                        "\(t.epochs) epochs on \(t.dataset) (\(t.trainSize) training images), "
                        + "batch \(t.batchSize), "
                        + "\(t.optimizer) with learning rate \(t.learningRate), seed \(t.seed).",
                    charts: trainingCharts(
                        loss: t.loss, trainAccuracy: t.trainAccuracy, testAccuracy: t.testAccuracy)))
        } else {
            sections.append(
                PictureReport.Section(heading: "Training", text: "The file holds no training record.", charts: []))
        }
        // The initial weights are not stored: the seed and the init scheme reproduce them exactly.
        let initial = try store.master.training.map {
            try Network<Float>(spec: spec, seed: UInt64(truncatingIfNeeded: $0.seed)).tensorValues()
        }
        sections.append(
            PictureReport.Section(
                heading: "Filters",
                text: "What the convolutions learned. The first layer's filters are shown before training as well, "
                    + "drawn again from the seed and the weight init the file records.",
                charts: try filterCharts(spec: spec, trained: store.master.tensors, initial: initial)))
        if dataset.imageShape == spec.inputShape {
            let net = try Network<Float>(spec: spec, parameters: store.master.tensors)
            sections += [mistakes(net), featureMaps(net)]
        } else {
            sections.append(
                PictureReport.Section(
                    heading: "Test images", text: "\(dataset.name) does not fit the network's input.", charts: []))
        }
        let recorded = try store.evaluations().map(\.result).sorted { $0.precision < $1.precision }
        sections.append(
            PictureReport.Section(
                heading: "Precision",
                text: recorded.isEmpty
                    ? "No evaluation is recorded in the file: precis eval FILE --record records one."
                    : "What each precision recorded by precis eval --record costs, against float32 and float64.",
                charts: recorded.isEmpty ? [] : precisionCharts(recorded)))
        let report = PictureReport(
            title: "Precis report: \(store.path) (\(spec.name), \(spec.layers.count) layers)", sections: sections)
        try write(report)
        return "\(folder)/index.html: \(report.charts.count) charts (\(report.html.utf8.count / 1024) KiB)"
    }

    /// The mistakes section: float32's confusion matrix and misclassified images on the test set.
    func mistakes(_ net: Network<Float>) -> PictureReport.Section {
        let shape = net.spec.inputShape
        guard shape[0] == 1, shape[1] == shape[2] else {
            return PictureReport.Section(
                heading: "Mistakes", text: "Drawn for square one-channel images only.", charts: [])
        }
        let predicted = net.classify(dataset.testImages, count: dataset.testCount)
        let correct = zip(predicted, dataset.testLabels).filter { $0 == $1 }.count
        return PictureReport.Section(
            heading: "Mistakes",
            text: String(
                format: "float32 on all %d test images of %@: %d correct (%.2f%%), %d wrong.", dataset.testCount,
                dataset.name, correct, 100 * Double(correct) / Double(max(dataset.testCount, 1)),
                dataset.testCount - correct),
            charts: mistakeCharts(
                images: dataset.testImages, labels: dataset.testLabels, predicted: predicted,
                classes: net.spec.classes, side: shape[1]))
    }

    /// The feature-map section: the first test image of each class through every convolution and pooling layer.
    func featureMaps(_ net: Network<Float>) -> PictureReport.Section {
        let per = net.spec.inputShape.reduce(1, *)
        let first = (0..<net.spec.classes).compactMap { c in dataset.testLabels.firstIndex(of: c) }
        let images = first.flatMap { dataset.testImages[$0 * per..<($0 + 1) * per] }
        return PictureReport.Section(
            heading: "Feature maps",
            text: "The first test image of each class through every convolution and pooling layer (float32): "
                + "the book's claim that deeper layers respond to more abstract features, to look at.",
            charts: featureMapCharts(network: net, images: images, labels: first.map { dataset.testLabels[$0] }))
    }

    /// Writes the page and every chart, each file atomically.
    func write(_ report: PictureReport) throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw DataError(file: folder, problem: "cannot write the report: \(error.localizedDescription)")
        }
        for chart in report.charts {
            try AtomicFiles.write(Data(chart.svg.utf8), to: "\(folder)/\(chart.name).svg")
        }
        try AtomicFiles.write(Data(report.html.utf8), to: "\(folder)/index.html")
    }
}
