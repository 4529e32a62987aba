import PrecisCore

/// A quantized model that a weight file stores under `/variants/<name>`: int8 (`QuantizedModel`,
/// laid out as `Int8Variant.swift` says) or a number format (`FormatModel`, `FormatVariant.swift`).
/// `WeightStore` stores, reads and rewrites either through these requirements.
public protocol VariantModel {
    /// The variant as it runs.
    associatedtype Stored: StoredVariant where Stored.Model == Self

    /// The precision the model stands for; its name is the variant's.
    var precision: Precision { get }

    /// The attributes `write` sets on the variant's group itself (the rest are the caller's).
    static var ownAttributes: [String] { get }

    /// Writes the model, for `file`'s network, as `/variants/<precision>` under `root`, replacing
    /// one of that name; `calibration` adds attributes to the variant.
    func write(for file: WeightFile, calibration: [(String, HDF5Attribute)], into root: HDF5Group) throws

    /// Variant `name` of `file` under `root`, validated.
    static func read(_ name: String, for file: WeightFile, root: HDF5Group) throws -> Stored
}

/// A stored quantized variant as it runs.
public protocol StoredVariant {
    associatedtype Model: VariantModel
    var model: Model { get }
    /// The float tensors it runs with: the master's, with the variant's own in their place.
    var tensors: [String: Tensor<Double>] { get }
}

extension QuantizedModel: VariantModel {
    public static var ownAttributes: [String] { Int8Attribute.allCases.map(\.rawValue) }

    public func write(for file: WeightFile, calibration: [(String, HDF5Attribute)], into root: HDF5Group) throws {
        try file.writeInt8(self, calibration: calibration, into: root)
    }

    public static func read(_ name: String, for file: WeightFile, root: HDF5Group) throws -> StoredInt8 {
        try file.readInt8(name, root: root)
    }
}

extension FormatModel: VariantModel {
    public static var ownAttributes: [String] { FormatAttribute.allCases.map(\.rawValue) }

    public func write(for file: WeightFile, calibration: [(String, HDF5Attribute)], into root: HDF5Group) throws {
        try file.writeFormat(self, calibration: calibration, into: root)
    }

    public static func read(_ name: String, for file: WeightFile, root: HDF5Group) throws -> StoredFormat {
        let (model, tensors) = try file.readFormat(name, root: root)
        return StoredFormat(
            network: try FormatNetwork(spec: file.spec, tensors: tensors, model: model), tensors: tensors)
    }
}
