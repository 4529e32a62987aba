import ArgumentParser
import Foundation
import PrecisWeights

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a reduced-precision copy of the weights in the file, under /variants/<precision>.")

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Option(help: "Precision to store: \(WeightFile.variantPrecisions.joined(separator: ", ")).")
    var precision = "float16"

    func validate() throws {
        guard WeightFile.variantPrecisions.contains(precision) else {
            throw ValidationError("unknown precision '\(precision)' (\(WeightFile.variantPrecisions.joined(separator: ", ")))")
        }
    }

    func run() throws {
        try reportingErrors {
            try WeightFile.export(file, precision: precision)
            print("\(file): stored /variants/\(precision)")
        }
    }
}
