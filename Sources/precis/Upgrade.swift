import ArgumentParser
import Foundation
import PrecisWeights

struct Upgrade: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: """
            Rewrite a weight file in the current layout and HDF5 format (checksummed metadata), keeping its model, \
            weights, training record, variants and recorded evaluations.
            """)

    @Argument(help: "A weight file written by precis train.")
    var file: String

    func validate() throws {
        if let problem = editProblem(file) { throw ValidationError("\(file): \(problem)") }
    }

    func run() throws {
        try reportingErrors(file: file) {
            let rewritten = try WeightStore(file).upgrade()
            print(rewritten ? "\(file): rewritten, every dataset with a checksum" : "\(file): already current")
        }
    }
}
