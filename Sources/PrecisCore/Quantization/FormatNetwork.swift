/// A network simulated in a `FormatMode`: the float32 network whose convolution and affine layers
/// have their weights rounded to the mode's format once, and their inputs rounded batch by batch,
/// along the reduction axis (a convolution's window, an affine layer's input). Products, sums and
/// biases stay in float32, as block-scaled hardware accumulates.
public struct FormatNetwork {
    public let mode: FormatMode
    public let network: Network<Float>
    /// Bytes of the weights: codes and scales of the rounded tensors, 4 per value of the others.
    public let modelBytes: Int
    /// Bits per weight value of the rounded tensors, scales included.
    public let bitsPerWeight: Double

    /// `mode` applied to `tensors`. Modes that scale inputs per tensor (`needsCalibration`) take
    /// their range from `observers` (the float32 network's layer inputs on calibration images,
    /// by layer index): the largest magnitude, or the MSE range for int8.
    public init(spec: ModelSpec, tensors: [String: Tensor<Double>], mode: FormatMode, observers: [Int: Observer] = [:])
        throws
    {
        self.mode = mode
        var parameters = tensors, roundings: [Int: OperandRounding] = [:], bits = 0.0, bytes = 0, rounded = 0
        for layer in try spec.geometry() {
            guard layer.spec.isQuantizable, let w = layer.tensor(.weight) else {
                bytes += 4 * layer.parameterCount
                continue
            }
            let key = layer.key(w.name)
            guard let weights = tensors[key] else { throw ModelError.badSpec("missing tensor \(key)") }
            // A convolution's W (FN, C, FH, FW) has a window per filter; an affine W (in, out) a column per unit.
            let layout: OperandLayout =
                w.shape.count == 4
                ? .rows(w.shape[0], w.shape.dropFirst().reduce(1, *)) : .columns(w.shape[0], w.shape[1])
            var values = weights.data.map { Float($0) }
            try FormatNetwork.round(&values, layout, mode.weights, layer: layer.name)
            parameters[key] = Tensor(shape: w.shape, data: values.map(Double.init))
            let layerBits = mode.weights.bits(vectors: layout.vectors, length: layout.length) * Double(values.count)
            bits += layerBits
            rounded += values.count
            bytes += Int((layerBits / 8).rounded(.up)) + 4 * (layer.parameterCount - values.count)
            if let a = mode.activations {
                roundings[layer.index] = try FormatNetwork.inputRounding(a, observers[layer.index], layer: layer.name)
            }
        }
        (modelBytes, bitsPerWeight) = (bytes, rounded > 0 ? bits / Double(rounded) : 32)
        network = try Network<Float>(spec: spec, parameters: parameters, inputRoundings: roundings)
    }

    /// Rounds a weight tensor to `format`; a tensor scale comes from its own largest magnitude.
    static func round(_ w: inout [Float], _ layout: OperandLayout, _ format: OperandFormat, layer: String) throws {
        let amax = w.reduce(Float(0)) { max($0, $1.magnitude) }
        switch format {
        case let .scaled(f, saturating):
            OperandRounding.scaled(GridRounder(f, saturating: saturating), scale: amax / f.max)(&w, layout)
        case .mx(let f): OperandRounding.mx(f)(&w, layout)
        case .nvfp4: OperandRounding.nvfp4(tensorAmax: amax)(&w, layout)
        case .int4(let int4): int4.round(&w, layout)
        case .int8: throw ModelError.badSpec("\(layer): int8 is an input format here, not a weight format")
        }
    }

    /// The rounding of a layer's input in `format`.
    static func inputRounding(_ format: OperandFormat, _ observer: Observer?, layer: String) throws -> OperandRounding {
        func calibrated() throws -> Observer {
            guard let observer, observer.count > 0 else {
                throw ModelError.badSpec("\(layer): no calibration values for its input scale")
            }
            return observer
        }
        switch format {
        case let .scaled(f, saturating):
            let amax = Float(try calibrated().threshold(.minmax))
            return .scaled(GridRounder(f, saturating: saturating), scale: amax / f.max)
        case .mx(let f): return .mx(f)
        case .nvfp4: return .nvfp4(tensorAmax: Float(try calibrated().threshold(.minmax)))
        case .int8: return .int8(try calibrated().quantRange(.mse, symmetric: false, unsigned: true))
        case .int4: throw ModelError.badSpec("\(layer): int4 is a weight format here, not an input format")
        }
    }

    /// Logits `(N, classes)`.
    public func predict(_ x: Tensor<Float>) -> Tensor<Float> { network.predict(x) }

    /// The input followed by every layer's output.
    public func forwardAll(_ x: Tensor<Float>) -> [Tensor<Float>] { network.forwardAll(x) }
}

extension OperandRounding {
    /// int8 codes of `range`, in Float: `(clamp(round(x / scale) + zp) − zp)·scale`.
    public static func int8(_ range: QuantRange) -> OperandRounding {
        let s = Float(range.scale), zp = Float(range.zeroPoint), lo = Float(range.qmin), hi = Float(range.qmax)
        return OperandRounding { x, layout in
            let count = (layout.vectors - 1) * layout.vectorStride + (layout.length - 1) * layout.elementStride + 1
            for i in 0..<count {
                x[i] = (min(hi, max(lo, (x[i] / s).rounded(.toNearestOrEven) + zp)) - zp) * s
            }
        }
    }
}
