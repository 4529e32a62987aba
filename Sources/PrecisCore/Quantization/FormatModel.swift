/// A weight tensor stored in a number format, as codes and scales: `vectors` reduction vectors of
/// `length` values (a convolution's filters, or an affine layer's units with W transposed), one
/// code per value in row-major `(vectors, length)` order.
public struct FormatTensor: Sendable, Equatable {
    public let format: OperandFormat
    public let vectors: Int, length: Int
    /// One code per value (4-bit and 6-bit codes in the low bits; int4 with a zero point as 0...15,
    /// symmetric int4 as a 4-bit two's complement −7...7).
    public var codes: [UInt8]
    /// Block scale codes, `(vectors, blocks)`: E8M0 for MX, E4M3 for NVFP4; empty otherwise.
    public var blockScales: [UInt8]
    /// float32 scales: one per tensor (OFP8, NVFP4's tensor scale) or per group `(vectors, groups)` (int4).
    public var scales: [Float]
    /// int4 zero points per group `(vectors, groups)` when the format has them; empty otherwise.
    public var zeroPoints: [UInt8]

    public init(
        format: OperandFormat, vectors: Int, length: Int, codes: [UInt8], blockScales: [UInt8], scales: [Float],
        zeroPoints: [UInt8]
    ) {
        (self.format, self.vectors, self.length, self.codes) = (format, vectors, length, codes)
        (self.blockScales, self.scales, self.zeroPoints) = (blockScales, scales, zeroPoints)
    }

    /// Values per block (MX 32, NVFP4 16) or group (int4), or nil for one scale per tensor.
    public var blockSize: Int? { format.block?.blockSize(length: length) }

    /// Blocks or groups per vector.
    public var blocksPerVector: Int { blockSize.map { (length + $0 - 1) / $0 } ?? 0 }

    /// `values` (row-major `(vectors, length)`) encoded in `format` (not `.int8`, an input format).
    public init(encoding values: [Float], vectors: Int, length: Int, format: OperandFormat) {
        precondition(values.count == vectors * length, "values must fill (vectors, length)")
        guard let block = format.block else { preconditionFailure("int8 is an input format") }
        self.init(
            format: format, vectors: vectors, length: length, codes: [], blockScales: [], scales: [], zeroPoints: [])
        block.quantize(values, into: &self)
    }

    /// The values the codes stand for, row-major `(vectors, length)`.
    public func decoded() -> [Float] { format.block.map { $0.dequantize(self) } ?? [] }

    /// Bytes as stored: each vector's codes packed into whole bytes (4-bit codes two a byte, 6-bit
    /// codes four in three bytes), scales and zero points.
    public var bytes: Int {
        vectors * ((length * format.elementBits + 7) / 8) + blockScales.count + 4 * scales.count + zeroPoints.count
    }
}

/// How a layer's input is scaled, from calibration: the largest magnitude (OFP8, NVFP4), or an int8
/// range.
public enum InputCalibration: Sendable, Equatable {
    case amax(Float)
    case range(QuantRange)
}

/// A network's convolution and affine layers in a `FormatMode`: their weights as codes and scales,
/// and their inputs' calibration when the mode needs one, by layer index. What `precis quantize
/// --format` stores, and what a `FormatNetwork` runs.
public struct FormatModel: Sendable, Equatable {
    public let mode: FormatMode
    public var weights: [Int: FormatTensor]
    public var inputs: [Int: InputCalibration]
    /// Whether some convolution or affine layers stay in float32.
    public let mixed: Bool
    /// The batch normalizations folded into the layer before them, by index (see `QuantizedModel.folded`).
    public var folded: Set<Int>
    /// How the master was equalized across layers before its weights were encoded (an equalized mode's);
    /// the model runs with `tensors(from:)`.
    public var equalization: Equalization?

    public init(
        mode: FormatMode, weights: [Int: FormatTensor], inputs: [Int: InputCalibration], mixed: Bool = false,
        folded: Set<Int> = [], equalization: Equalization? = nil
    ) {
        (self.mode, self.weights, self.inputs, self.mixed, self.folded) = (mode, weights, inputs, mixed, folded)
        self.equalization = equalization
    }

    /// The float tensors the model runs with, from the `master`'s: equalized as the model was.
    public func tensors(from master: [String: Tensor<Double>], spec: ModelSpec) throws -> [String: Tensor<Double>] {
        guard mode.equalized else { return master }
        guard let equalization else { throw ModelError.badSpec("\(name): the equalization is missing") }
        return try equalization.applied(to: master, spec: spec)
    }

    /// The precision the model stands for.
    public var precision: Precision { .format(mode, mixed: mixed) }
    /// Its name, as the variant that stores it is called.
    public var name: String { precision.name }

    /// The model with only `layers` in the format, the others in float32 (mixed when any is left out).
    public func only(_ layers: Set<Int>) -> FormatModel {
        FormatModel(
            mode: mode, weights: weights.filter { layers.contains($0.key) },
            inputs: inputs.filter { layers.contains($0.key) }, mixed: !weights.keys.allSatisfy(layers.contains),
            folded: folded, equalization: equalization)
    }

    /// Each layer's weight SQNR in dB against the float `tensors` (folded as the model folds), by layer index.
    public func weightSQNR(spec: ModelSpec, tensors: [String: Tensor<Double>]) throws -> [Int: Double] {
        var out: [Int: Double] = [:]
        let tensors = try spec.folding(folded, in: tensors)
        for layer in try spec.geometry() {
            guard let t = weights[layer.index], let gemm = layer.gemm, let w = layer.tensor(.weight),
                let master = tensors[layer.key(w.name)]
            else { continue }
            var e = ErrorStats()
            e.add(gemm.stored(t.decoded()).map(Double.init), reference: master.data, minNormal: 0)
            out[layer.index] = e.sqnrDB
        }
        return out
    }

    /// `mode` applied to `tensors` for `spec`: each weight tensor encoded, and each input calibrated
    /// from `observers` (by layer index) when the mode needs it: the largest magnitude, or the int8
    /// range with the least squared error. With `fold`, each batch normalization that can is folded
    /// into the layer before it first.
    public init(
        spec: ModelSpec, tensors: [String: Tensor<Double>], mode: FormatMode, observers: [Int: Observer] = [:],
        fold: Bool = true
    ) throws {
        var inputs: [Int: InputCalibration] = [:]
        for layer in try spec.geometry() where layer.spec.isQuantizable && mode.needsCalibration {
            guard let o = observers[layer.index], o.count > 0 else {
                throw ModelError.badSpec("\(layer.name): no calibration values for its input scale")
            }
            inputs[layer.index] = FormatModel.inputCalibration(mode, o)
        }
        try self.init(spec: spec, tensors: tensors, mode: mode, inputs: inputs, fold: fold)
    }

    /// How `mode` scales a layer input `observer` has seen: the int8 range with the least squared
    /// error (uint8 with a zero point), or the largest magnitude.
    public static func inputCalibration(_ mode: FormatMode, _ observer: Observer) -> InputCalibration {
        mode.activations == .int8
            ? .range(observer.quantRange(.mse, symmetric: false, unsigned: true))
            : .amax(Float(observer.threshold(.minmax)))
    }

    /// The name of `inputCalibration`'s rule for `mode`: `mse` or `amax`.
    public static func inputCalibrationName(_ mode: FormatMode) -> String {
        mode.activations == .int8 ? "mse" : "amax"
    }

    /// `mode` applied to `tensors` for `spec`: each weight tensor encoded, the inputs calibrated as
    /// `inputs` says (by layer index; every layer's when the mode needs it); with `fold`, each batch
    /// normalization that can is folded into the layer before it first.
    public init(
        spec: ModelSpec, tensors master: [String: Tensor<Double>], mode: FormatMode, inputs: [Int: InputCalibration],
        fold: Bool = true
    ) throws {
        let folded = fold ? Set(spec.foldableBatchNorms.keys) : []
        let tensors = try spec.folding(folded, in: master)
        self.init(mode: mode, weights: [:], inputs: inputs, folded: folded)
        if case .int8 = mode.weights { throw ModelError.badSpec("int8 is an input format, not a weight format") }
        if case .int4? = mode.activations { throw ModelError.badSpec("int4 is a weight format, not an input format") }
        for layer in try spec.geometry() {
            guard let gemm = layer.gemm, let w = layer.tensor(.weight) else { continue }
            let key = layer.key(w.name)
            guard let values = tensors[key], values.shape == w.shape else {
                throw ModelError.badSpec("missing tensor \(key)")
            }
            if mode.needsCalibration && inputs[layer.index] == nil {
                throw ModelError.badSpec("\(layer.name): no calibration for its input scale")
            }
            weights[layer.index] = FormatTensor(
                encoding: gemm.rows(values.data.map(Float.init)), vectors: gemm.channels, length: gemm.length,
                format: mode.weights)
        }
    }
}
