import ArgumentParser
import Foundation
import PrecisCore

@main
struct Precis: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train small CNNs at full precision and measure what reduced precision costs.",
        subcommands: [Train.self, Eval.self, Quantize.self, Export.self, Inspect.self, Upgrade.self, Bench.self])
}

/// Runs `body`, turning a thrown error into one `precis: error: ...` line on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    keepFreedMemory()
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        // One line, whatever a damaged file put into the message.
        let message = String(describing: error).map { $0.isNewline || ($0.asciiValue.map { $0 < 32 } ?? false) ? " " : $0 }
        FileHandle.standardError.write(Data("precis: error: \(String(message))\n".utf8))
        throw ExitCode(1)
    }
}

/// `--dataset NAME` or `--data DIR`.
struct DataOptions: ParsableArguments {
    @Option(help: "Data set: \(Dataset.knownNames.joined(separator: ", ")) (train: mnist5k for --model simple, else fashion-mnist; eval: the one the network was trained on).")
    var dataset: String?

    @Option(help: ArgumentHelp("A directory with the four MNIST-format IDX files (gzipped or not).", valueName: "dir"))
    var data: String?

    func validate() throws {
        if dataset != nil && data != nil { throw ValidationError("give --dataset or --data, not both") }
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

/// Prints a JSON value with sorted keys.
func printJSON(_ value: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

func percent(_ x: Double) -> String { String(format: "%.2f%%", 100 * x) }
