import ArgumentParser
import PrecisCore

/// `--dataset NAME` or `--data DIR`.
struct DataOptions: ParsableArguments {
    @Option(
        help: """
            Data set: \(Dataset.knownNames.joined(separator: ", ")) (train: mnist5k for --model simple, else \
            fashion-mnist; eval: the one the network was trained on).
            """)
    var dataset: String?

    @Option(help: ArgumentHelp("A directory with the four MNIST-format IDX files (gzipped or not).", valueName: "dir"))
    var data: String?

    func validate() throws {
        if dataset != nil && data != nil { throw ValidationError("give --dataset or --data, not both") }
        if let dataset, !Dataset.knownNames.contains(dataset) {
            throw ValidationError(
                "unknown data set '\(dataset)' (\(Dataset.knownNames.joined(separator: ", ")); --data DIR reads "
                    + "a folder of MNIST-format files)")
        }
    }

    /// The chosen data set, or `fallback` (a name or a directory) when none was given.
    func load(fallback: String) throws -> Dataset {
        if let data { return try Dataset.mnistDirectory(data) }
        let name = dataset ?? fallback
        if Dataset.knownNames.contains(name) { return try Dataset.load(named: name) }
        if dataset == nil { return try Dataset.mnistDirectory(name) }
        return try Dataset.load(named: name)
    }
}
