import Foundation
import PrecisCore

/// What a training run did, stored under `/training`.
public struct TrainingRecord: Equatable, Sendable {
    public var dataset: String
    public var trainSize: Int
    public var testSize: Int
    public var epochs: Int
    public var batchSize: Int
    public var optimizer: String
    public var learningRate: Double
    public var schedule: String
    public var seed: Int
    /// The training images' random transforms (`shift:2,rotate:10`), or empty for none.
    public var augmentation: String
    /// `float32`, `float16`, `mixed-float16` or `mixed-bfloat16`.
    public var precision: String
    /// Mixed precision: the loss scale of every iteration, and the skipped iterations (1-based).
    public var lossScale: [Double], skippedSteps: [Int]
    /// Per epoch, the fraction of learnable values the updates left unchanged (empty in older files).
    public var unchangedFraction: [Double]
    /// Per layer, its gradients below half's normal range (empty in older files).
    public var gradientUnderflow: [GradientUnderflow]
    /// The weight file the run fine-tuned (its name), or empty when it started from the seed.
    public var startedFrom: String
    /// The format quantization-aware training simulated, or empty.
    public var quantizationAware: String
    /// Wall time of the run, evaluation included.
    public var seconds: Double
    public var iterations: Int
    /// Loss of every iteration.
    public var loss: [Double]
    public var trainAccuracy: [Double]
    public var testAccuracy: [Double]
    public var epochSeconds: [Double]

    init() {
        (dataset, trainSize, testSize, epochs, batchSize, optimizer, learningRate, schedule, augmentation) = (
            "", 0, 0, 0, 0, "", 0, "", ""
        )
        (seed, seconds, iterations, loss, trainAccuracy, testAccuracy, epochSeconds) = (0, 0, 0, [], [], [], [])
        (precision, lossScale, skippedSteps, unchangedFraction, gradientUnderflow) = ("float32", [], [], [], [])
        (startedFrom, quantizationAware) = ("", "")
    }

    public init(dataset: Dataset, config: TrainingConfig, history: TrainingHistory) {
        self.dataset = dataset.name
        trainSize = dataset.trainCount
        testSize = dataset.testCount
        epochs = config.epochs
        batchSize = config.batchSize
        optimizer = config.optimizer.rawValue
        learningRate = config.learningRate ?? config.optimizer.defaultLearningRate
        schedule = config.schedule.description
        seed = Int(truncatingIfNeeded: config.seed)
        augmentation = config.augmentation?.description ?? ""
        precision = config.precision.rawValue
        (lossScale, skippedSteps) = (history.lossScale, history.skippedSteps)
        (unchangedFraction, gradientUnderflow) = (history.unchangedFraction, history.gradientUnderflow)
        (startedFrom, quantizationAware) = (config.startedFrom, config.quantizationAware)
        seconds = history.seconds
        iterations = history.iterations
        loss = history.loss
        trainAccuracy = history.trainAccuracy
        testAccuracy = history.testAccuracy
        epochSeconds = history.epochSeconds
    }
}

/// A Precis weight file (HDF5, layout version 1; the README documents every group, dataset and
/// attribute). The master weights are float32 under `/model/layers`; `/variants/<precision>` holds
/// the same tree in a reduced precision's own type; `/evaluations/<mode>` holds recorded results.
/// Where an imported network came from: `/model` attributes `source_format`, `source_file`,
/// `producer` and `attribution` (a license or copyright notice to keep with the weights).
public struct Provenance: Equatable, Sendable {
    public var format: String, file: String, producer: String, attribution: String

    public init(format: String, file: String, producer: String, attribution: String = "") {
        (self.format, self.file, self.producer, self.attribution) = (format, file, producer, attribution)
    }
}

public struct WeightFile {
    public static let format = "precis.weights"
    public static let version = 1

    public var spec: ModelSpec
    /// The data set the network was trained on (`fashion-mnist`, `mnist5k`, or a directory).
    public var dataset: String
    public var training: TrainingRecord?
    /// The master tensors by name (`00_conv1/W`), float32 values widened to Double.
    public var tensors: [String: Tensor<Double>]
    /// Where an imported network came from; nil for one `precis train` wrote.
    public var source: Provenance?

    public init(
        spec: ModelSpec, dataset: String, training: TrainingRecord?, tensors: [String: Tensor<Double>],
        source: Provenance? = nil
    ) {
        (self.spec, self.dataset, self.training, self.tensors, self.source) = (
            spec, dataset, training, tensors, source
        )
    }

    // MARK: writing

    /// Writes a new file, with `/variants/<precision>` for each of `variants`: a temporary file in
    /// the same folder, renamed into place when complete, so an interrupted write never leaves a
    /// half-written file at `path`. Refuses to replace an existing file unless `overwrite`.
    /// `more` adds to the new file before it is renamed into place.
    public func write(
        to path: String, overwrite: Bool = false, variants: [String] = [],
        more: (HDF5Group) throws -> Void = { _ in }
    ) throws {
        if !overwrite && FileManager.default.fileExists(atPath: path) {
            throw HDF5Error(file: path, path: "", message: "file exists (and replacing it was not asked)")
        }
        try Self.replace(path) { tmp in
            let root = try HDF5File.create(tmp, truncating: true).root
            try root.setAttribute("format", .string(Self.format))
            try root.setAttribute("format_version", .int(Self.version))
            try root.setAttribute("created_by", .string("precis \(precisVersion) (Swift), layout v\(Self.version)"))
            try root.setAttribute("created_at", .string(ISO8601DateFormatter().string(from: Date())))
            let model = try root.createGroup("model")
            try model.setAttribute("name", .string(spec.name))
            try model.setAttribute("input_shape", .ints(spec.inputShape))
            try model.setAttribute("classes", .int(spec.classes))
            try model.setAttribute("layers", .string(spec.layerText))
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            try model.setAttribute("spec", .string(String(decoding: try encoder.encode(spec.layers), as: UTF8.self)))
            try model.setAttribute("weight_init", .string(spec.weightInit.description))
            try model.setAttribute("dataset", .string(dataset))
            if let source {
                for (key, value) in [
                    ("source_format", source.format), ("source_file", source.file), ("producer", source.producer),
                    ("attribution", source.attribution),
                ] {
                    try model.setAttribute(key, .string(value))
                }
            }
            try Self.writeLayers(spec, tensors.mapValues { $0.data.map { Float($0) } }, into: model)
            if let training { try Self.write(training, into: try root.createGroup("training")) }
            for precision in variants { try writeVariant(precision, into: root) }
            try more(root)
            try root.file.flush()
        }
    }

    /// `/…/layers/NN_name` groups with the layer's kind and arguments as attributes, and its tensors
    /// as datasets of `E`. In a graph, every layer also names what it reads: `inputs`, layer names
    /// (or `input`) separated by spaces.
    static func writeLayers<E: HDF5Scalar>(_ spec: ModelSpec, _ values: [String: [E]], into parent: HDF5Group) throws {
        let layers = try parent.createGroup("layers")
        for layer in try spec.geometry() {
            let g = try layers.createGroup(layer.name)
            try g.setAttribute("kind", .string(layer.spec.kind))
            if !spec.isChain {
                try g.setAttribute(
                    "inputs", .string(spec.inputs(of: layer.index).map(spec.sourceName).joined(separator: " ")))
            }
            for (key, value) in layer.spec.arguments {
                try g.setAttribute(key, LayerSpec.fractional.contains(key) ? .double(value) : .int(Int(value)))
            }
            for t in layer.tensors.sorted(by: { $0.name < $1.name }) {
                guard let v = values[layer.key(t.name)] else {
                    throw HDF5Error(file: parent.file.path, path: g.path, message: "no values for \(layer.key(t.name))")
                }
                try g.write(t.name, shape: t.shape, v)
            }
        }
    }

    static func write(_ t: TrainingRecord, into g: HDF5Group) throws {
        try g.setAttribute("dataset", .string(t.dataset))
        try g.setAttribute("train_size", .int(t.trainSize))
        try g.setAttribute("test_size", .int(t.testSize))
        try g.setAttribute("epochs", .int(t.epochs))
        try g.setAttribute("batch_size", .int(t.batchSize))
        try g.setAttribute("optimizer", .string(t.optimizer))
        try g.setAttribute("learning_rate", .double(t.learningRate))
        try g.setAttribute("lr_schedule", .string(t.schedule))
        try g.setAttribute("seed", .int(t.seed))
        try g.setAttribute("augmentation", .string(t.augmentation))
        try g.setAttribute("precision", .string(t.precision))
        try g.setAttribute("started_from", .string(t.startedFrom))
        try g.setAttribute("quantization_aware", .string(t.quantizationAware))
        if t.precision != "float32" {
            try g.write("loss_scale", shape: [t.lossScale.count], t.lossScale)
            try g.write("skipped_steps", shape: [t.skippedSteps.count], t.skippedSteps.map(Int64.init))
        }
        try g.write("unchanged_fraction", shape: [t.unchangedFraction.count], t.unchangedFraction)
        let u = try g.createGroup("gradient_underflow")
        for layer in t.gradientUnderflow {
            try u.write(layer.layer, shape: [3], [layer.zero, layer.subnormal, layer.total].map(Int64.init))
        }
        try g.setAttribute("seconds", .double(t.seconds))
        try g.setAttribute("iterations", .int(t.iterations))
        try g.setAttribute("final_train_accuracy", .double(t.trainAccuracy.last ?? .nan))
        try g.setAttribute("final_test_accuracy", .double(t.testAccuracy.last ?? .nan))
        try g.write("loss", shape: [t.loss.count], t.loss)
        try g.write("train_accuracy", shape: [t.trainAccuracy.count], t.trainAccuracy)
        try g.write("test_accuracy", shape: [t.testAccuracy.count], t.testAccuracy)
        try g.write("epoch_seconds", shape: [t.epochSeconds.count], t.epochSeconds)
    }

    /// Builds a complete new version of `path` in a temporary file next to it (`body` gets its
    /// path; every HDF5 handle must be released when it returns), then renames it over `path`, all
    /// under the file's write lock. An error or an interruption leaves `path` as it was and no
    /// temporary file.
    static func replace(_ path: String, _ body: (String) throws -> Void) throws {
        do {
            try withWriteLock(path) { try AtomicFiles.write(path, body) }
        } catch let e as HDF5Error where e.file != path {
            // The temporary file is Precis's business: errors name the user's file.
            throw HDF5Error(file: path, path: e.path, message: e.message)
        }
    }

    /// Changes an existing file safely: under the write lock, a copy of the file as it is now is
    /// modified, then renamed over the original. Callers read (and so validate) the file first
    /// (`WeightStore.modify`).
    static func modify(_ path: String, _ body: (HDF5Group) throws -> Void) throws {
        try replace(path) { tmp in
            do {
                try Data(contentsOf: URL(fileURLWithPath: path)).write(to: URL(fileURLWithPath: tmp))
            } catch {
                throw HDF5Error(
                    file: path, path: "", message: "cannot write a copy next to it: \(error.localizedDescription)")
            }
            let root = try HDF5File.open(tmp, writable: true).root
            try body(root)
            try root.file.flush()
        }
    }

    // MARK: reading

    /// Reads and validates a file: format name and version, the model spec, every tensor the spec
    /// needs with the right shape, element type float32 and finite values.
    public static func read(_ path: String) throws -> WeightFile { try WeightStore(path).master }

    /// Reads and validates the master of an open file (see `read`).
    static func read(root: HDF5Group) throws -> WeightFile {
        try checkFormat(root)
        let model = try root.group("model")
        let spec = try readSpec(model)
        let tensors = try readLayers(spec, from: try model.group("layers"), as: Float.self)
        let training = root.contains("training") ? try readTraining(try root.group("training")) : nil
        let source =
            try model.attribute("source_format") == nil
            ? nil
            : Provenance(
                format: try string(model, "source_format"), file: try string(model, "source_file"),
                producer: try string(model, "producer"), attribution: try string(model, "attribution"))
        return WeightFile(
            spec: spec, dataset: try string(model, "dataset"), training: training, tensors: tensors, source: source)
    }

    static func checkFormat(_ root: HDF5Group) throws {
        let file = root.file.path
        guard case .string(let format)? = try root.attribute("format"), format == Self.format else {
            throw HDF5Error(
                file: file, path: "", message: "not a Precis weight file (no format=\"\(Self.format)\" attribute on /)")
        }
        guard case .int(let version)? = try root.attribute("format_version") else {
            throw HDF5Error(file: file, path: "", message: "missing format_version attribute on /")
        }
        guard version == Self.version else {
            throw HDF5Error(
                file: file, path: "",
                message: "unknown format version \(version) (this precis reads version \(Self.version))")
        }
    }

    static func string(_ g: HDF5Group, _ name: String) throws -> String {
        guard case .string(let s)? = try g.attribute(name) else {
            throw HDF5Error(file: g.file.path, path: g.path, message: "missing string attribute \(name)")
        }
        return s
    }

    static func number(_ g: HDF5Group, _ name: String) throws -> Double {
        switch try g.attribute(name) {
        case .int(let v)?: return Double(v)
        case .double(let v)?: return v
        default: throw HDF5Error(file: g.file.path, path: g.path, message: "missing numeric attribute \(name)")
        }
    }

    static func readSpec(_ model: HDF5Group) throws -> ModelSpec {
        let file = model.file.path
        guard case .ints(let inputShape)? = try model.attribute("input_shape") else {
            throw HDF5Error(file: file, path: model.path, message: "missing input_shape attribute")
        }
        do {
            let layers = try JSONDecoder().decode([LayerSpec].self, from: Data(try string(model, "spec").utf8))
            let spec = ModelSpec(
                name: try string(model, "name"), inputShape: inputShape, layers: layers,
                wiring: try readWiring(layers, try model.group("layers")),
                weightInit: try WeightInit(parsing: try string(model, "weight_init")))
            _ = try spec.shapes()
            return spec
        } catch let error as HDF5Error {
            throw error
        } catch let error as ModelError {
            throw HDF5Error(file: file, path: model.path, message: "bad model spec: \(error)")
        } catch {
            throw HDF5Error(
                file: file, path: model.path, message: "bad model spec: the spec attribute is not a JSON layer list")
        }
    }

    /// The `inputs` attributes of the groups in `group` for `layers` (none in a chain).
    static func readWiring(_ layers: [LayerSpec], _ group: HDF5Group) throws -> [Int: [Int]] {
        let names = ModelSpec(name: "", layers: layers, weightInit: .he).layerNames
        var wiring: [Int: [Int]] = [:]
        for (i, name) in names.enumerated() where group.contains(name) {
            let g = try group.group(name)
            guard try g.attribute("inputs") != nil else { continue }
            wiring[i] = try string(g, "inputs").split(separator: " ").map { source in
                if source == "input" { return -1 }
                guard let j = names.firstIndex(of: String(source)) else {
                    throw HDF5Error(
                        file: group.file.path, path: g.path, message: "inputs names '\(source)', which is no layer")
                }
                return j
            }
        }
        return wiring
    }

    /// Every tensor of `spec` from `layers` (stored as `E`), checked for shape and finiteness.
    static func readLayers<E: HDF5Scalar & BinaryFloatingPoint>(_ spec: ModelSpec, from layers: HDF5Group, as: E.Type)
        throws -> [String: Tensor<Double>]
    {
        try readLayers(spec, from: layers, as: E.self, widen: Double.init)
    }

    /// The tensors of `layers` for `spec`, read as `E` and widened by `widen`, validated.
    static func readLayers<E: HDF5Scalar>(_ spec: ModelSpec, from layers: HDF5Group, as: E.Type, widen: (E) -> Double)
        throws -> [String: Tensor<Double>]
    {
        var out: [String: Tensor<Double>] = [:]
        for layer in try spec.geometry() where !layer.tensors.isEmpty {
            let g = try layers.group(layer.name)
            for t in layer.tensors {
                let info = try g.datasetInfo(t.name), at = g.path + "/" + t.name
                guard info.shape == t.shape else {
                    throw HDF5Error(
                        file: layers.file.path, path: at,
                        message: "has shape \(shapeText(info.shape)), spec expects \(shapeText(t.shape))")
                }
                let values = try g.read(t.name, as: E.self).values.map(widen)
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw HDF5Error(
                        file: layers.file.path, path: at,
                        message: "holds a non-finite value (\(values[bad])) at element \(bad)")
                }
                if t.role == .inputStd, let bad = values.firstIndex(where: { $0 <= 0 }) {
                    throw HDF5Error(
                        file: layers.file.path, path: at,
                        message: "holds a standard deviation that is not positive (\(values[bad])) at element \(bad)")
                }
                out[layer.key(t.name)] = Tensor(shape: t.shape, data: values)
            }
        }
        return out
    }

    static func readTraining(_ g: HDF5Group) throws -> TrainingRecord {
        func series(_ name: String) throws -> [Double] { try g.read(name, as: Double.self).values }
        var t = TrainingRecord()
        t.dataset = try string(g, "dataset")
        t.trainSize = Int(try number(g, "train_size"))
        t.testSize = Int(try number(g, "test_size"))
        t.epochs = Int(try number(g, "epochs"))
        t.batchSize = Int(try number(g, "batch_size"))
        t.optimizer = try string(g, "optimizer")
        t.learningRate = try number(g, "learning_rate")
        t.schedule = try string(g, "lr_schedule")
        t.seed = Int(try number(g, "seed"))
        // Files written before augmentation existed trained without it.
        t.augmentation = try g.attribute("augmentation") == nil ? "" : try string(g, "augmentation")
        t.precision = try g.attribute("precision") == nil ? "float32" : try string(g, "precision")
        guard TrainingPrecision(rawValue: t.precision) != nil else {
            throw HDF5Error(file: g.file.path, path: g.path, message: "unknown training precision '\(t.precision)'")
        }
        if t.precision != "float32" {
            t.lossScale = try series("loss_scale")
            t.skippedSteps = try g.read("skipped_steps", as: Int64.self).values.map { Int($0) }
        }
        // Files written before fine-tuning existed started from the seed.
        t.startedFrom = try g.attribute("started_from") == nil ? "" : try string(g, "started_from")
        t.quantizationAware = try g.attribute("quantization_aware") == nil ? "" : try string(g, "quantization_aware")
        // Files written before these counts existed have neither.
        if g.contains("unchanged_fraction") {
            t.unchangedFraction = try series("unchanged_fraction")
            guard t.unchangedFraction.allSatisfy({ (0...1).contains($0) }) else {
                throw HDF5Error(file: g.file.path, path: g.path + "/unchanged_fraction", message: "must lie in [0, 1]")
            }
        }
        if g.contains("gradient_underflow") {
            let u = try g.group("gradient_underflow")
            t.gradientUnderflow = try u.children().map { name in
                let v = try u.read(name, as: Int64.self).values.map { Int($0) }
                guard v.count == 3, v.allSatisfy({ $0 >= 0 }), v[0] + v[1] <= v[2] else {
                    throw HDF5Error(
                        file: g.file.path, path: u.path + "/" + name,
                        message: "must hold 3 counts: zero, subnormal, total")
                }
                return GradientUnderflow(layer: name, zero: v[0], subnormal: v[1], total: v[2])
            }
        }
        t.seconds = try number(g, "seconds")
        t.iterations = Int(try number(g, "iterations"))
        t.loss = try series("loss")
        t.trainAccuracy = try series("train_accuracy")
        t.testAccuracy = try series("test_accuracy")
        t.epochSeconds = try series("epoch_seconds")
        return t
    }

    // MARK: variants

    /// The precisions `export` can store: every precision mode's variant, in the modes' order.
    public static let variantPrecisions = PrecisionMode.allCases.compactMap(\.variant).reduce(into: [String]()) {
        names, v in
        if !names.contains(v) { names.append(v) }
    }

    /// `/variants/<precision>` under `root`, replacing an existing one.
    func writeVariant(_ precision: String, into root: HDF5Group) throws {
        guard let type = HDF5ElementType(rawValue: precision), Self.variantPrecisions.contains(precision) else {
            throw HDF5Error(
                file: root.file.path, path: "",
                message:
                    "cannot export precision '\(precision)' (known: \(Self.variantPrecisions.joined(separator: ", ")))")
        }
        let variants = try root.groupCreatingIfNeeded("variants")
        if variants.contains(precision) { try variants.remove(precision) }
        let v = try variants.createGroup(precision)
        try v.setAttribute("precision", .string(precision))
        try v.setAttribute("element_type", .string(type.rawValue))
        let model = try v.createGroup("model")
        if type == .float16 {
            try v.setAttribute("source", .string("/model/layers rounded to nearest even"))
            try Self.writeLayers(spec, tensors.mapValues { $0.data.map { Float16($0) } }, into: model)
        } else {
            // As the bfloat16-acc32 mode rounds them: to float32, then to bfloat16.
            try v.setAttribute("source", .string("/model/layers rounded to float32, then to bfloat16, to nearest even"))
            try Self.writeLayers(spec, tensors.mapValues { $0.data.map { BFloat16(Float($0)) } }, into: model)
        }
    }

    /// The tensors of float variant `name` (`/variants/<name>` under `root`) for `spec`, validated
    /// like the master and widened to Double.
    static func readVariant(_ name: String, spec: ModelSpec, root: HDF5Group) throws -> [String: Tensor<Double>] {
        let layers = try root.group("variants/\(name)/model/layers")
        switch name {
        case "float16": return try readLayers(spec, from: layers, as: Float16.self)
        case "bfloat16": return try readLayers(spec, from: layers, as: BFloat16.self) { Double($0.float) }
        default:
            throw HDF5Error(file: root.file.path, path: layers.path, message: "unknown variant precision '\(name)'")
        }
    }
}
