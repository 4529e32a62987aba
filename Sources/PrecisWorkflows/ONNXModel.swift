import Foundation
import PrecisCore
import PrecisONNX
import PrecisWeights

extension WeightStore {
    /// The precisions an ONNX model can be written in: float32, float16 (the stored half variant, or
    /// the master rounded), and int8 variants (static ones; a dynamic one is refused with the reason).
    public static func writesONNX(_ precision: Precision) -> Bool {
        switch precision {
        case .floating(let mode): return mode == .float32 || mode == .float16
        case .int8: return true
        case .format, .searched: return false
        }
    }

    /// The network as an ONNX model in `precision` (see `writesONNX`), described for its users.
    public func onnxModel(_ precision: Precision) throws -> Data {
        let form: ONNXForm, tensors: [String: Tensor<Double>]
        switch precision {
        case .floating(.float32): (form, tensors) = (.float32, master.tensors)
        case .floating(.float16): (form, tensors) = (.float16, try self.tensors(for: .float16))
        case .int8 where int8VariantNames.contains(precision.name):
            let v = try variant(precision.name, of: QuantizedModel.self)
            guard !v.dynamic else {
                throw DataError(file: path, problem: "\(precision) is dynamic: ONNX export takes static int8 variants")
            }
            (form, tensors) = (.int8(v.model), v.tensors)
        case .int8:
            throw DataError(file: path, problem: "has no variant '\(precision)' (precis quantize stores one)")
        case .floating, .format, .searched:
            throw DataError(file: path, problem: "ONNX export writes float32, float16 or int8, not \(precision)")
        }
        let description = ONNXDescription(
            dataset: master.dataset, precision: precision.name, classNames: Dataset.classNames(of: master.dataset))
        return try exportONNX(
            spec: spec, tensors: tensors, form: form, producer: "precis \(precisVersion)", description: description)
    }
}
