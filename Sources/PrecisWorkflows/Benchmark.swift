import Foundation
import PrecisCore

/// Training and inference speed of a network (DeepConvNet unless told) at batch 100 on 28×28
/// images, as medians of `runs` repetitions:
/// a training step, inference in every floating mode, int8 and the number formats, and on request
/// each layer's times and the GEMM rates against the cores' peak.
public struct Benchmark {
    public let runs: Int
    /// Per-layer forward and backward times.
    public var layers = false
    /// GEMM GFLOP/s and int8 GOP/s for every layer shape.
    public var gemm = false
    /// The network measured.
    public var spec = ModelSpec.deepConvNet

    public init(runs: Int) { self.runs = runs }

    /// Measures everything asked, passing each line a person reads to `say` as it is measured.
    public func run(say: (String) -> Void = { _ in }) throws -> BenchReport {
        var report = BenchReport(runs: runs, model: spec.name, kernels: kernelLevel)
        say("vector kernels: \(kernelLevel)")
        let net = try Network<Float>(spec: spec, seed: 0)
        let x: Tensor<Float> = Tensor(
            shape: [100, 1, 28, 28], data: (0..<78_400).map { Float(($0 * 7919) % 256) / 255 })
        let t = (0..<100).map { $0 % 10 }
        let optimizer = Optimizer<Float>(.adam)
        let step = median(runs) {
            net.gradient(x, t, inputGradient: false)
            optimizer.update(net.parameters.map(\.parameter))
        }
        report.trainStepMS = step * 1000
        say(String(format: "training step (forward + backward + Adam): %.1f ms", step * 1000))
        // The same step with the training images augmented first, as the trainer does per batch.
        let augmentation = try Augmentation(parsing: "shift:2,rotate:10,scale:0.1,crop:2")
        var rng = RandomSource(seed: 1)
        let augmented = median(runs) {
            var images = x.data
            augmentation.apply(&images, count: 100, shape: [1, 28, 28], rng: &rng)
            net.gradient(Tensor(shape: x.shape, data: images), t, inputGradient: false)
            optimizer.update(net.parameters.map(\.parameter))
        }
        report.trainStepAugmentedMS = augmented * 1000
        say(
            String(
                format: "training step with --augment %@: %.1f ms (%.2fx)", augmentation.description,
                augmented * 1000, augmented / step))
        struct Inference: NetworkBody {
            let x: Tensor<Float>, runs: Int
            func callAsFunction<T: NetworkScalar>(_ n: Network<T>) -> Double {
                let xt = x.converted(to: T.self)
                return 100 / median(runs) { _ = n.predict(xt) }
            }
        }
        for mode in PrecisionMode.allCases {
            let rate = try mode.withNetwork(
                spec: spec, tensors: net.tensorValues(),
                Inference(x: x, runs: mode == .float16 ? max(1, runs / 2) : runs))
            report.inferenceImagesPerSecond[mode.rawValue] = rate
            say(String(format: "inference %@: %.0f images/s", mode.rawValue, rate))
        }
        // int8: per-channel weights, uint8 activations calibrated (min-max) on the same batch.
        let observers = observeActivations(net, images: x.data, count: 100)
        let quantized = try QuantizedModel(
            spec: spec, tensors: net.tensorValues(),
            scheme: QuantScheme(weights: .perChannel, activations: .uint8Asymmetric),
            observers: observers, method: .minmax)
        let integer = try IntegerNetwork(spec: spec, model: quantized, tensors: net.tensorValues())
        let int8 = 100 / median(runs) { _ = integer.predict(x) }
        report.inferenceImagesPerSecond["int8"] = int8
        report.int8GemmPath = int8GEMMPath
        say(String(format: "inference int8 (wchannel-au8z, integer-only, %@): %.0f images/s", int8GEMMPath, int8))
        // The number formats, their input scales calibrated on the same batch.
        let float32 = report.inferenceImagesPerSecond[PrecisionMode.float32.rawValue] ?? 1
        for mode in FormatMode.standard {
            let simulated = try FormatNetwork(
                spec: spec, tensors: net.tensorValues(), mode: mode, observers: observers)
            let rate = 100 / median(runs) { _ = simulated.predict(x) }
            report.inferenceImagesPerSecond[mode.name] = rate
            say(
                String(
                    format: "inference %@ (simulated): %.0f images/s, %.2fx float32", mode.name, rate,
                    rate / float32))
        }
        if layers {
            let training = net.profile(x, t, runs: runs), inference = net.inferenceProfile(x, runs: runs)
            report.layers = net.layerNames.indices.map { i in
                BenchReport.LayerTime(
                    layer: net.layerNames[i], forwardMS: training[i].map { $0.forward * 1000 },
                    backwardMS: training[i].map { $0.backward * 1000 }, inferenceMS: inference[i].map { $0 * 1000 })
            }
            do {
                say("per layer (a layer run inside the one above it: fused)")
                var table = TextTable([
                    ("layer", .left), ("train forward ms", .right), ("train backward ms", .right),
                    ("inference ms", .right),
                ])
                func ms(_ t: Double?) -> String { t.map { String(format: "%.2f", $0) } ?? "fused" }
                for l in report.layers ?? [] {
                    table.add([l.layer, ms(l.forwardMS), ms(l.backwardMS), ms(l.inferenceMS)])
                }
                for line in table.lines() { say(line) }
            }
        }
        if gemm { try measureGEMMs(spec, &report, say) }
        return report
    }

    /// GFLOP/s of every float32 GEMM as the layers run them, and GOP/s of the int8 GEMMs.
    func measureGEMMs(_ spec: ModelSpec, _ report: inout BenchReport, _ say: (String) -> Void) throws {
        func geomean(_ xs: [Double]) -> Double { exp(xs.map(log).reduce(0, +) / Double(max(1, xs.count))) }
        var conv: [Double] = [], affine: [Double] = [], rows: [BenchReport.GEMM] = []
        for shape in try GEMMShape.of(spec, batch: 100) {
            let g = gemmGFLOPS(shape, runs: runs, as: Float.self)
            if shape.isConvolution { conv.append(g) } else { affine.append(g) }
            rows.append(BenchReport.GEMM(shape: shape.description, rate: g, portableRate: nil))
            say(String(format: "gemm %-38@ %7.1f GFLOP/s", shape.description, g))
        }
        report.gemm = rows
        report.gemmGeomeanGFLOPS = geomean(conv)
        report.gemmAffineGeomeanGFLOPS = geomean(affine)
        say(
            String(
                format: "gemm geometric mean, convolution shapes: %.1f GFLOP/s (affine shapes: %.1f)", geomean(conv),
                geomean(affine)))
        var int8Rows: [BenchReport.GEMM] = []
        for shape in try GEMMShape.int8(spec, batch: 100) {
            let fast = int8GEMMGOPS(shape, runs: runs), portable = int8GEMMGOPS(shape, runs: runs, portable: true)
            int8Rows.append(BenchReport.GEMM(shape: shape.description, rate: fast, portableRate: portable))
            say(
                String(
                    format: "int8 gemm %-32@ %7.1f GOP/s (%@), portable %6.1f GOP/s", shape.description, fast,
                    int8GEMMPath, portable))
        }
        report.int8Gemm = int8Rows
        report.int8GemmGeomeanGOPS = geomean(int8Rows.map(\.rate))
        say(String(format: "int8 gemm geometric mean: %.1f GOP/s", geomean(int8Rows.map(\.rate))))
        // What bounds those rates: the multiply-add peak of every core, measured now.
        guard let peak = peakRates(runs: runs) else { return }
        (report.peakGFLOPS, report.peakInt8GOPS) = (peak.float32GFLOPS, peak.int8GOPS)
        say(
            String(
                format: "peak (register-only multiply-adds on %d cores): float32 %.1f GFLOP/s (convolution GEMMs "
                    + "at %.0f%%), int8 VNNI %.1f GOP/s (int8 GEMMs at %.0f%%)", peak.cores, peak.float32GFLOPS,
                100 * geomean(conv) / peak.float32GFLOPS, peak.int8GOPS,
                100 * geomean(int8Rows.map(\.rate)) / peak.int8GOPS))
    }
}

/// `precis bench --json`. Rates are medians: images/s, GFLOP/s (float32 GEMMs) or GOP/s (int8).
public struct BenchReport: Encodable {
    /// Median times of a layer in a training step and in inference; nil (null) where the layer
    /// runs inside the one before it.
    public struct LayerTime: Encodable {
        let layer: String, forwardMS: Double?, backwardMS: Double?, inferenceMS: Double?
        private enum CodingKeys: String, CodingKey {
            case layer, forwardMS = "forward_ms", backwardMS = "backward_ms", inferenceMS = "inference_ms"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(layer, forKey: .layer)
            try c.encode(forwardMS, forKey: .forwardMS)
            try c.encode(backwardMS, forKey: .backwardMS)
            try c.encode(inferenceMS, forKey: .inferenceMS)
        }
    }

    public struct GEMM: Encodable {
        let shape: String, rate: Double, portableRate: Double?
        private enum CodingKeys: String, CodingKey { case shape, rate, portableRate = "portable_rate" }
    }

    var schema = ReportSchema.bench
    let runs: Int, model: String, kernels: String
    var batch = 100
    var trainStepMS = 0.0, trainStepAugmentedMS = 0.0
    var inferenceImagesPerSecond: [String: Double] = [:]
    var int8GemmPath = ""
    var layers: [LayerTime]?
    var gemm: [GEMM]?, gemmGeomeanGFLOPS: Double?, gemmAffineGeomeanGFLOPS: Double?
    var int8Gemm: [GEMM]?, int8GemmGeomeanGOPS: Double?
    var peakGFLOPS: Double?, peakInt8GOPS: Double?

    private enum CodingKeys: String, CodingKey {
        case schema, runs, model, kernels, batch, trainStepMS = "train_step_ms", inferenceImagesPerSecond =
            "inference_images_per_second", trainStepAugmentedMS = "train_step_augmented_ms"
        case int8GemmPath = "int8_gemm_path", layers, gemm, gemmGeomeanGFLOPS = "gemm_geomean_gflops"
        case gemmAffineGeomeanGFLOPS = "gemm_affine_geomean_gflops", int8Gemm = "int8_gemm", int8GemmGeomeanGOPS =
            "int8_gemm_geomean_gops"
        case peakGFLOPS = "peak_gflops", peakInt8GOPS = "peak_int8_gops"
    }
}

/// Median wall time of `runs` calls of `body`, after one warm-up call.
public func median(_ runs: Int, _ body: () -> Void) -> Double {
    body()
    let times = (0..<runs).map { _ -> Double in
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }.sorted()
    return times[times.count / 2]
}
