import Foundation
import PrecisCore
import Testing

@testable import PrecisWeights

/// Weight files written by the tool, read back, and damaged in every way the reader must catch.
@Suite struct WeightFileTests {
    static let spec = try! ModelSpec.named(
        "conv(4,3,pad=1) batchnorm relu maxpool(2) affine(10)", inputShape: [1, 8, 8])

    /// A written file in a fresh directory, with its tensors.
    func written() throws -> (dir: String, path: String, file: WeightFile) {
        let dir = try scratch()
        let net = try Network<Float>(spec: Self.spec, seed: 3)
        var config = TrainingConfig()
        config.epochs = 2
        var history = TrainingHistory()
        history.loss = [2.3, 2.1, 1.9]
        history.trainAccuracy = [0.5, 0.6]
        history.testAccuracy = [0.4, 0.55]
        history.epochSeconds = [1, 1.5]
        history.seconds = 3
        history.iterations = 3
        history.unchangedFraction = [0.25, 0.125]
        history.gradientUnderflow = [GradientUnderflow(layer: "00_conv1", zero: 1, subnormal: 2, total: 30)]
        let data = Dataset(
            name: "tiny", imageShape: [1, 8, 8], classes: 10, trainImages: [], trainLabels: [1, 2], testImages: [],
            testLabels: [3])
        let file = WeightFile(
            spec: Self.spec, dataset: "tiny", training: TrainingRecord(dataset: data, config: config, history: history),
            tensors: net.tensorValues())
        let path = dir + "/w.h5"
        try file.write(to: path)
        return (dir, path, file)
    }

    @Test func roundTrip() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let back = try WeightFile.read(path)
        #expect(back.spec == file.spec)
        #expect(back.tensors == file.tensors)
        #expect(back.training == file.training)
        #expect(back.dataset == "tiny")
        #expect(throws: HDF5Error(file: path, path: "", message: "file exists (and replacing it was not asked)")) {
            try file.write(to: path)
        }
        try file.write(to: path, overwrite: true)
        #expect(try WeightFile.read(path).tensors == file.tensors)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasSuffix(".lock") } == ["w.h5"])
    }

    /// A graph keeps its wiring: every layer group names what it reads, and a name that is no
    /// layer, or wiring that leaves a layer unread, is refused.
    @Test func graphsRoundTripAndTheirWiringIsChecked() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = try ModelSpec.named(
            "conv(4,3,pad=1) relu :a conv(4,3,pad=1) add(a) :b @a conv(2,1) :c concat(b,c) gap affine(10)",
            inputShape: [1, 8, 8])
        let file = WeightFile(
            spec: spec, dataset: "tiny", training: nil, tensors: try Network<Float>(spec: spec, seed: 5).tensorValues())
        let path = dir + "/g.h5"
        try file.write(to: path)
        let back = try WeightFile.read(path)
        #expect(back.spec == spec && back.tensors == file.tensors)
        let layers = try HDF5File.open(path).root.group("model/layers")
        #expect(try layers.group("04_conv3").attribute("inputs") == .string("01_relu1"))
        #expect(try layers.group("05_concat1").attribute("inputs") == .string("03_add1 04_conv3"))
        for (inputs, message) in [
            ("03_add1 09_conv9", "/model/layers/05_concat1 inputs names '09_conv9', which is no layer"),
            ("04_conv3 04_conv3", "/model bad model spec: 03_add1's output is not used by any later layer"),
        ] {
            let copy = dir + "/forged.h5"
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            try HDF5File.open(copy, writable: true).root.group("model/layers/05_concat1").setAttribute(
                "inputs", .string(inputs))
            #expect(throws: HDF5Error.self) { try WeightFile.read(copy) }
            do { _ = try WeightFile.read(copy) } catch { #expect("\(error)" == copy + ": " + message) }
        }
    }

    @Test func float16VariantHoldsTheRoundedMaster() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try WeightStore(path)
        try store.export("float16")
        try store.export("float16")  // replacing is fine
        #expect(store.variantNames == ["float16"])
        let v = try store.floatVariant("float16")
        #expect(v == file.tensors.mapValues { $0.converted(to: Float16.self).converted(to: Double.self) })
        #expect(try store.tensors(for: .float16Acc32) == v && store.source(for: .float16) == "/variants/float16")
        #expect(try store.tensors(for: .bfloat16Acc32) == file.tensors && store.source(for: .bfloat16Acc32) == "/model")
        let info = try HDF5File.open(path).root.group("variants/float16/model/layers/00_conv1").datasetInfo("W")
        #expect(info.type == .float16 && info.shape == [4, 1, 3, 3])
    }

    @Test func bfloat16VariantHoldsWhatTheModeRoundsTo() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try WeightStore(path)
        try store.export("bfloat16")
        #expect(store.variantNames == ["bfloat16"])
        let v = try store.floatVariant("bfloat16")
        #expect(
            v
                == file.tensors.mapValues { t in
                    Tensor(shape: t.shape, data: t.data.map { Double(StorageFormat.bfloat16.round(Float($0))) })
                })
        let info = try HDF5File.open(path).root.group("variants/bfloat16/model/layers/00_conv1").datasetInfo("W")
        #expect(info.type == .bfloat16 && info.shape == [4, 1, 3, 3])
    }

    /// A written file, its store, and an int8 model of its network (per channel, uint8, entropy).
    func int8Setup() throws -> (dir: String, store: WeightStore, file: WeightFile, model: QuantizedModel) {
        let (dir, path, file) = try written()
        let net = try Network<Float>(spec: file.spec, parameters: file.tensors)
        var rng = RandomSource(seed: 4)
        let images = (0..<(20 * 64)).map { _ in Float(rng.uniform()) }
        let model = try QuantizedModel(
            spec: file.spec, tensors: file.tensors,
            scheme: QuantScheme(weights: .perChannel, activations: .uint8Asymmetric),
            observers: observeActivations(net, images: images, count: 20), method: .entropy)
        return (dir, try WeightStore(path), file, model)
    }

    @Test func int8VariantRoundTrips() throws {
        let (dir, store, _, model) = try int8Setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let name = try store.store(
            model, calibration: [("calibration", .string("entropy")), ("calibration_images", .int(20))])
        #expect(name == "int8-wchannel-au8z" && store.variantNames == ["int8-wchannel-au8z"])
        #expect(try store.variant(name, of: QuantizedModel.self).model == model)
        let g = try HDF5File.open(store.path).root.group("variants/\(name)/model/layers/00_conv1")
        let (wi, bi, axis) = (try g.datasetInfo("W"), try g.datasetInfo("b"), try g.attribute("axis"))
        #expect(wi.type == .int8 && bi.type == .int32 && axis == .int(0))
    }

    @Test func mixedVariantKeepsItsFloatLayers() throws {
        let (dir, store, file, model) = try int8Setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A mixed variant stores only its int8 layers and names the ones left in float32.
        let mixed = model.only([0]).formed(.mixed(half: false))
        let name = try store.store(mixed, calibration: [])
        #expect(try name == "int8-wchannel-au8z-mixed" && store.variant(name, of: QuantizedModel.self).model == mixed)
        #expect(
            try HDF5File.open(store.path).root.group("variants/\(name)/model/layers").contains("04_affine1") == false)
        let full = try store.variant(name, of: QuantizedModel.self)
        #expect(
            full.floatBytesPerValue == 4 && full.floatTensors["04_affine1/W"] == file.tensors["04_affine1/W"]
                && !full.dynamic)
        // In float16 the variant holds the float layers itself, the master rounded to half.
        try store.store(mixed.formed(.mixed(half: true)), calibration: [])
        let half = try store.variant(name, of: QuantizedModel.self)
        #expect(half.floatBytesPerValue == 2 && half.floatTensors.keys.sorted() == ["04_affine1/W", "04_affine1/b"])
        #expect(
            half.floatTensors["04_affine1/W"]
                == file.tensors["04_affine1/W"]!.converted(to: Float16.self).converted(to: Double.self))
    }

    @Test func dynamicVariantHoldsFloatBiases() throws {
        let (dir, store, file, model) = try int8Setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let name = try store.store(model.formed(.dynamic), calibration: [])
        let dynamic = try store.variant(name, of: QuantizedModel.self)
        #expect(
            name == "int8-wchannel-au8z-dynamic" && dynamic.dynamic
                && dynamic.model.layers[0]!.weights == model.layers[0]!.weights)
        #expect(
            dynamic.floatTensors["00_conv1/b"]
                == file.tensors["00_conv1/b"]!.converted(to: Float.self).converted(to: Double.self))
        #expect(
            try HDF5File.open(store.path).root.group("variants/\(name)/model/layers/00_conv1").datasetInfo("b").type
                == .float32)
    }

    @Test func upgradeKeepsEveryVariantAndEvaluationAndAddsChecksums() throws {
        let (dir, store, file, model) = try int8Setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try store.store(model, calibration: [("calibration", .string("entropy"))])
        try store.store(model.formed(.dynamic), calibration: [])
        try store.store(model.only([0]).formed(.mixed(half: true)), calibration: [])
        let mxfp4 = try FormatModel(spec: file.spec, tensors: file.tensors, mode: Precision(name: "mxfp4")!.format!)
        try store.store(mxfp4, calibration: [("calibration", .string("block scales"))])
        let recorded = RecordedEvaluation(
            result: ModeResult(
                precision: "float16", integer: false, weights: "/model", images: 3, correct: 2,
                vsFloat32: AccuracyChange(
                    PairedChange(predicted: [0, 1, 2], reference: [0, 1, 1], labels: [0, 1, 2])),
                logits: ErrorSummary(ErrorStats()), modelBytes: 2, float32Bytes: 4, seconds: 1,
                layers: file.spec.layerNames.map { LayerError(layer: $0, errors: ErrorSummary(ErrorStats())) }),
            dataset: "tiny", inputScale: 1, recordedAt: "2026-01-01T00:00:00Z")
        try store.record([recorded])
        #expect(try store.datasetsWithoutChecksum().isEmpty && !store.upgrade())  // current: nothing to do
        // A file written before checksums: its master's datasets carry none.
        try store.modify { root in
            let g = try root.group("model/layers/00_conv1")
            let b = try g.read("b", as: Float.self)
            try g.remove("b")
            try g.write("b", shape: b.shape, b.values, checksum: false)
        }
        #expect(try store.datasetsWithoutChecksum() == ["/model/layers/00_conv1/b"])
        let before = try store.int8VariantNames.map { try store.variant($0, of: QuantizedModel.self) }
        #expect(try store.upgrade())
        var expected = recorded
        expected.weightsDigest = try store.weightsDigest("/model")
        #expect(try store.datasetsWithoutChecksum().isEmpty && store.evaluations() == [expected])
        let after = try store.int8VariantNames.map { try store.variant($0, of: QuantizedModel.self) }
        #expect(
            store.variantNames == [
                "int8-wchannel-au8z", "int8-wchannel-au8z-dynamic", "int8-wchannel-au8z-mixed", "mxfp4",
            ])
        #expect(try store.variant("mxfp4", of: FormatModel.self).network.model == mxfp4)
        #expect(
            try HDF5File.open(store.path).root.group("variants/mxfp4").attribute("calibration")
                == .string("block scales"))
        #expect(
            zip(before, after).allSatisfy {
                $0.model == $1.model && $0.floatTensors == $1.floatTensors && $0.dynamic == $1.dynamic
            })
        #expect(
            try HDF5File.open(store.path).root.group("variants/int8-wchannel-au8z").attribute("calibration")
                == .string("entropy"))
    }

    @Test func int8VariantIsValidated() throws {
        let (dir, store, _, model) = try int8Setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let name = try store.store(model, calibration: [])
        let mixedName = try store.store(model.only([0]).formed(.mixed(half: false)), calibration: [])
        try store.modify { root in
            try root.group("variants/\(mixedName)").setAttribute("float_layers", .string("02_relu1"))
        }
        #expect { try store.variant(mixedName, of: QuantizedModel.self) } throws: {
            "\($0)".contains("float_layers names '02_relu1'")
        }
        // A zero point outside its code range is refused with one clear line.
        try store.modify { root in
            try root.group("variants/\(name)/model/layers/00_conv1").setAttribute("input_zero_point", .int(300))
        }
        #expect { try store.variant(name, of: QuantizedModel.self) } throws: {
            "\($0)".contains("00_conv1 has a bad input range (scale")
        }
    }

    @Test func evaluationsRoundTrip() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var logits = ErrorStats(), layer = ErrorStats()
        logits.add([1, 2.5] as [Double], reference: [1, 2], minNormal: 1e-300)
        layer.add([.infinity, 0] as [Double], reference: [1, 0], minNormal: 1e-300)
        let names = file.spec.layerNames
        let layers = names.indices.map {
            LayerError(layer: names[$0], errors: $0 == 1 ? nil : ErrorSummary($0 == 0 ? layer : logits))
        }
        let change = AccuracyChange(
            changePP: -0.5, ci95LowPP: -1, ci95HighPP: 0, differs: 3, gained: 1, lost: 2, agreement: 0.7)
        let result = ModeResult(
            precision: "int8-wtensor-as8", integer: true, weights: "/variants/int8-wtensor-as8", images: 10,
            correct: 9, vsFloat32: change, logits: ErrorSummary(logits), modelBytes: 100, float32Bytes: 400,
            seconds: 0.5, layers: layers)
        let classes = file.spec.classes
        let recorded = RecordedEvaluation(
            result: result, dataset: "tiny", inputScale: 2, recordedAt: "2026-01-01T00:00:00Z",
            predictions: (0..<10).map { $0 % classes }, testIndices: (0..<10).map { 3 * $0 })
        let store = try WeightStore(path)
        try store.record([recorded])
        let back = try store.evaluations()
        #expect(back == [recorded])
        #expect(back.first?.result.layers[0].errors?.sqnrDB == -.infinity && back.first?.result.layers[1].errors == nil)
        // A number format's row keeps its bits per weight.
        var format = recorded
        format.result = ModeResult(
            precision: "mxfp4", integer: false, weights: "/variants/mxfp4", images: 10, correct: 9, vsFloat32: change,
            logits: ErrorSummary(logits), modelBytes: 100, float32Bytes: 400, seconds: 0.5,
            layers: names.map { LayerError(layer: $0, errors: ErrorSummary(logits)) })
        format.result.bitsPerWeight = 4.25
        try store.record([format])
        #expect(try store.evaluations().first { $0.result.precision == "mxfp4" } == format)
        #expect(back.first?.predictionsByTestIndex[27] == 9 % classes)
        // A forged prediction outside the network's classes, or one too few, is refused.
        for forged in [(0..<10).map { $0 == 4 ? classes : 0 }, [Int](repeating: 0, count: 9)] {
            var bad = recorded
            bad.predictions = forged
            bad.testIndices = nil
            try store.modify { root in try root.group("evaluations").remove(recorded.result.precision) }
            try store.record([bad])
            #expect(throws: HDF5Error.self) { try WeightStore(path).evaluations() }
        }
    }

    @Test func oneOpenPerStore() throws {
        let (dir, path, _) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try WeightStore(path).export("float16")
        let opened = HDF5File.openCount(path)
        let store = try WeightStore(path)
        for mode in PrecisionMode.allCases { _ = try store.tensors(for: mode) }
        _ = try store.evaluations()
        #expect(HDF5File.openCount(path) == opened + 1)
    }

    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/h5dump"), "h5dump (hdf5-tools) is not installed")
    )
    func h5dumpReadsTheFile() throws {
        let (dir, path, _) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try WeightStore(path).export("float16")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/h5dump")
        p.arguments = ["-d", "/variants/float16/model/layers/04_affine1/b", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(out.contains("16-bit little-endian floating-point"))
        #expect(out.contains("DATASPACE  SIMPLE { ( 10 ) / ( 10 ) }"))
    }

    /// Damages a copy of a good file with `change`, then expects the reader's error to be the
    /// file's path, a colon and `message`.
    func expectDamage(_ message: String, _ change: (HDF5Group) throws -> Void) throws {
        let (dir, path, _) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try change(try HDF5File.open(path, writable: true).root)
        #expect(throws: HDF5Error.self) { try WeightFile.read(path) }
        do { _ = try WeightFile.read(path) } catch { #expect("\(error)" == path + ": " + message) }
    }

    @Test func missingDataset() throws {
        try expectDamage("/model/layers/04_affine1/W missing dataset") { root in
            try root.group("model/layers/04_affine1").remove("W")
        }
    }

    @Test func wrongShape() throws {
        try expectDamage("/model/layers/00_conv1/W has shape (4,1,3,2), spec expects (4,1,3,3)") { root in
            let g = try root.group("model/layers/00_conv1")
            try g.remove("W")
            try g.write("W", shape: [4, 1, 3, 2], [Float](repeating: 0, count: 24))
        }
    }

    @Test func wrongElementType() throws {
        try expectDamage("/model/layers/00_conv1/b has element type float64, expected float32") { root in
            let g = try root.group("model/layers/00_conv1")
            try g.remove("b")
            try g.write("b", shape: [4], [Double](repeating: 0, count: 4))
        }
    }

    @Test func nanInAWeight() throws {
        try expectDamage("/model/layers/04_affine1/b holds a non-finite value (nan) at element 5") { root in
            let g = try root.group("model/layers/04_affine1")
            try g.remove("b")
            var b = [Float](repeating: 0, count: 10)
            b[5] = .nan
            try g.write("b", shape: [10], b)
        }
    }

    /// An input normalization round-trips with its statistics; a deviation that is not positive is
    /// refused, naming the file and the dataset.
    @Test func inputNormalizationIsStoredAndChecked() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = Self.spec.normalizingInput(), path = dir + "/n.h5"
        let net = try Network<Float>(spec: spec, seed: 3)
        try net.setInputNormalization(ChannelStatistics(mean: [0.25], std: [0.5]))
        try WeightFile(spec: spec, dataset: "tiny", training: nil, tensors: net.tensorValues()).write(to: path)
        let back = try WeightFile.read(path)
        #expect(back.spec == spec && back.tensors["00_normalize1/std"]!.data == [0.5])
        #expect(back.tensors["00_normalize1/mean"]!.data == [0.25])
        do {
            let g = try HDF5File.open(path, writable: true).root.group("model/layers/00_normalize1")
            try g.remove("std")
            try g.write("std", shape: [1], [Float(0)])
        }
        #expect(throws: HDF5Error.self) { try WeightFile.read(path) }
        do { _ = try WeightFile.read(path) } catch {
            #expect(
                "\(error)"
                    == path + ": /model/layers/00_normalize1/std holds a standard deviation that is not positive (0.0) "
                    + "at element 0")
        }
    }

    @Test func unknownFormatVersion() throws {
        try expectDamage("unknown format version 2 (this precis reads version 1)") { root in
            try root.setAttribute("format_version", .int(2))
        }
    }

    @Test func notAPrecisFile() throws {
        try expectDamage("not a Precis weight file (no format=\"precis.weights\" attribute on /)") { root in
            try root.setAttribute("format", .string("keras"))
        }
    }

    @Test func badSpec() throws {
        try expectDamage("/model bad model spec: unknown layer kind 'Swish'") { root in
            try root.group("model").setAttribute("spec", .string(#"[{"kind":"Swish"}]"#))
        }
    }

    @Test func aChangedByteInAWeightIsAnErrorNotAnotherNetwork() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Find the affine layer's weights in the file by their bytes, and change one bit of one.
        let w = file.tensors["04_affine1/W"]!.data.prefix(16).map { Float($0) }
        let pattern = w.withUnsafeBytes { Data($0) }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let at = try #require(bytes.range(of: pattern)).lowerBound + 21
        bytes[at] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: HDF5Error.self) { try WeightFile.read(path) }
        do { _ = try WeightFile.read(path) } catch {
            #expect(
                "\(error)" == path
                    + ": /model/layers/04_affine1/W is damaged: its data does not match its Fletcher32 checksum")
        }
    }

    @Test func notHDF5AndTruncatedFiles() throws {
        let (dir, path, _) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let bad = dir + "/bad.h5"
        try Data("just text".utf8).write(to: URL(fileURLWithPath: bad))
        #expect(throws: HDF5Error(file: bad, path: "", message: "not an HDF5 file")) { try WeightFile.read(bad) }
        for cut in [0, 8, 100, 800, bytes.count / 2, bytes.count - 100, bytes.count - 1] {
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: bad))
            #expect(throws: HDF5Error.self, "cut at \(cut) of \(bytes.count)") { try WeightFile.read(bad) }
        }
        #expect(throws: HDF5Error(file: dir + "/none.h5", path: "", message: "no such file")) {
            try WeightFile.read(dir + "/none.h5")
        }
    }

    @Test func interruptedWriteLeavesThePreviousFileIntact() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try WeightFile.replace(path) { tmp in
                let root = try HDF5File.create(tmp, truncating: true).root
                try root.setAttribute("format", .string("half-written"))
                throw Interrupted()
            }
        }
        #expect(try WeightFile.read(path).tensors == file.tensors)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasSuffix(".lock") } == ["w.h5"])
    }

    @Test func atomicWritesReplaceWholeOrNotAtAll() throws {
        let dir = NSTemporaryDirectory() + "atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/page.html"
        try AtomicFiles.write(Data("first".utf8), to: path)
        try AtomicFiles.write(Data("second, longer".utf8), to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second, longer")
        struct Failed: Error {}
        #expect(throws: Failed.self) {
            try AtomicFiles.write(path) { tmp in
                try Data("half".utf8).write(to: URL(fileURLWithPath: tmp))
                throw Failed()
            }
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second, longer")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["page.html"])
        #expect(throws: DataError.self) { try AtomicFiles.write(Data("x".utf8), to: dir + "/missing/x.html") }
    }
}

extension QuantizedModel {
    /// The model in `form`.
    func formed(_ form: Int8Form) -> QuantizedModel {
        var model = self
        model.form = form
        return model
    }
}
