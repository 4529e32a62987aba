import ArgumentParser
import Foundation
import PrecisCore
import PrecisWorkflows

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training and inference speed of a network at batch 100 (medians).")

    @Option(help: "The network: deep (the default), simple, resnet20, mobilenetv2, or a layer list for 28x28 images.")
    var model = "deep"

    @Option(help: "Timed repetitions per measurement.")
    var runs = 5

    @Flag(help: "Per-layer forward and backward times of a training step (medians).")
    var layers = false

    @Flag(
        help: """
            GEMM GFLOP/s (float32) for every DeepConvNet layer shape, and int8 GOP/s for the GEMMs of integer \
            inference.
            """)
    var gemm = false

    @Flag(help: "Print the results as JSON (schema \(ReportSchema.bench)).")
    var json = false

    func validate() throws {
        guard (1...10_000).contains(runs) else { throw ValidationError("--runs must be from 1 to 10000") }
    }

    func run() throws {
        try reportingErrors {
            var benchmark = Benchmark(runs: runs)
            (benchmark.layers, benchmark.gemm) = (layers, gemm)
            benchmark.spec = try ModelSpec.named(model)
            let report = try benchmark.run { if !json { print($0) } }
            if json { try printJSON(report) }
        }
    }
}
