import Foundation

/// A trained network on disk. Interim format until the HDF5 layout lands: magic line
/// `PRECIS-WEIGHTS 0`, one JSON header line (model, data set, training summary, tensor names and
/// shapes), then every tensor as little-endian float32 in header order. Written to a temporary file
/// in the same folder and renamed into place.
public struct WeightFile {
    static let magic = "PRECIS-WEIGHTS 0\n"

    struct Header: Codable {
        var name: String
        var layers: String
        var inputShape: [Int]
        var weightInit: String
        var dataset: String
        var training: TrainingSummary?
        var tensors: [TensorEntry]
    }

    struct TensorEntry: Codable {
        var name: String
        var shape: [Int]
    }

    /// What a training run did, stored beside the weights.
    public struct TrainingSummary: Codable, Sendable {
        public var epochs: Int
        public var batchSize: Int
        public var optimizer: String
        public var learningRate: Double
        public var schedule: String
        public var seed: UInt64
        public var seconds: Double
        public var trainAccuracy: [Double]
        public var testAccuracy: [Double]

        public init(config: TrainingConfig, history: TrainingHistory) {
            epochs = config.epochs
            batchSize = config.batchSize
            optimizer = config.optimizer.rawValue
            learningRate = config.learningRate ?? config.optimizer.defaultLearningRate
            schedule = config.schedule.description
            seed = config.seed
            seconds = history.seconds
            trainAccuracy = history.trainAccuracy
            testAccuracy = history.testAccuracy
        }
    }

    public var spec: ModelSpec
    /// The data set the network was trained on.
    public var dataset: String
    public var training: TrainingSummary?
    /// Every tensor by name (`00_conv1/W`), as stored (float32 values).
    public var tensors: [String: Tensor<Double>]

    public init(spec: ModelSpec, dataset: String, training: TrainingSummary?, tensors: [String: Tensor<Double>]) {
        (self.spec, self.dataset, self.training, self.tensors) = (spec, dataset, training, tensors)
    }

    /// Writes the file via a temporary file in the same folder; refuses to replace an existing file
    /// unless `overwrite`.
    public func write(to path: String, overwrite: Bool = false) throws {
        if !overwrite && FileManager.default.fileExists(atPath: path) {
            throw DataError(file: path, problem: "file exists (use --force to replace it)")
        }
        let names = tensors.keys.sorted()
        let header = Header(name: spec.name, layers: spec.layerText, inputShape: spec.inputShape, weightInit: spec.weightInit.description,
                            dataset: dataset, training: training, tensors: names.map { TensorEntry(name: $0, shape: tensors[$0]!.shape) })
        var out = Data(Self.magic.utf8)
        out += try JSONEncoder().encode(header)
        out += Data("\n".utf8)
        for name in names {
            for v in tensors[name]!.data { withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { out += $0 } }
        }
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).part")
        do {
            try out.write(to: tmp)
            if FileManager.default.fileExists(atPath: path) { _ = try FileManager.default.replaceItemAt(url, withItemAt: tmp) } else {
                try FileManager.default.moveItem(at: tmp, to: url)
            }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw DataError(file: path, problem: "cannot write: \(error.localizedDescription)")
        }
    }

    /// Reads and validates a file: magic, header, tensor sizes, finite values, and that the tensors
    /// fit the model.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, problem: FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file")
        }
        let bytes = [UInt8](data)
        guard bytes.starts(with: Array(Self.magic.utf8)) else { throw DataError(file: path, problem: "not a Precis weight file") }
        let start = Self.magic.utf8.count
        guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")),
              let header = try? JSONDecoder().decode(Header.self, from: Data(bytes[start..<end])) else {
            throw DataError(file: path, problem: "corrupt header")
        }
        let total = header.tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        guard bytes.count - (end + 1) == 4 * total else {
            throw DataError(file: path, problem: "truncated or padded: \(bytes.count - end - 1) bytes of tensors, header needs \(4 * total)")
        }
        var offset = end + 1
        var tensors: [String: Tensor<Double>] = [:]
        for entry in header.tensors {
            let n = entry.shape.reduce(1, *)
            let values = (0..<n).map { i -> Double in
                let o = offset + 4 * i
                let bits = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
                return Double(Float(bitPattern: bits))
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw DataError(file: path, problem: "\(entry.name) holds a non-finite value (\(values[bad])) at element \(bad)")
            }
            tensors[entry.name] = Tensor(shape: entry.shape, data: values)
            offset += 4 * n
        }
        do {
            var spec = ModelSpec(name: header.name, inputShape: header.inputShape, layers: try LayerSpec.parseList(header.layers),
                                 weightInit: try WeightInit(parsing: header.weightInit))
            spec.name = header.name
            _ = try Network<Double>(spec: spec, parameters: tensors)
            self.init(spec: spec, dataset: header.dataset, training: header.training, tensors: tensors)
        } catch let error as ModelError {
            throw DataError(file: path, problem: error.description)
        }
    }
}
