import Foundation
import PrecisCore

/// What `precis inspect` shows of a weight file: model, layers, bytes per stored form, training
/// record and recorded evaluations.
public struct FileSummary: Codable, Equatable, Sendable {
    /// One layer: name, kind, spec text, the values it reads (layer names or `input`), output
    /// shape and parameter count.
    public struct Layer: Codable, Equatable, Sendable {
        public var name: String, kind: String, spec: String
        public var inputs: [String]
        public var outputShape: [Int]
        public var parameters: Int

        private enum CodingKeys: String, CodingKey {
            case name, kind, spec, inputs, outputShape = "output_shape", parameters
        }
    }

    /// The weights in one stored form: the master or a variant.
    public struct Storage: Codable, Equatable, Sendable {
        public var precision: String
        /// The HDF5 group.
        public var group: String
        public var bytes: Int
        public var ratioToFloat32: Double
        /// Bits per stored value, every scale and zero point included (8 · bytes / parameters).
        public var bitsPerValue: Double

        private enum CodingKeys: String, CodingKey {
            case precision, group, bytes, ratioToFloat32 = "ratio_to_float32", bitsPerValue = "bits_per_value"
        }
    }

    /// The training record's summary.
    public struct Training: Codable, Equatable, Sendable {
        public var dataset: String, trainSize: Int, testSize: Int, epochs: Int, batchSize: Int
        public var optimizer: String, learningRate: Double, lrSchedule: String, seed: Int
        /// The random transforms of the training images (`shift:2,rotate:10`), empty for none.
        public var augmentation: String
        /// The training precision, and for mixed precision the skipped steps and the last loss scale.
        public var precision: String, skippedSteps: Int, finalLossScale: Double?
        /// The file a fine-tuning run started from, and the format QAT simulated (empty when not).
        public var startedFrom: String, quantizationAware: String
        public var seconds: Double, iterations: Int
        /// Fractions (0...1); nil when the record holds no epoch.
        public var finalTrainAccuracy: Double?, finalTestAccuracy: Double?

        private enum CodingKeys: String, CodingKey {
            case dataset, trainSize = "train_size", testSize = "test_size", epochs, batchSize = "batch_size", optimizer
            case learningRate = "learning_rate", lrSchedule = "lr_schedule", seed, augmentation, seconds, iterations
            case precision, skippedSteps = "skipped_steps", finalLossScale = "final_loss_scale"
            case startedFrom = "started_from", quantizationAware = "quantization_aware"
            case finalTrainAccuracy = "final_train_accuracy", finalTestAccuracy = "final_test_accuracy"
        }
    }

    /// A recorded evaluation: the report row, with the data set and when.
    public struct Evaluation: Codable, Equatable, Sendable {
        public var result: ModeResult
        public var dataset: String, inputScale: Double, recordedAt: String

        private enum CodingKeys: String, CodingKey {
            case result, dataset, inputScale = "input_scale", recordedAt = "recorded_at"
        }
    }

    /// ``ReportSchema/inspect``.
    /// Where an imported network came from.
    public struct Source: Codable, Equatable, Sendable {
        public var format: String, file: String, producer: String, attribution: String
    }

    public var schema = ReportSchema.inspect
    public var file: String, format: String, formatVersion: Int
    public var model: String, inputShape: [Int], classes: Int, weightInit: String, dataset: String
    public var parameters: Int
    /// The statistics the network's input normalization applies, if it has one.
    public var inputNormalization: ChannelStatistics?
    public var layers: [Layer]
    public var storage: [Storage]
    public var training: Training?
    public var source: Source?
    public var evaluations: [Evaluation]

    private enum CodingKeys: String, CodingKey {
        case schema, file, format, formatVersion = "format_version", model, inputShape = "input_shape", classes
        case weightInit = "weight_init", dataset, parameters, layers, storage, training, source, evaluations
        case inputNormalization = "input_normalization"
    }
}

extension WeightStore {
    /// The bytes of the weights as `variant` stores them: an int8 variant's network bytes (see
    /// `QuantizedModel.networkBytes`), a float variant's element size per value.
    public func storedBytes(_ variant: String) throws -> Int {
        switch Precision(name: variant) {
        case .int8?:
            let v = try self.variant(variant, of: QuantizedModel.self)
            return v.model.networkBytes(spec, floatBytesPerValue: v.floatBytesPerValue)
        case .format?: return try self.variant(variant, of: FormatModel.self).network.modelBytes
        case .searched?: return try self.variant(variant, of: SearchedModel.self).network.modelBytes
        case .floating?, nil: break
        }
        return try spec.parameterCount() * (HDF5ElementType(rawValue: variant)?.size ?? HDF5ElementType.float32.size)
    }

    /// The summary `precis inspect` prints.
    public func summary() throws -> FileSummary {
        let spec = self.spec, parameters = try spec.parameterCount(),
            float32Bytes = parameters * HDF5ElementType.float32.size
        let layers = try spec.geometry().map { g in
            FileSummary.Layer(
                name: g.name, kind: g.spec.kind, spec: g.spec.description,
                inputs: spec.inputs(of: g.index).map(spec.sourceName), outputShape: g.outputShape,
                parameters: g.parameterCount)
        }
        var storage = [
            FileSummary.Storage(
                precision: "float32", group: "/model", bytes: float32Bytes, ratioToFloat32: 1, bitsPerValue: 32)
        ]
        for v in variantNames {
            let bytes = try storedBytes(v)
            storage.append(
                FileSummary.Storage(
                    precision: v, group: "/variants/\(v)", bytes: bytes,
                    ratioToFloat32: Double(bytes) / Double(max(float32Bytes, 1)),
                    bitsPerValue: 8 * Double(bytes) / Double(max(parameters, 1))))
        }
        let training = master.training.map { t in
            FileSummary.Training(
                dataset: t.dataset, trainSize: t.trainSize, testSize: t.testSize, epochs: t.epochs,
                batchSize: t.batchSize,
                optimizer: t.optimizer, learningRate: t.learningRate, lrSchedule: t.schedule, seed: t.seed,
                augmentation: t.augmentation, precision: t.precision, skippedSteps: t.skippedSteps.count,
                finalLossScale: t.lossScale.last, startedFrom: t.startedFrom, quantizationAware: t.quantizationAware,
                seconds: t.seconds, iterations: t.iterations,
                finalTrainAccuracy: t.trainAccuracy.last,
                finalTestAccuracy: t.testAccuracy.last)
        }
        let evaluations = try evaluations().map {
            FileSummary.Evaluation(
                result: $0.result, dataset: $0.dataset, inputScale: $0.inputScale, recordedAt: $0.recordedAt)
        }
        return FileSummary(
            file: path, format: WeightFile.format, formatVersion: WeightFile.version, model: spec.name,
            inputShape: spec.inputShape, classes: spec.classes, weightInit: spec.weightInit.description,
            dataset: master.dataset, parameters: parameters,
            inputNormalization: try spec.geometry().first { $0.spec == .inputNormalization }.map { g in
                ChannelStatistics(mean: master.tensors[g.key("mean")]!.data, std: master.tensors[g.key("std")]!.data)
            }, layers: layers, storage: storage, training: training,
            source: master.source.map {
                FileSummary.Source(format: $0.format, file: $0.file, producer: $0.producer, attribution: $0.attribution)
            }, evaluations: evaluations)
    }
}

extension FileSummary {
    /// The summary as a person reads it.
    public var text: String {
        var out = [
            "\(file): \(format) v\(formatVersion)",
            "model \(model): input \(shapeText(inputShape)), \(classes) classes, "
                + (source == nil ? "init \(weightInit), " : "")
                + (training == nil ? "data set \(dataset)" : "trained on \(dataset)"),
        ]
        if let n = inputNormalization {
            let list = { (v: [Double]) in v.map { String(format: "%.4g", $0) }.joined(separator: ", ") }
            out.append("input normalized per channel: mean (\(list(n.mean))), std (\(list(n.std)))")
        }
        if let s = source {
            out.append("imported from \(s.file): \(s.format), by \(s.producer)")
            if !s.attribution.isEmpty { out.append("  attribution: \(s.attribution)") }
        }
        // A graph's layers say what they read; a chain's read the layer before.
        let chain = layers.enumerated().allSatisfy { i, l in l.inputs == [i == 0 ? "input" : layers[i - 1].name] }
        var table = TextTable(
            [("layer", .left), ("kind", .left)] + (chain ? [] : [("reads", .left)])
                + [("output", .left), ("parameters", .right)])
        for l in layers {
            table.add(
                [l.name, l.kind] + (chain ? [] : [l.inputs.joined(separator: " ")])
                    + [shapeText(l.outputShape), "\(l.parameters)"])
        }
        out += table.lines(indent: 2)
        out.append("  total parameters: \(parameters)")
        out.append("storage:")
        var bytes = TextTable([
            ("precision", .left), ("group", .left), ("bytes", .right), ("vs float32", .right), ("bits a value", .right),
        ])
        for s in storage {
            bytes.add([
                s.precision, s.group, "\(s.bytes)", String(format: "%.2fx", s.ratioToFloat32),
                String(format: "%.2f", s.bitsPerValue),
            ])
        }
        out += bytes.lines(indent: 2)
        if let t = training {
            out.append(
                String(
                    format:
                        "training: %@ (%d train / %d test), %d %@, batch %d, %@ lr %g (%@), seed %d, %.0f s, "
                        + "%d iterations",
                    t.dataset, t.trainSize, t.testSize, t.epochs, t.epochs == 1 ? "epoch" : "epochs", t.batchSize,
                    t.optimizer,
                    t.learningRate, t.lrSchedule, t.seed, t.seconds, t.iterations))
            if !t.augmentation.isEmpty { out.append("  augmentation: \(t.augmentation)") }
            if !t.startedFrom.isEmpty {
                out.append(
                    "  fine-tuned from \(t.startedFrom)"
                        + (t.quantizationAware.isEmpty ? "" : ", quantization-aware for \(t.quantizationAware)"))
            }
            if let scale = t.finalLossScale {
                out.append(
                    "  precision: \(t.precision), loss scale \(scale.formatted()) at the end, "
                        + "\(t.skippedSteps) \(t.skippedSteps == 1 ? "step" : "steps") skipped for overflow")
            } else if t.precision != "float32" {
                out.append("  precision: \(t.precision)")
            }
            out.append(
                "  final accuracy: train \(t.finalTrainAccuracy.map(percentText) ?? "-"), "
                    + "test \(t.finalTestAccuracy.map(percentText) ?? "-")")
        }
        if !evaluations.isEmpty {
            out.append("evaluations:")
            var table = TextTable([
                ("precision", .left), ("accuracy", .right), ("change vs float32", .right), ("differs", .right),
                ("logit SQNR dB", .right), ("data set", .left), ("images", .right), ("weights", .left),
            ])
            for e in evaluations.sorted(by: { $0.result.precision < $1.result.precision }) {
                let r = e.result
                table.add([
                    r.precision, percentText(r.accuracy), String(format: "%+.2f pp", r.vsFloat32.changePP),
                    "\(r.vsFloat32.differs)",
                    decibelText(r.logits.sqnrDB), e.dataset, "\(r.images)", r.weights,
                ])
            }
            out += table.lines(indent: 2)
        }
        return out.joined(separator: "\n")
    }
}
