import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights
import PrecisWorkflows

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

    @OptionGroup var sample: SampleOptions

    @Option(parsing: .unconditional, help: "Seed for the --limit sample.", transform: seedValue)
    var seed: UInt64?

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "Replace an existing report folder (one that holds only a report's page and charts).")
    var force = false

    func validate() throws {
        if seed != nil && sample.limit == nil { throw ValidationError("--seed draws the --limit sample: give --limit") }
        if let problem = folderRefusal(folder, force: force) {
            throw ValidationError("--output \(folder): \(problem)")
        }
    }

    func run() throws {
        try reportingErrors(file: file) {
            let store = try WeightStore(file)
            let dataset = try data.load(fallback: store.master.dataset)
            let writer = PictureReportWriter(
                store: store, dataset: dataset, folder: folder, selection: sample.selection(seed: seed ?? 0),
                quiet: quiet)
            print(try writer.write())
        }
    }
}
