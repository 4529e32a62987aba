import ArgumentParser
import Foundation
import PrecisCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training and inference speed of DeepConvNet at batch 100 (medians).")

    @Option(help: "Timed repetitions per measurement.")
    var runs = 5

    @Flag(help: "Per-layer forward and backward times of a training step (medians).")
    var layers = false

    @Flag(help: "GEMM GFLOP/s (float32) for every DeepConvNet layer shape, and int8 GOP/s for the GEMMs of integer inference.")
    var gemm = false

    @Flag(help: "Print the results as JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let spec = ModelSpec.deepConvNet
            var results: [String: Any] = ["runs": runs, "batch": 100, "model": spec.name]
            let net = try Network<Float>(spec: spec, seed: 0)
            let x: Tensor<Float> = Tensor(shape: [100, 1, 28, 28], data: (0..<78_400).map { Float(($0 * 7919) % 256) / 255 })
            let t = (0..<100).map { $0 % 10 }
            let optimizer = Optimizer<Float>(.adam)
            let step = median(runs) {
                net.gradient(x, t, inputGradient: false)
                optimizer.update(net.parameters.map(\.parameter))
            }
            results["train_step_ms"] = step * 1000
            if !json { print(String(format: "training step (forward + backward + Adam): %.1f ms", step * 1000)) }
            var infer: [String: Double] = [:]
            func inference<T: NetworkScalar>(_ mode: PrecisionMode, _ type: T.Type) {
                let n = net.converted(to: T.self, storage: mode.storage)
                let xt = x.converted(to: T.self)
                let s = median(mode == .float16 ? max(1, runs / 2) : runs) { _ = n.predict(xt) }
                infer[mode.rawValue] = 100 / s
                if !json { print(String(format: "inference %@: %.0f images/s", mode.rawValue, 100 / s)) }
            }
            inference(.float64, Double.self)
            inference(.float32, Float.self)
            inference(.float16, Float16.self)
            inference(.float16Acc32, Float.self)
            inference(.bfloat16Acc32, Float.self)
            // int8: per-channel weights, uint8 activations calibrated (min-max) on the same batch.
            let observers = observeActivations(net, images: x.data, count: 100)
            let quantized = try FakeQuantNetwork(spec: spec, tensors: net.tensorValues(), scheme: QuantScheme(weights: .perChannel, activations: .uint8Asymmetric),
                                                 observers: observers, method: .minmax)
            let integer = try IntegerNetwork(spec: spec, model: quantized.model, tensors: net.tensorValues())
            infer["int8"] = 100 / median(runs) { _ = integer.predict(x) }
            if !json { print(String(format: "inference int8 (wchannel-au8z, integer-only, %@): %.0f images/s", int8GEMMPath, infer["int8"]!)) }
            results["inference_images_per_second"] = infer
            if layers {
                let times = net.profile(x, t, runs: runs)
                let rows: [[String: Any]] = zip(net.layerNames, times).map { ["layer": $0, "forward_ms": $1.forward * 1000, "backward_ms": $1.backward * 1000] }
                results["layers"] = rows
                if !json {
                    for r in rows {
                        print(String(format: "%-12@ forward %7.2f ms  backward %7.2f ms", r["layer"] as! String, r["forward_ms"] as! Double, r["backward_ms"] as! Double))
                    }
                }
            }
            if gemm {
                var rows: [[String: Any]] = []
                let shapes = try GEMMShape.of(spec, batch: 100)
                var conv: [Double] = [], affine: [Double] = []
                for shape in shapes {
                    let g = gemmGFLOPS(shape, runs: runs, as: Float.self)
                    if shape.isConvolution { conv.append(g) } else { affine.append(g) }
                    rows.append(["shape": shape.description, "gflops": g])
                    if !json { print(String(format: "gemm %-38@ %7.1f GFLOP/s", shape.description, g)) }
                }
                func geomean(_ xs: [Double]) -> Double { exp(xs.map(log).reduce(0, +) / Double(max(1, xs.count))) }
                results["gemm"] = rows
                results["gemm_geomean_gflops"] = geomean(conv)
                results["gemm_affine_geomean_gflops"] = geomean(affine)
                if !json {
                    print(String(format: "gemm geometric mean, convolution shapes: %.1f GFLOP/s (affine shapes: %.1f)", geomean(conv), geomean(affine)))
                }
                var int8Rows: [[String: Any]] = []
                for shape in try GEMMShape.int8(spec, batch: 100) {
                    let fast = int8GEMMGOPS(shape, runs: runs), portable = int8GEMMGOPS(shape, runs: runs, portable: true)
                    int8Rows.append(["shape": shape.description, "gops": fast, "portable_gops": portable])
                    if !json {
                        print(String(format: "int8 gemm %-32@ %7.1f GOP/s (%@), portable %6.1f GOP/s", shape.description, fast, int8GEMMPath, portable))
                    }
                }
                let gops = int8Rows.map { $0["gops"] as! Double }
                results["int8_gemm"] = int8Rows
                results["int8_gemm_geomean_gops"] = geomean(gops)
                if !json { print(String(format: "int8 gemm geometric mean: %.1f GOP/s", geomean(gops))) }
                results["int8_gemm_path"] = int8GEMMPath
            }
            if json { try printJSON(results) }
        }
    }
}

/// Median wall time of `runs` calls of `body`, after one warm-up call.
func median(_ runs: Int, _ body: () -> Void) -> Double {
    body()
    let times = (0..<runs).map { _ -> Double in
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }.sorted()
    return times[times.count / 2]
}
