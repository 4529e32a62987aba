import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize a weight file: model, layers, parameters, bytes per variant, training, evaluations.")

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Flag(help: "Print the summary as JSON (schema \(ReportSchema.inspect)).")
    var json = false

    func run() throws {
        try reportingErrors(file: file) {
            let summary = try WeightStore(file).summary()
            if json { return try printJSON(summary) }
            print(summary.text)
        }
    }
}
