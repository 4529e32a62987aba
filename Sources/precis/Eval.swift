import ArgumentParser
import Foundation
import PrecisCore

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a trained network in several precisions.",
        discussion: "The same stored parameters are rounded into Network<Double>, Network<Float> and Network<Float16>.")

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Option(help: "Comma-separated precisions: float64, float32, float16.")
    var precision = "float64,float32,float16"

    @OptionGroup var data: DataOptions

    @Option(help: "Evaluate only the first N test images.")
    var limit: Int?

    @Flag(help: "Print the results as JSON.")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    static let known = ["float64", "float32", "float16"]

    func validate() throws {
        let modes = precision.split(separator: ",").map(String.init)
        guard !modes.isEmpty else { throw ValidationError("--precision needs at least one mode") }
        if let bad = modes.first(where: { !Self.known.contains($0) }) {
            throw ValidationError("unknown precision '\(bad)' (\(Self.known.joined(separator: ", ")))")
        }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let weights = try WeightFile(path: file)
            let dataset = try data.load(fallback: weights.dataset)
            guard dataset.imageShape == weights.spec.inputShape else {
                throw DataError(file: file, problem: "the network takes \(shapeText(weights.spec.inputShape)) images, \(dataset.name) has \(shapeText(dataset.imageShape))")
            }
            let n = min(limit ?? dataset.testCount, dataset.testCount)
            let images = Array(dataset.testImages[0..<n * dataset.imageShape.reduce(1, *)])
            let labels = Array(dataset.testLabels[0..<n])
            let modes = precision.split(separator: ",").map(String.init)
            let progress = ProgressLine(quiet: quiet || json)
            func run(_ mode: String) throws -> (predicted: [Int], seconds: Double) {
                let start = Date()
                let predicted = try classify(weights, mode: mode, images: images, count: n) { done in
                    progress.update(mode, done: done, total: n, unit: "img")
                }
                progress.clear()
                return (predicted, Date().timeIntervalSince(start))
            }
            // float32 is the reference for disagreements: evaluate it first even if not asked for.
            let float32 = try run("float32")
            var rows: [[String: Any]] = []
            for mode in modes {
                let (predicted, seconds) = mode == "float32" ? float32 : try run(mode)
                let reference = float32.predicted
                let correct = zip(predicted, labels).filter { $0 == $1 }.count
                rows.append([
                    "precision": mode, "accuracy": Double(correct) / Double(n), "correct": correct, "images": n,
                    "differs_from_float32": zip(predicted, reference).filter { $0 != $1 }.count,
                    "seconds": seconds, "images_per_second": Double(n) / seconds,
                ])
            }
            if json {
                try printJSON(["file": file, "dataset": dataset.name, "model": weights.spec.name, "images": n, "results": rows] as [String: Any])
                return
            }
            print("\(file): \(weights.spec.name) on \(dataset.name), \(n) test images")
            print("precision  accuracy  differs-from-float32  seconds  images/s")
            for r in rows {
                let name = (r["precision"] as! String).padding(toLength: 9, withPad: " ", startingAt: 0)
                print(String(format: "%@  %8@  %20d  %7.2f  %8.0f", name, percent(r["accuracy"] as! Double),
                             r["differs_from_float32"] as! Int, r["seconds"] as! Double, r["images_per_second"] as! Double))
            }
        }
    }

    /// Predicted classes of `count` images with the weights rounded to `mode`'s scalar type.
    func classify(_ w: WeightFile, mode: String, images: [Float], count: Int, progress: (Int) -> Void) throws -> [Int] {
        func run<T: NetworkScalar>(_ type: T.Type) throws -> [Int] {
            let net = try Network<T>(spec: w.spec, parameters: w.tensors)
            var out: [Int] = []
            let per = w.spec.inputShape.reduce(1, *), chunk = 1000
            for start in stride(from: 0, to: count, by: chunk) {
                let n = min(chunk, count - start)
                out += net.classify(Array(images[start * per..<(start + n) * per]), count: n)
                progress(start + n)
            }
            return out
        }
        switch mode {
        case "float64": return try run(Double.self)
        case "float32": return try run(Float.self)
        default: return try run(Float16.self)
        }
    }
}
