import PrecisCore

/// The master tensors of `spec` from arrays in the book's layout ("Deep Learning from Scratch"):
/// `W1`, `b1`, `W2`, `b2`, ... for the convolution and affine layers in order, convolutions
/// `(FN, C, FH, FW)` and affines `(in, out)`, which is Precis's own layout, so values are taken as
/// they are (rounded to float32 when the file is written). Every array must be used, with the
/// layer's shape and finite values; `file` names the source in errors.
public func bookTensors(_ arrays: [String: NumpyArray], spec: ModelSpec, file: String) throws -> [String: Tensor<
    Double
>] {
    func fail(_ problem: String) -> DataError { DataError(file: file, problem: problem) }
    var out: [String: Tensor<Double>] = [:], used: Set<String> = []
    var k = 0
    for layer in try spec.geometry() where !layer.tensors.isEmpty {
        guard layer.gemm != nil else {
            throw fail("the book's layout holds no \(layer.spec.kind) parameters (\(layer.name) needs them)")
        }
        k += 1
        for t in layer.tensors {
            let name = "\(t.name)\(k)"
            guard let a = arrays[name] else {
                throw fail("has no array \(name) for \(layer.key(t.name)) \(shapeText(t.shape))")
            }
            guard a.shape == t.shape else {
                throw fail("\(name) has shape \(shapeText(a.shape)), \(layer.key(t.name)) needs \(shapeText(t.shape))")
            }
            if let bad = a.values.firstIndex(where: { !$0.isFinite }) {
                throw fail("\(name) holds a non-finite value (\(a.values[bad])) at element \(bad)")
            }
            out[layer.key(t.name)] = Tensor(shape: t.shape, data: a.values)
            used.insert(name)
        }
    }
    if let extra = arrays.keys.filter({ !used.contains($0) }).sorted().first {
        throw fail("holds \(extra), which the model has no layer for (it has \(k) layers with weights)")
    }
    return out
}
