import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

/// Exit codes: 0 success; 1 a run that failed (a bad or damaged file, a data set that cannot be
/// read, a failed write), with one `precis: error:` line; 64 a bad command line (unknown command
/// or option, a bad option value, an unknown `PRECIS_KERNELS` level), with the parser's message.
@main
struct Precis: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train small CNNs at full precision and measure what reduced precision costs.",
        version: precisVersion,
        subcommands: [
            Train.self, Eval.self, Quantize.self, Report.self, Import.self, Export.self, Inspect.self, Upgrade.self,
            Bench.self, Formats.self,
        ])

    /// Parses and runs the command; a mistyped subcommand gets "did you mean" and exit code 64.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        if let first = arguments.first, !first.hasPrefix("-"), !names.contains(first) {
            let guess = names.min { editDistance(first, $0) < editDistance(first, $1) }.flatMap {
                editDistance(first, $0) <= 2 ? $0 : nil
            }
            let hint = guess.map { " Did you mean '\($0)'?" } ?? ""
            usageFailure("unknown command '\(first)'.\(hint) (see 'precis --help' for the commands)")
        }
        if let level = ProcessInfo.processInfo.environment["PRECIS_KERNELS"], !level.isEmpty, !isKernelLevel(level) {
            usageFailure("PRECIS_KERNELS=\(level) is not a kernel level (avx512, avx2 or portable)")
        }
        if arguments.first == "help", arguments.count > 1, !names.dropLast().contains(arguments[1]) {
            usageFailure("unknown command '\(arguments[1])' (\(names.dropLast().joined(separator: ", ")))")
        }
        let handlers = [SIGINT, SIGTERM].map(onSignal)
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            // A command-line mistake: the parser's message on one line, and where help is.
            let message = self.message(for: error).split(whereSeparator: \.isNewline).map {
                $0.trimmingCharacters(in: .whitespaces)
            }.joined(separator: " ")
            let command = arguments.first.flatMap { names.dropLast().contains($0) ? " \($0)" : nil } ?? ""
            usageFailure("\(message) (see 'precis\(command) --help')")
        }
        for handler in handlers { handler.cancel() }
    }

    /// Writes `message` as one `precis: error:` line and exits with 64, a command-line mistake.
    static func usageFailure(_ message: String) -> Never {
        let text = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
        FileHandle.standardError.write(Data("precis: error: \(text)\n".utf8))
        Foundation.exit(ExitCode.validationFailure.rawValue)
    }

    /// On `signal`: remove the temporary files being written, say "interrupted", and exit with
    /// 128 + the signal's number, as a shell reports it.
    static func onSignal(_ signal: Int32) -> DispatchSourceSignal {
        Foundation.signal(signal, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
        source.setEventHandler {
            AtomicFiles.abandon()
            FileHandle.standardError.write(Data("\nprecis: interrupted (nothing half-written was left behind)\n".utf8))
            Foundation.exit(128 + signal)
        }
        source.resume()
        return source
    }
}

/// The number of single-character insertions, deletions and substitutions that turn `a` into `b`.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let substitution = previous + (a[i - 1] == b[j - 1] ? 0 : 1)
            previous = row[j]
            row[j] = min(substitution, row[j] + 1, row[j - 1] + 1)
        }
    }
    return row[b.count]
}

/// Runs `body`, turning a thrown error into one `precis: error: ...` line on stderr and exit code 1;
/// a `DataError` with details adds one indented line for each, and a `ModelError` names `file`, the
/// weight file whose network it is about.
func reportingErrors(file: String? = nil, _ body: () throws -> Void) throws {
    keepFreedMemory()
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        // One line each, whatever a damaged file put into the message.
        func line(_ text: String) -> String {
            String(text.map { $0.isNewline || ($0.asciiValue.map { $0 < 32 } ?? false) ? " " : $0 })
        }
        let details = (error as? DataError)?.details ?? []
        // A model the weight file `file` describes that cannot be built is that file's problem.
        let head =
            (error as? DataError).map { "\($0.file): \($0.problem)" }
            ?? ((error as? ModelError).flatMap { e in file.map { "\($0): \(e)" } } ?? String(describing: error))
        let lines = ["precis: error: " + line(head)] + details.map { "  " + line($0) }
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        throw ExitCode(1)
    }
}

/// Prints `value` as JSON (sorted keys, pretty-printed).
func printJSON<T: Encodable>(_ value: T) throws {
    print(String(decoding: try JSONEncoder.precis.encode(value), as: UTF8.self))
}

/// What the command line adds to a refusal that `--force` overrides.
let forceHint = " (use --force to replace it)"

/// The library's problem with writing the file `path`, with the flag that overrides "exists".
func outputRefusal(_ path: String, force: Bool) -> String? {
    outputProblem(path, force: force).map { $0 == "exists" ? $0 + forceHint : $0 }
}

/// The library's problem with writing the folder `path`, with the flag that overrides "exists".
func folderRefusal(_ path: String, force: Bool) -> String? {
    folderOutputProblem(path, force: force).map { $0 == "exists" ? $0 + forceHint : $0 }
}
