import Foundation
import PrecisCore
import PrecisWeights
import PrecisWorkflows
import Testing

/// The command-line workflows, called as a library: on the shipped SimpleConvNet and the real
/// 5,000 MNIST digits, each in a scratch copy of the weight file.
@Suite(.serialized) struct WorkflowTests {
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Weights/simple-mnist5k.h5").path
    static let digits = try! Dataset.load(named: "mnist5k")

    /// A scratch folder with a copy of the shipped file; the caller removes the folder.
    func copy() throws -> (dir: String, store: WeightStore) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-wf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.shipped, toPath: dir + "/simple.h5")
        return (dir, try WeightStore(dir + "/simple.h5"))
    }

    /// The first `n` test images.
    func test(_ n: Int) -> TestImages { Self.digits.testImages(.first(count: n)) }

    @Test func int8WithoutAVariantIsCalibratedNowAndSaysSo() throws {
        let (dir, store) = try copy()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let evaluator = try Evaluator(store: store, dataset: Self.digits)
        let (entries, notes) = try evaluator.entries(try PrecisionSelection(parsing: "float32,int8,mxfp4"))
        #expect(entries.map(\.name) == ["float32", "int8-wchannel-au8z", "mxfp4"])
        #expect(entries[1].weights.hasPrefix("calibrated now: mse, 500 training images"))
        #expect(notes.count == 1 && notes[0].contains("not stored"))
    }

    /// What quantizing stores is what the precision report then runs: the same accuracy from the
    /// study's integer network and from the stored variant read back.
    @Test func storedInt8RunsAsQuantizingMeasuredIt() throws {
        let (dir, store) = try copy()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let study = try QuantizationStudy(
            spec: store.spec, tensors: store.master.tensors, dataset: Self.digits, calibrationSize: 200, seed: 1,
            selection: .first(count: 300))
        let summary = try Quantizer(.int8(Precision.defaultInt8Scheme, .minmax)).store(
            study, in: store, dataset: "mnist5k")
        #expect(summary.variant == "int8-wchannel-au8z")
        let reread = try WeightStore(store.path)
        let evaluator = try Evaluator(store: reread, dataset: Self.digits)
        let (entries, notes) = try evaluator.entries(try PrecisionSelection(parsing: "int8"))
        #expect(notes.isEmpty && entries.map(\.weights) == ["/variants/int8-wchannel-au8z"])
        let evaluation = try PrecisionEvaluation(
            spec: reread.spec, master: reread.master.tensors, entries: entries, test: test(300))
        let row = try #require(evaluation.results.first { $0.precision == "int8-wchannel-au8z" })
        #expect(row.accuracy == summary.result.accuracy)
        #expect(row.vsFloat32.differs == summary.result.vsFloat32.differs)
    }

    /// A drop budget of 0 keeps layers in float32 until nothing changes, and the stored variant says
    /// which, by its name and its list.
    @Test func mixedFormatVariantIsNamedAndListed() throws {
        let (dir, store) = try copy()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let study = try QuantizationStudy(
            spec: store.spec, tensors: store.master.tensors, dataset: Self.digits, calibrationSize: 100, seed: 0,
            selection: .first(count: 200))
        var quantizer = Quantizer(.format(Precision(name: "mxfp4")!.format!))
        quantizer.maxDrop = 0
        let summary = try quantizer.store(study, in: store, dataset: "mnist5k")
        let steps = try #require(summary.mixedPrecision)
        #expect(-steps.last!.result.vsFloat32.changePP <= 0)
        #expect(summary.floatLayers == steps.last!.floatLayers)
        #expect(
            Precision(name: summary.variant)
                == .format(Precision(name: "mxfp4")!.format!, mixed: !summary.floatLayers.isEmpty))
        #expect(try WeightStore(store.path).formatVariantNames == [summary.variant])
        let lines = summary.lines(sample: study.selectionText, ranking: false, format: "mxfp4")
        #expect(lines[0].contains("stored /variants/\(summary.variant)"))
    }

    /// GPTQ's variant is stored beside rounding to nearest, keeps its scales, and runs as quantizing
    /// measured it; without a stored variant the report refuses the name rather than rounding to nearest.
    @Test func gptqVariantIsStoredBesideNearest() throws {
        let (dir, store) = try copy()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let study = try QuantizationStudy(
            spec: store.spec, tensors: store.master.tensors, dataset: Self.digits, calibrationSize: 100, seed: 0,
            selection: .first(count: 300))
        let int4 = Precision(name: "int4-g32")!.format!
        let evaluator = try Evaluator(store: store, dataset: Self.digits)
        #expect(throws: ModelError.self) { try evaluator.entries(try PrecisionSelection(parsing: "int4-g32-gptq")) }
        _ = try Quantizer(.format(int4)).store(study, in: store, dataset: "mnist5k")
        let summary = try Quantizer(.format(int4.rounded(.gptq))).store(study, in: store, dataset: "mnist5k")
        #expect(summary.variant == "int4-g32-gptq" && summary.calibrationImages == 100)
        let reread = try WeightStore(store.path)
        #expect(reread.formatVariantNames.sorted() == ["int4-g32", "int4-g32-gptq"])
        let nearest = try reread.variant("int4-g32", of: FormatModel.self).model
        let gptq = try reread.variant("int4-g32-gptq", of: FormatModel.self).model
        #expect(gptq.weights.keys.sorted() == nearest.weights.keys.sorted())
        #expect(gptq.weights.allSatisfy { $0.value.scales == nearest.weights[$0.key]!.scales })
        #expect(gptq.weights.contains { $0.value.codes != nearest.weights[$0.key]!.codes })
        let (entries, _) = try Evaluator(store: reread, dataset: Self.digits).entries(
            try PrecisionSelection(parsing: "int4-g32-gptq"))
        let evaluation = try PrecisionEvaluation(
            spec: reread.spec, master: reread.master.tensors, entries: entries, test: test(300))
        #expect(evaluation.results[0].accuracy == summary.result.accuracy)
    }

    /// Equalized variants, int8 and number formats, store their equalization and run as quantizing
    /// measured them; an unequalized study refuses an equalized scheme.
    @Test func equalizedVariantsRunAsMeasured() throws {
        let (dir, store) = try copy()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let study = try QuantizationStudy(
            spec: store.spec, tensors: store.master.tensors, dataset: Self.digits, calibrationSize: 100, seed: 0,
            selection: .first(count: 300))
        let scheme = QuantScheme(weights: .perTensor, activations: .uint8Asymmetric, equalized: true)
        #expect(throws: ModelError.self) { try study.quantize(scheme, .mse) }
        let int8 = try Quantizer(.int8(scheme, .mse)).store(study, in: store, dataset: "mnist5k")
        let nvfp4 = try Quantizer(.format(Precision(name: "nvfp4-cle")!.format!)).store(
            study, in: store, dataset: "mnist5k")
        #expect(int8.variant == "int8-wtensor-au8z-cle" && nvfp4.variant == "nvfp4-cle")
        let reread = try WeightStore(store.path)
        let model = try reread.variant("int8-wtensor-au8z-cle", of: QuantizedModel.self).model
        #expect(model.equalization == (try study.equalized().equalization) && model.scheme == scheme)
        let (entries, _) = try Evaluator(store: reread, dataset: Self.digits).entries(
            try PrecisionSelection(parsing: "int8-wtensor-au8z-cle,nvfp4-cle"))
        let evaluation = try PrecisionEvaluation(
            spec: reread.spec, master: reread.master.tensors, entries: entries, test: test(300))
        #expect(evaluation.results.map(\.accuracy) == [int8.result.accuracy, nvfp4.result.accuracy])
    }

    /// The options name one target: equalization and rounding go into the format's name, and into
    /// the int8 scheme's.
    @Test func quantizeOptionsNameTheTarget() {
        let s = Precision.defaultInt8Scheme, int4 = Precision(name: "int4-g32")!.format!
        let format = Quantizer.Target(
            format: int4, rounding: .gptq, equalize: true, scheme: s, methods: [.minmax], dynamic: false)
        #expect(format == .format(Precision(name: "int4-g32-cle-gptq")!.format!.weightRanges(.minmax)))
        let int8 = Quantizer.Target(
            format: nil, rounding: .nearest, equalize: true, scheme: s, methods: [.mse, .minmax], dynamic: false)
        #expect(int8 == .int8(QuantScheme(weights: .perChannel, activations: .uint8Asymmetric, equalized: true), .mse))
    }

    /// A format's explanation ranks exactly the layers it rounds: convolutions and affine layers.
    @Test func explanationCoversTheFormatsLayers() throws {
        let (dir, store) = try copy()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let evaluator = try Evaluator(store: store, dataset: Self.digits)
        let images = test(100)
        let float32 = try Network<Float>(spec: store.spec, parameters: store.master.tensors)
        let explanation = try evaluator.explanation(
            Precision(name: "nvfp4")!, test: images, float32Predicted: float32.classify(images.images, count: 100))
        #expect(
            explanation.layers.map(\.layer).sorted() == quantizedLayers(store.spec).map { store.spec.layerNames[$0] })
        #expect(explanation.precision == "nvfp4" && explanation.simulated)
    }

    @Test func pictureReportIsWrittenWhole() throws {
        let (dir, store) = try copy()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = dir + "/report"
        let line = try PictureReportWriter(
            store: store, dataset: Self.digits, folder: folder, selection: .first(count: 200)
        ).write()
        let files = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(files.contains("index.html") && files.filter { $0.hasSuffix(".svg") }.count == files.count - 1)
        #expect(line.hasPrefix("\(folder)/index.html: \(files.count - 1) charts"))
        // The sizes chart names float16 and every standard format.
        let pareto = try String(contentsOfFile: folder + "/pareto.svg", encoding: .utf8)
        #expect((["float16"] + FormatMode.standard.map(\.name)).allSatisfy { pareto.contains(">\($0)<") })
    }

    @Test func trainingRefusesADataSetThatDoesNotFit() throws {
        let spec = try ModelSpec.named("simple", inputShape: [1, 28, 28])
        let small = Dataset(
            name: "small", imageShape: [1, 8, 8], classes: 10, trainImages: [], trainLabels: [], testImages: [],
            testLabels: [])
        #expect(throws: ModelError.self) { try TrainingRun(spec: spec, dataset: small, config: TrainingConfig()) }
    }

    /// A fresh network that normalizes its input learns its statistics from the training images (each
    /// channel's mean and deviation over every pixel) and the weight file keeps them; given ones win.
    @Test func trainingRecordsTheInputNormalization() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-wf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = RandomSource(seed: 3)
        let images = (0..<(40 * 3 * 16)).map { at in Float(at / 16 % 3) * 0.3 + Float(rng.uniform()) * 0.2 }
        let data = Dataset(
            name: "three", imageShape: [3, 4, 4], classes: 3, trainImages: images,
            trainLabels: (0..<40).map { $0 % 3 }, testImages: Array(images.prefix(10 * 48)),
            testLabels: (0..<10).map { $0 % 3 })
        var config = TrainingConfig()
        (config.epochs, config.batchSize) = (1, 10)
        let spec = try ModelSpec.named("conv(4,3,pad=1) relu gap affine(3)", inputShape: [3, 4, 4]).normalizingInput()
        var run = try TrainingRun(spec: spec, dataset: data, config: config)
        run.output = dir + "/auto.h5"
        _ = try run.run()
        let written = try WeightStore(dir + "/auto.h5").master.tensors
        for c in 0..<3 {
            var values: [Double] = []
            for i in 0..<40 { values += images[(i * 3 + c) * 16..<(i * 3 + c + 1) * 16].map { Double($0) } }
            let mean: Double = values.reduce(0, +) / Double(values.count)
            let squares: [Double] = values.map { ($0 - mean) * ($0 - mean) }
            let std = (squares.reduce(0, +) / Double(values.count)).squareRoot()
            #expect(abs(written["00_normalize1/mean"]!.data[c] - mean) < 1e-6)
            #expect(abs(written["00_normalize1/std"]!.data[c] - std) < 1e-6)
        }
        run.normalization = try ChannelStatistics(parsing: "0.5/0.25")
        run.output = dir + "/given.h5"
        _ = try run.run()
        let given = try WeightStore(dir + "/given.h5").master.tensors
        #expect(
            given["00_normalize1/mean"]!.data == [0.5, 0.5, 0.5]
                && given["00_normalize1/std"]!.data == [0.25, 0.25, 0.25])
    }

    /// One epoch in IEEE half writes a file whose weights are the network's, rounded to half.
    @Test func float16TrainingWritesItsWeights() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-wf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var data = Self.digits
        data.trainImages = Array(data.trainImages.prefix(300 * 784))
        data.trainLabels = Array(data.trainLabels.prefix(300))
        var config = TrainingConfig()
        (config.epochs, config.precision, config.optimizer, config.evaluationSample) = (1, .float16, .momentum, 100)
        var run = try TrainingRun(
            spec: try ModelSpec.named("simple", inputShape: [1, 28, 28]), dataset: data, config: config)
        run.output = dir + "/half.h5"
        let history = try run.run()
        #expect(history.testAccuracy.count == 1 && history.iterations == 3)
        let written = try WeightStore(dir + "/half.h5").master
        #expect(written.training?.precision == "float16")
        #expect(written.tensors.values.allSatisfy { t in t.data.allSatisfy { Double(Float16($0)) == $0 } })
        #expect(TrainingSummary(run: run, history: history).text.contains("after 1 epoch;"))
    }
}
