import Foundation
import PrecisCore
import Testing

@testable import PrecisWeights

/// Number-format variants: stored, read back exactly, packed as documented, and refused when forged.
@Suite struct FormatVariantTests {
    /// A written file, its store, and observers of its layer inputs on 20 random images.
    func setup() throws -> (dir: String, store: WeightStore, file: WeightFile, observers: [Int: Observer]) {
        let (dir, path, file) = try WeightFileTests().written()
        var rng = RandomSource(seed: 5)
        let images = (0..<(20 * 64)).map { _ in Float(rng.uniform()) }
        let observers = observeActivations(
            try Network<Float>(spec: file.spec, parameters: file.tensors), images: images, count: 20)
        return (dir, try WeightStore(path), file, observers)
    }

    static let modes =
        FormatMode.standard.map(\.name) + ["float8-e4m3-nosat", "int4-g64-z", "int4-channel-z-a8"]

    @Test(arguments: modes)
    func everyFormatRoundTrips(_ name: String) throws {
        let (dir, store, file, observers) = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try FormatModel(
            spec: file.spec, tensors: file.tensors, mode: Precision(name: name)!.format!, observers: observers)
        #expect(try store.store(model, calibration: [("calibration_images", .int(20))]) == name)
        #expect(store.formatVariantNames == [name])
        let stored = try store.variant(name, of: FormatModel.self)
        #expect(stored.model == model)
        // The stored network is the one rounding now builds: same weights and biases.
        let now = try FormatNetwork(spec: file.spec, tensors: file.tensors, model: model)
        #expect(stored.network.network.tensorValues() == now.network.tensorValues())
        #expect(try store.storedBytes(name) == now.modelBytes)
    }

    @Test func codesArePackedLowBitsFirst() {
        #expect(packCodes([1, 2, 3], 1, 3, 4) == [0x21, 0x03])
        // 6-bit: 0x3F in bits 0-5, 1 in 6-11, 2 in 12-17, 3 in 18-23.
        #expect(packCodes([0x3F, 1, 2, 3], 1, 4, 6) == [0x7F, 0x20, 0x0C])
        var rng = RandomSource(seed: 2)
        for bits in [4, 6] {
            let codes = (0..<(3 * 7)).map { _ in UInt8(rng.next() % (1 << UInt64(bits))) }
            #expect(unpackCodes(packCodes(codes, 3, 7, bits), 3, 7, bits) == codes)
        }
    }

    @Test func mixedVariantKeepsLayersInFloat32() throws {
        let (dir, store, file, observers) = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try FormatModel(
            spec: file.spec, tensors: file.tensors, mode: Precision(name: "mxfp4")!.format!, observers: observers)
        let name = try store.store(model.only([0]), calibration: [])
        #expect(name == "mxfp4-mixed")
        let stored = try store.variant(name, of: FormatModel.self)
        #expect(stored.model == model.only([0]))
        #expect(stored.network.network.tensorValues()["04_affine1/W"] == file.tensors["04_affine1/W"])
    }

    /// Forged values get one line naming the dataset or attribute.
    @Test func forgedVariantsAreRefused() throws {
        let (dir, store, file, observers) = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func stored(_ name: String) throws {
            let model = try FormatModel(
                spec: file.spec, tensors: file.tensors, mode: Precision(name: name)!.format!, observers: observers)
            try store.store(model, calibration: [])
        }
        func expectRefused(_ name: String, _ message: String, _ change: (HDF5Group) throws -> Void) throws {
            try store.modify { root in try change(try root.group("variants/\(name)/model/layers/00_conv1")) }
            #expect { try store.variant(name, of: FormatModel.self) } throws: { "\($0)".contains(message) }
        }
        /// Variant `name` with dataset `dataset` of 00_conv1 replaced by `rows` rows of `value`.
        func forged(_ name: String, _ dataset: String, rows: Int, value: UInt8, _ message: String) throws {
            try stored(name)
            try expectRefused(name, message) { g in
                try g.remove(dataset)
                try g.write(dataset, shape: [4, rows], [UInt8](repeating: value, count: 4 * rows))
            }
        }
        try forged(
            "float8-e4m3", "W", rows: 9, value: 0x7F, "00_conv1 W holds code 0x7f at element 0, not a finite value")
        try forged("mxfp8-e5m2", "W_block_scale", rows: 1, value: 0xFF, "W_block_scale holds 0xff at 0, not a scale")
        try forged("int4-g32-z", "W_zero_point", rows: 1, value: 16, "W_zero_point holds a value beyond 15")
        try forged("mxfp6-e3m2", "W", rows: 9, value: 0, "W must be uint8 of shape (4,7), is uint8 (4,9)")
        try stored("nvfp4")
        try expectRefused("nvfp4", "has a bad input_amax (nan)") { g in
            try g.setAttribute("input_amax", .double(.nan))
        }
        try store.modify { root in
            try root.group("variants/mxfp6-e3m2").setAttribute("float_layers", .string("04_affine1"))
        }
        #expect { try store.variant("mxfp6-e3m2", of: FormatModel.self) } throws: { "\($0)".contains("ends in -mixed") }
    }
}

/// Batch normalization folded into the layer before it, as variants record it.
@Suite struct FoldedVariantTests {
    /// A network with a batch normalization after each weighted layer, its running statistics and
    /// scales drawn at random, written to a file; its store and observers on 20 random images.
    func setup() throws -> (dir: String, store: WeightStore, file: WeightFile, observers: [Int: Observer]) {
        let spec = try ModelSpec.named(
            "conv(4,3,pad=1) batchnorm relu maxpool(2) affine(12) batchnorm relu affine(10)", inputShape: [1, 8, 8])
        var tensors = try Network<Double>(spec: spec, seed: 3).tensorValues(), rng = RandomSource(seed: 4)
        for (key, value) in tensors where key.contains("batchnorm") {
            let low = key.hasSuffix("var") || key.hasSuffix("gamma") ? 0.5 : -0.3
            tensors[key]!.data = value.data.map { _ in low + rng.uniform() }
        }
        let dir = try scratch(), file = WeightFile(spec: spec, dataset: "tiny", training: nil, tensors: tensors)
        try file.write(to: dir + "/w.h5")
        let images = (0..<(20 * 64)).map { _ in Float(rng.uniform()) }
        let observers = observeActivations(
            try Network<Float>(spec: spec, parameters: tensors), images: images, count: 20)
        return (dir, try WeightStore(dir + "/w.h5"), file, observers)
    }

    /// `folded_batchnorm` names the folded layers; the codes and biases are the folded ones, and
    /// the variant reads back as written; a forged name or bias is refused.
    @Test func variantsRecordTheFold() throws {
        let (dir, store, file, observers) = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let int8 = try QuantizedModel(
            spec: file.spec, tensors: file.tensors,
            scheme: QuantScheme(weights: .perChannel, activations: .int8Symmetric),
            observers: observers, method: .minmax)
        let format = try FormatModel(
            spec: file.spec, tensors: file.tensors, mode: Precision(name: "mxfp8-e4m3")!.format!, observers: observers)
        #expect(int8.folded == [1, 5] && format.folded == [1, 5])
        for name in [try store.store(int8, calibration: []), try store.store(format, calibration: [])] {
            let attribute = try HDF5File.open(store.path).root.group("variants/\(name)").attribute("folded_batchnorm")
            #expect(attribute == .string("01_batchnorm1 05_batchnorm2"), "\(name)")
        }
        #expect(try store.variant("int8-wchannel-as8", of: QuantizedModel.self).model == int8)
        let stored = try store.variant("mxfp8-e4m3", of: FormatModel.self)
        #expect(stored.model == format)
        #expect(
            try stored.network.network.tensorValues()
                == FormatNetwork(spec: file.spec, tensors: store.master.tensors, model: format).network.tensorValues())
        let folded = try file.spec.folding([1, 5], in: store.master.tensors)
        let b = try HDF5File.open(store.path).root.group("variants/mxfp8-e4m3/model/layers/00_conv1").read(
            "b", as: Float.self)
        #expect(b.values == folded["00_conv1/b"]!.data.map(Float.init))
        #expect(folded["00_conv1/b"] != store.master.tensors["00_conv1/b"])
        try store.modify { root in
            let g = try root.group("variants/mxfp8-e4m3/model/layers/00_conv1")
            try g.remove("b")
            try g.write("b", shape: [4], file.tensors["00_conv1/b"]!.data.map(Float.init))
        }
        #expect { try store.variant("mxfp8-e4m3", of: FormatModel.self) } throws: {
            "\($0)".contains("b is not /model's bias with the batch normalization after it folded in")
        }
        try store.modify { root in
            try root.group("variants/int8-wchannel-as8").setAttribute("folded_batchnorm", .string("02_relu1"))
        }
        #expect { try store.variant("int8-wchannel-as8", of: QuantizedModel.self) } throws: {
            "\($0)".contains("folded_batchnorm names '02_relu1', which is not a batch normalization that folds")
        }
    }

    /// An equalized variant stores its scales and shifts, reads back as written, runs with the master
    /// equalized, and is refused when they are forged.
    @Test func equalizedVariantsStoreTheirScales() throws {
        let (dir, store, file, _) = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = RandomSource(seed: 9)
        let images = (0..<(20 * 64)).map { _ in Float(rng.uniform()) }
        let master = store.master.tensors
        let e = try Equalization(spec: file.spec, tensors: master).absorbingHighBiases(
            spec: file.spec, tensors: master, images: images, count: 20)
        #expect(e.scales.keys.sorted() == [0, 4] && e.shifts.values.contains { $0.contains { $0 > 0 } })
        let equalized = try e.applied(to: master, spec: file.spec)
        var model = try FormatModel(
            spec: file.spec, tensors: equalized, mode: Precision(name: "float8-e4m3-cle")!.format!,
            observers: observeActivations(
                try Network<Float>(spec: file.spec, parameters: equalized), images: images, count: 20))
        model.equalization = e
        #expect(try store.store(model, calibration: []) == "float8-e4m3-cle")
        let stored = try store.variant("float8-e4m3-cle", of: FormatModel.self)
        #expect(stored.model == model)
        #expect(
            try stored.network.network.tensorValues()
                == FormatNetwork(spec: file.spec, tensors: equalized, model: model).network.tensorValues())
        try store.modify { root in
            let g = try root.group("variants/float8-e4m3-cle/equalization/00_conv1")
            try g.remove("scale")
            try g.write("scale", shape: [4], [1, -2, 1, 1] as [Double])
        }
        #expect { try store.variant("float8-e4m3-cle", of: FormatModel.self) } throws: {
            "\($0)".contains("equalization/00_conv1 scale holds a value that is not positive")
        }
        try store.modify { root in try root.group("variants/float8-e4m3-cle").remove("equalization") }
        #expect(throws: HDF5Error.self) { try store.variant("float8-e4m3-cle", of: FormatModel.self) }
    }
}

/// Checkpoint files: the state written is the state read back, and a file without one is refused.
@Suite struct CheckpointFileTests {
    @Test func checkpointRoundTrips() throws {
        let (dir, path, file) = try WeightFileTests().written()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = TrainingConfig()
        (config.epochs, config.augmentation, config.evaluationSample) = (2, Augmentation(rotation: 5), 30)
        var history = TrainingHistory()
        (history.loss, history.trainAccuracy, history.testAccuracy, history.epochSeconds) = ([2, 1], [0.5], [0.4], [1])
        (history.iterations, history.seconds, history.trainingSeconds) = (2, 1.5, 1.25)
        let sizes = try Network<Float>(spec: file.spec, parameters: file.tensors).parameters.map(\.parameter)
            .filter(\.learnable).map(\.value.count)
        var rng = RandomSource(seed: 1)
        _ = rng.normal()
        let state = TrainingCheckpoint(
            epochsDone: 1, history: history, order: rng, optimizerIteration: 2,
            moments: sizes.map { [Double](repeating: 0.5, count: $0) },
            secondMoments: sizes.map { [Double](repeating: 0.25, count: $0) }, dropout: [])
        let record = TrainingRecord(
            dataset: Dataset(
                name: "tiny", imageShape: [1, 8, 8], classes: 10, trainImages: [], trainLabels: [1], testImages: [],
                testLabels: [1]), config: config, history: history)
        let ck = Checkpoint(
            file: WeightFile(spec: file.spec, dataset: "tiny", training: record, tensors: file.tensors), state: state,
            config: config)
        let at = dir + "/ck.h5"
        try ck.write(to: at)
        let back = try Checkpoint.read(at)
        #expect(back.state == state && back.config.augmentation == config.augmentation)
        #expect(back.config.evaluationSample == 30 && back.config.epochs == 2)
        #expect { try Checkpoint.read(path) } throws: { "\($0)".contains("not a checkpoint") }
    }
}
