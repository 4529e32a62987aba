import ArgumentParser
import Foundation
import PrecisWeights

/// A precision `export` can store: the variant of a precision mode.
struct VariantPrecision: ExpressibleByArgument {
    let name: String

    init?(argument: String) {
        guard WeightFile.variantPrecisions.contains(argument) else { return nil }
        name = argument
    }

    static var allValueStrings: [String] { WeightFile.variantPrecisions }
    var defaultValueDescription: String { name }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a reduced-precision copy of the weights in the file, under /variants/<precision>.")

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Option(help: "Precision to store.")
    var precision = VariantPrecision(argument: "float16")!

    func run() throws {
        try reportingErrors {
            try WeightStore(file).export(precision.name)
            print("\(file): stored /variants/\(precision.name)")
        }
    }
}
