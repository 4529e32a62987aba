/// The scalar type a precision mode computes in.
public enum ComputeType: String, Sendable {
    case double, float, float16
}

/// A precision mode of the precision report: the scalar type the network computes in and how
/// values are stored between operations (see the Precision Semantics article).
public enum PrecisionMode: String, Sendable, CaseIterable, Codable {
    case float64, float32, float16
    case float16Acc32 = "float16-acc32"
    case bfloat16Acc32 = "bfloat16-acc32"

    /// Everything that distinguishes one mode from another.
    public struct Properties: Sendable {
        /// The scalar type of products and sums.
        public let compute: ComputeType
        /// How weights, activations and results are rounded between operations.
        public let storage: StorageFormat
        /// Bytes per stored weight.
        public let bytesPerValue: Int
        /// The smallest normal magnitude of the format values are stored in.
        public let minNormal: Double
        /// The `/variants/<name>` that holds exactly the weights the mode rounds to, if any.
        public let variant: String?
    }

    /// The table of modes.
    public var properties: Properties {
        let half = Double(Float16.leastNormalMagnitude), single = Double(Float.leastNormalMagnitude)
        switch self {
        case .float64:
            return Properties(
                compute: .double, storage: .native, bytesPerValue: 8,
                minNormal: Double.leastNormalMagnitude, variant: nil)
        case .float32:
            return Properties(compute: .float, storage: .native, bytesPerValue: 4, minNormal: single, variant: nil)
        case .float16:
            return Properties(
                compute: .float16, storage: .native, bytesPerValue: 2, minNormal: half, variant: "float16")
        case .float16Acc32:
            return Properties(compute: .float, storage: .float16, bytesPerValue: 2, minNormal: half, variant: "float16")
        case .bfloat16Acc32:
            return Properties(
                compute: .float, storage: .bfloat16, bytesPerValue: 2, minNormal: single,
                variant: "bfloat16")
        }
    }

    /// The storage format between operations.
    public var storage: StorageFormat { properties.storage }
    /// Bytes per stored weight.
    public var bytesPerValue: Int { properties.bytesPerValue }
    /// The smallest normal magnitude of the format values are stored in.
    public var minNormal: Double { properties.minNormal }
    /// The stored variant that serves the mode, if any.
    public var variant: String? { properties.variant }

    /// Builds the network of this mode from `tensors` and passes it to `body`.
    public func withNetwork<Body: NetworkBody>(spec: ModelSpec, tensors: [String: Tensor<Double>], _ body: Body) throws
        -> Body.Result
    {
        switch properties.compute {
        case .double: return try body(try Network<Double>(spec: spec, parameters: tensors, storage: storage))
        case .float: return try body(try Network<Float>(spec: spec, parameters: tensors, storage: storage))
        case .float16: return try body(try Network<Float16>(spec: spec, parameters: tensors, storage: storage))
        }
    }
}

/// Work done with a network of any scalar type: Swift closures cannot be generic, so a mode's
/// network is handed to a value of this protocol (`PrecisionMode.withNetwork`).
public protocol NetworkBody {
    associatedtype Result
    func callAsFunction<T: NetworkScalar>(_ network: Network<T>) throws -> Result
}
