import ArgumentParser
import PrecisCore

/// `--dataset NAME` or `--data PATH`.
struct DataOptions: ParsableArguments {
    @Option(
        help: """
            Data set: \(Dataset.knownNames.joined(separator: ", ")) (train: mnist5k for --model simple, else \
            fashion-mnist; eval: the one the network was trained on).
            """)
    var dataset: String?

    @Option(
        help: ArgumentHelp(
            "A directory of the four MNIST-format IDX files (gzipped or not) or of CIFAR-10's binary batches, or an "
                + ".npz of x and y (or x_train, y_train, x_test, y_test).", valueName: "path"))
    var data: String?

    func validate() throws {
        if dataset != nil && data != nil { throw ValidationError("give --dataset or --data, not both") }
        if let dataset, !Dataset.knownNames.contains(dataset) {
            throw ValidationError(
                "unknown data set '\(dataset)' (\(Dataset.knownNames.joined(separator: ", ")); --data PATH reads "
                    + "a folder of MNIST-format files or CIFAR-10 batches, or an .npz)")
        }
    }

    /// The chosen data set, or `fallback` (a name or a directory) when none was given.
    func load(fallback: String) throws -> Dataset {
        if let data { return try Dataset.load(path: data) }
        let name = dataset ?? fallback
        if Dataset.knownNames.contains(name) { return try Dataset.load(named: name) }
        if dataset == nil { return try Dataset.load(path: name) }
        return try Dataset.load(named: name)
    }
}
