import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Draw a weight file: learning curves and filters, in a self-contained HTML page with one SVG per chart.")

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

    func validate() throws {
        if let problem = writeProblem(folder + "/index.html"), FileManager.default.fileExists(atPath: folder) {
            throw ValidationError("--output \(folder): \(problem)")
        }
    }

    func run() throws {
        try reportingErrors {
            let store = try WeightStore(file), spec = store.spec
            var sections: [PictureReport.Section] = []
            if let t = store.master.training {
                sections.append(
                    PictureReport.Section(
                        heading: "Training",
                        text:
                            "\(t.epochs) epochs on \(t.dataset) (\(t.trainSize) training images), batch \(t.batchSize), "
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
            let report = PictureReport(
                title: "Precis report: \(file) (\(spec.name), \(spec.layers.count) layers)", sections: sections)
            try write(report)
            print("\(folder)/index.html: \(report.charts.count) charts (\(report.html.utf8.count / 1024) KiB)")
        }
    }

    /// Writes the page and every chart, each file atomically.
    func write(_ report: PictureReport) throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for chart in report.charts {
                try Data(chart.svg.utf8).write(
                    to: URL(fileURLWithPath: "\(folder)/\(chart.name).svg"), options: .atomic)
            }
            try Data(report.html.utf8).write(to: URL(fileURLWithPath: "\(folder)/index.html"), options: .atomic)
        } catch {
            throw DataError(file: folder, problem: "cannot write the report: \(error.localizedDescription)")
        }
    }
}
