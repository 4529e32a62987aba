import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a trained network in several precisions.",
        discussion: """
            The same stored parameters are rounded into Network<Double>, Network<Float> and Network<Float16>. \
            When the file holds a stored variant for a precision (precis export), eval runs that variant's tensors.
            """)

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Option(help: "Comma-separated precisions (\(PrecisionMode.allCases.map(\.rawValue).joined(separator: ", "))), or all.")
    var precision = "float64,float32,float16"

    @OptionGroup var data: DataOptions

    @Option(help: "Evaluate only the first N test images.")
    var limit: Int?

    @Option(help: ArgumentHelp("Write each precision's logits to PREFIX-<precision>.f64 (little-endian float64, images × classes).",
                               valueName: "prefix"))
    var saveLogits: String?

    @Flag(help: "Store the results in the file under /evaluations/<precision>.")
    var record = false

    @Flag(help: "Print the results as JSON.")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    /// The modes asked for, in order.
    var modes: [String] {
        precision == "all" ? PrecisionMode.allCases.map(\.rawValue) : precision.split(separator: ",").map(String.init)
    }

    func validate() throws {
        guard !modes.isEmpty else { throw ValidationError("--precision needs at least one mode") }
        if let bad = modes.first(where: { PrecisionMode(rawValue: $0) == nil }) {
            throw ValidationError("unknown precision '\(bad)' (\(PrecisionMode.allCases.map(\.rawValue).joined(separator: ", ")), all)")
        }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let weights = try WeightFile.read(file)
            let variants = try WeightFile.variants(file)
            let dataset = try data.load(fallback: weights.dataset)
            guard dataset.imageShape == weights.spec.inputShape else {
                throw DataError(file: file, problem: "the network takes \(shapeText(weights.spec.inputShape)) images, \(dataset.name) has \(shapeText(dataset.imageShape))")
            }
            let n = min(limit ?? dataset.testCount, dataset.testCount)
            let images = Array(dataset.testImages[0..<n * dataset.imageShape.reduce(1, *)])
            let labels = Array(dataset.testLabels[0..<n])
            func run(_ mode: String) throws -> (predicted: [Int], seconds: Double, source: String) {
                let progress = ProgressLine(quiet: quiet || json)
                // A stored variant holds exactly the values the mode's storage rounds to.
                let variant = mode.hasPrefix("float16") && variants.contains("float16") ? "float16" : nil
                let source = variant.map { "/variants/\($0)" } ?? "/model"
                let tensors = try variant.map { try WeightFile.readVariant(file, spec: weights.spec, precision: $0) } ?? weights.tensors
                let start = Date()
                let logits = try self.logits(weights.spec, tensors, mode: mode, images: images, count: n) { done in
                    progress.update(mode, done: done, total: n, unit: "img")
                }
                let seconds = Date().timeIntervalSince(start)
                progress.clear()
                if let saveLogits {
                    let url = URL(fileURLWithPath: "\(saveLogits)-\(mode).f64")
                    do { try logits.data.withUnsafeBytes { try Data($0).write(to: url) } } catch {
                        throw DataError(file: url.path, problem: "cannot write logits: \(error.localizedDescription)")
                    }
                }
                return (argmaxRows(logits), seconds, source)
            }
            // float32 is the reference for disagreements: evaluate it first even if not asked for.
            let float32 = try run("float32")
            var rows: [[String: Any]] = []
            for mode in modes {
                let (predicted, seconds, source) = mode == "float32" ? float32 : try run(mode)
                let correct = zip(predicted, labels).filter { $0 == $1 }.count
                rows.append([
                    "precision": mode, "accuracy": Double(correct) / Double(n), "correct": correct, "images": n,
                    "differs_from_float32": zip(predicted, float32.predicted).filter { $0 != $1 }.count,
                    "seconds": seconds, "images_per_second": Double(n) / seconds, "weights": source,
                ])
            }
            if record {
                let recordedAt = ISO8601DateFormatter().string(from: Date())
                try WeightFile.record(file, results: rows.map { r in
                    (r["precision"] as! String, [
                        ("dataset", .string(dataset.name)), ("images", .int(n)), ("accuracy", .double(r["accuracy"] as! Double)),
                        ("correct", .int(r["correct"] as! Int)), ("differs_from_float32", .int(r["differs_from_float32"] as! Int)),
                        ("seconds", .double(r["seconds"] as! Double)), ("weights", .string(r["weights"] as! String)),
                        ("recorded_at", .string(recordedAt)),
                    ])
                })
            }
            if json {
                try printJSON(["file": file, "dataset": dataset.name, "model": weights.spec.name, "images": n, "results": rows] as [String: Any])
                return
            }
            print("\(file): \(weights.spec.name) on \(dataset.name), \(n) test images")
            print("precision       accuracy  differs-from-float32  seconds  images/s  weights")
            for r in rows {
                let name = (r["precision"] as! String).padding(toLength: 14, withPad: " ", startingAt: 0)
                print(String(format: "%@  %8@  %20d  %7.2f  %8.0f  %@", name, percent(r["accuracy"] as! Double),
                             r["differs_from_float32"] as! Int, r["seconds"] as! Double, r["images_per_second"] as! Double,
                             r["weights"] as! String))
            }
            if record { print("recorded under /evaluations in \(file)") }
        }
    }

    /// Logits of `count` images with `tensors` rounded to `mode`'s scalar type.
    func logits(_ spec: ModelSpec, _ tensors: [String: Tensor<Double>], mode: String, images: [Float], count: Int,
                progress: (Int) -> Void) throws -> Tensor<Double> {
        let mode = PrecisionMode(rawValue: mode)!
        func run<T: NetworkScalar>(_ type: T.Type) throws -> Tensor<Double> {
            let net = try Network<T>(spec: spec, parameters: tensors, storage: mode.storage)
            var out: [Double] = []
            let per = spec.inputShape.reduce(1, *), chunk = 1000
            for start in stride(from: 0, to: count, by: chunk) {
                let n = min(chunk, count - start)
                out += net.logits(Array(images[start * per..<(start + n) * per]), count: n).data
                progress(start + n)
            }
            return Tensor(shape: [count, spec.classes], data: out)
        }
        switch mode {
        case .float64: return try run(Double.self)
        case .float16: return try run(Float16.self)
        case .float32, .float16Acc32, .bfloat16Acc32: return try run(Float.self)
        }
    }
}
