import Foundation
import PrecisCore
import Testing
@testable import PrecisWeights

/// Weight files written by the tool, read back, and damaged in every way the reader must catch.
@Suite struct WeightFileTests {
    static let spec = try! ModelSpec.named("conv(4,3,pad=1) batchnorm relu maxpool(2) affine(10)", inputShape: [1, 8, 8])

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
        let data = Dataset(name: "tiny", imageShape: [1, 8, 8], classes: 10, trainImages: [], trainLabels: [1, 2], testImages: [], testLabels: [3])
        let file = WeightFile(spec: Self.spec, dataset: "tiny", training: TrainingRecord(dataset: data, config: config, history: history),
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
        #expect(throws: HDF5Error(file: path, path: "", message: "file exists (use --force to replace it)")) { try file.write(to: path) }
        try file.write(to: path, overwrite: true)
        #expect(try WeightFile.read(path).tensors == file.tensors)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["w.h5"])
    }

    @Test func float16VariantHoldsTheRoundedMaster() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try WeightFile.export(path, precision: "float16")
        try WeightFile.export(path, precision: "float16")  // replacing is fine
        #expect(try WeightFile.variants(path) == ["float16"])
        let v = try WeightFile.readVariant(path, spec: file.spec, precision: "float16")
        #expect(v == file.tensors.mapValues { $0.converted(to: Float16.self).converted(to: Double.self) })
        let info = try HDF5File.open(path).root.group("variants/float16/model/layers/00_conv1").datasetInfo("W")
        #expect(info.type == .float16 && info.shape == [4, 1, 3, 3])
    }

    @Test func bfloat16VariantHoldsWhatTheModeRoundsTo() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try WeightFile.export(path, precision: "bfloat16")
        #expect(try WeightFile.variants(path) == ["bfloat16"])
        let v = try WeightFile.readVariant(path, spec: file.spec, precision: "bfloat16")
        #expect(v == file.tensors.mapValues { t in Tensor(shape: t.shape, data: t.data.map { Double(StorageFormat.bfloat16.round(Float($0))) }) })
        let info = try HDF5File.open(path).root.group("variants/bfloat16/model/layers/00_conv1").datasetInfo("W")
        #expect(info.type == .bfloat16 && info.shape == [4, 1, 3, 3])
    }

    @Test func int8VariantRoundTripsAndIsValidated() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let net = try Network<Float>(spec: file.spec, parameters: file.tensors)
        var rng = RandomSource(seed: 4)
        let images = (0..<(20 * 64)).map { _ in Float(rng.uniform()) }
        let model = try QuantizedModel(spec: file.spec, tensors: file.tensors, scheme: QuantScheme(weights: .perChannel, activations: .uint8Asymmetric),
                                       observers: observeActivations(net, images: images, count: 20), method: .entropy)
        let name = try WeightFile.storeInt8(path, model: model, calibration: [("calibration", .string("entropy")), ("calibration_images", .int(20))])
        let stored = try WeightFile.variants(path)
        #expect(name == "int8-wchannel-au8z" && stored == ["int8-wchannel-au8z"])
        #expect(try WeightFile.readInt8(path, spec: file.spec, variant: name) == model)
        let g = try HDF5File.open(path).root.group("variants/\(name)/model/layers/00_conv1")
        let (wi, bi, axis) = (try g.datasetInfo("W"), try g.datasetInfo("b"), try g.attribute("axis"))
        #expect(wi.type == .int8 && bi.type == .int32 && axis == .int(0))
        // A mixed variant stores only its int8 layers and names the ones left in float32.
        let mixed = model.only([0])
        let mixedName = try WeightFile.storeInt8(path, model: mixed, form: .mixed(floatLayers: ["04_affine1"], half: false), calibration: [])
        #expect(try mixedName == "int8-wchannel-au8z-mixed" && WeightFile.readInt8(path, spec: file.spec, variant: mixedName) == mixed)
        #expect(try HDF5File.open(path).root.group("variants/\(mixedName)/model/layers").contains("04_affine1") == false)
        let full = try WeightFile.readInt8Variant(path, spec: file.spec, variant: mixedName)
        #expect(full.floatBytesPerValue == 4 && full.floatTensors["04_affine1/W"] == file.tensors["04_affine1/W"] && !full.dynamic)
        // In float16 the variant holds the float layers itself, the master rounded to half.
        try WeightFile.storeInt8(path, model: mixed, form: .mixed(floatLayers: ["04_affine1"], half: true), calibration: [])
        let half = try WeightFile.readInt8Variant(path, spec: file.spec, variant: mixedName)
        #expect(half.floatBytesPerValue == 2 && half.floatTensors.keys.sorted() == ["04_affine1/W", "04_affine1/b"])
        #expect(half.floatTensors["04_affine1/W"] == file.tensors["04_affine1/W"]!.converted(to: Float16.self).converted(to: Double.self))
        // A dynamic variant holds float32 biases and no input ranges.
        let dynamicName = try WeightFile.storeInt8(path, model: model, form: .dynamic, calibration: [])
        let dynamic = try WeightFile.readInt8Variant(path, spec: file.spec, variant: dynamicName)
        #expect(dynamicName == "int8-wchannel-au8z-dynamic" && dynamic.dynamic && dynamic.model.layers[0]!.weights == model.layers[0]!.weights)
        #expect(dynamic.floatTensors["00_conv1/b"] == file.tensors["00_conv1/b"]!.converted(to: Float.self).converted(to: Double.self))
        #expect(try HDF5File.open(path).root.group("variants/\(dynamicName)/model/layers/00_conv1").datasetInfo("b").type == .float32)
        // upgrade keeps every int8 variant as it was, attributes included.
        let before = try WeightFile.variants(path).map { try WeightFile.readInt8Variant(path, spec: file.spec, variant: $0) }
        try WeightFile.upgrade(path)
        let after = try WeightFile.variants(path).map { try WeightFile.readInt8Variant(path, spec: file.spec, variant: $0) }
        #expect(try WeightFile.variants(path) == ["int8-wchannel-au8z", "int8-wchannel-au8z-dynamic", "int8-wchannel-au8z-mixed"])
        #expect(zip(before, after).allSatisfy { $0.model == $1.model && $0.floatTensors == $1.floatTensors && $0.dynamic == $1.dynamic })
        #expect(try HDF5File.open(path).root.group("variants/int8-wchannel-au8z").attribute("calibration") == .string("entropy"))
        #expect(try WeightFile.readInt8(path, spec: file.spec, variant: mixedName) == mixed)
        try WeightFile.modify(path) { root in try root.group("variants/\(mixedName)").setAttribute("float_layers", .string("02_relu1")) }
        do { _ = try WeightFile.readInt8(path, spec: file.spec, variant: mixedName); Issue.record("a bad float_layers was accepted") } catch {
            #expect("\(error)".contains("float_layers names '02_relu1'"))
        }
        // A zero point outside its code range is refused with one clear line.
        try WeightFile.modify(path) { root in try root.group("variants/\(name)/model/layers/00_conv1").setAttribute("input_zero_point", .int(300)) }
        #expect(throws: HDF5Error.self) { try WeightFile.readInt8(path, spec: file.spec, variant: name) }
        do { _ = try WeightFile.readInt8(path, spec: file.spec, variant: name) } catch {
            #expect("\(error)".contains("00_conv1 has a bad input range (scale"))
        }
    }

    @Test func evaluationsAreRecorded() throws {
        let (dir, path, _) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try WeightFile.record(path, results: [("float16", [("accuracy", .double(0.9)), ("images", .int(10))])])
        #expect(try WeightFile.evaluations(path) == ["float16": ["accuracy": .double(0.9), "images": .int(10)]])
    }

    @Test func h5dumpReadsTheFile() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/h5dump") else { return }
        let (dir, path, _) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try WeightFile.export(path, precision: "float16")
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

    /// Damages a copy of a good file with `change`, then expects `message` from the reader.
    func expectDamage(_ message: (String) -> String, _ change: (HDF5Group) throws -> Void) throws {
        let (dir, path, _) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try change(try HDF5File.open(path, writable: true).root)
        #expect(throws: HDF5Error.self) { try WeightFile.read(path) }
        do { _ = try WeightFile.read(path) } catch { #expect("\(error)" == message(path)) }
    }

    @Test func missingDataset() throws {
        try expectDamage({ "\($0): /model/layers/04_affine1/W missing dataset" }) { root in
            try root.group("model/layers/04_affine1").remove("W")
        }
    }

    @Test func wrongShape() throws {
        try expectDamage({ "\($0): /model/layers/00_conv1/W has shape (4,1,3,2), spec expects (4,1,3,3)" }) { root in
            let g = try root.group("model/layers/00_conv1")
            try g.remove("W")
            try g.write("W", shape: [4, 1, 3, 2], [Float](repeating: 0, count: 24))
        }
    }

    @Test func wrongElementType() throws {
        try expectDamage({ "\($0): /model/layers/00_conv1/b has element type float64, expected float32" }) { root in
            let g = try root.group("model/layers/00_conv1")
            try g.remove("b")
            try g.write("b", shape: [4], [Double](repeating: 0, count: 4))
        }
    }

    @Test func nanInAWeight() throws {
        try expectDamage({ "\($0): /model/layers/04_affine1/b holds a non-finite value (nan) at element 5" }) { root in
            let g = try root.group("model/layers/04_affine1")
            try g.remove("b")
            var b = [Float](repeating: 0, count: 10)
            b[5] = .nan
            try g.write("b", shape: [10], b)
        }
    }

    @Test func unknownFormatVersion() throws {
        try expectDamage({ "\($0): unknown format version 2 (this precis reads version 1)" }) { root in
            try root.setAttribute("format_version", .int(2))
        }
    }

    @Test func notAPrecisFile() throws {
        try expectDamage({ "\($0): not a Precis weight file (no format=\"precis.weights\" attribute on /)" }) { root in
            try root.setAttribute("format", .string("keras"))
        }
    }

    @Test func badSpec() throws {
        try expectDamage({ "\($0): /model bad model spec: unknown layer kind 'Swish'" }) { root in
            try root.group("model").setAttribute("spec", .string(#"[{"kind":"Swish"}]"#))
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
        #expect(throws: HDF5Error(file: dir + "/none.h5", path: "", message: "no such file")) { try WeightFile.read(dir + "/none.h5") }
    }

    @Test func interruptedWriteLeavesThePreviousFileIntact() throws {
        let (dir, path, file) = try written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try WeightFile.replace(path) { tmp in
                let root = try HDF5File.create(tmp).root
                try root.setAttribute("format", .string("half-written"))
                throw Interrupted()
            }
        }
        #expect(try WeightFile.read(path).tensors == file.tensors)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["w.h5"])
    }
}
