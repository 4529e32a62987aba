/// How a merge combines its inputs.
public enum MergeKind: String, Sendable {
    /// The elementwise sum (a residual connection).
    case add
    /// The inputs one after the other along the channel axis.
    case concat
    /// The elementwise product of two inputs (a squeeze-and-excitation gate).
    case multiply
}

/// The output shape (without the batch axis) of merging inputs of `shapes`, or why they cannot be
/// merged. Sums and products broadcast as ONNX and PyTorch do between shapes of equal rank: each
/// axis equal, or 1 in all but one input. A concatenation needs every axis but the first equal.
public func mergedShape(_ kind: MergeKind, _ shapes: [[Int]]) -> Result<[Int], ModelError> {
    let rank = shapes[0].count
    guard shapes.allSatisfy({ $0.count == rank }) else {
        return .failure(.badSpec("inputs of different ranks: \(shapes.map(shapeText).joined(separator: ", "))"))
    }
    switch kind {
    case .concat:
        guard shapes.allSatisfy({ $0.dropFirst() == shapes[0].dropFirst() }) else {
            return .failure(
                .badSpec(
                    "concat needs inputs equal but for channels: \(shapes.map(shapeText).joined(separator: ", "))"))
        }
        return .success([shapes.reduce(0) { $0 + $1[0] }] + shapes[0].dropFirst())
    case .add, .multiply:
        var out = [Int]()
        for axis in 0..<rank {
            let sizes = Set(shapes.map { $0[axis] }).subtracting([1])
            guard sizes.count <= 1 else {
                return .failure(
                    .badSpec(
                        "\(kind.rawValue) cannot broadcast \(shapes.map(shapeText).joined(separator: " and ")) "
                            + "(each axis must match or be 1)"))
            }
            out.append(sizes.first ?? 1)
        }
        return .success(out)
    }
}

/// Where each element of a tensor of `shape` is read from when broadcast to `target` (same rank):
/// the row-major index into the smaller tensor of every target element.
func broadcastIndices(_ shape: [Int], to target: [Int]) -> [Int] {
    var strides = [Int](repeating: 0, count: shape.count), s = 1
    for axis in shape.indices.reversed() {
        strides[axis] = shape[axis] == 1 ? 0 : s
        s *= shape[axis]
    }
    var out = [Int](repeating: 0, count: target.reduce(1, *)), at = [Int](repeating: 0, count: target.count)
    for i in out.indices {
        out[i] = zip(at, strides).reduce(0) { $0 + $1.0 * $1.1 }
        for axis in target.indices.reversed() {
            at[axis] += 1
            if at[axis] < target[axis] { break }
            at[axis] = 0
        }
    }
    return out
}

/// A node with several inputs: a sum, a channel concatenation or a product, on `(N, ...)` tensors.
/// Sums and products broadcast (see `mergedShape`); their gradient for a broadcast input is summed
/// over the broadcast elements in row-major order of the output.
public final class Merge<T: NetworkScalar> {
    public let kind: MergeKind
    private var shapes: [[Int]] = []
    private var inputs: [Tensor<T>] = []  // the product's factors, for backward

    public init(_ kind: MergeKind) { self.kind = kind }

    /// The merged value of `xs` (at least two, `multiply` exactly two).
    public func forward(_ xs: [Tensor<T>], isTraining: Bool) -> Tensor<T> {
        shapes = xs.map(\.shape)
        // The network checked the shapes when it was built.
        let shape = [xs[0].shape[0]] + (try! mergedShape(kind, shapes.map { Array($0.dropFirst()) }).get())
        switch kind {
        case .concat:
            // Per image, each input's block of channels in turn.
            let n = shape[0]
            var y = [T]()
            y.reserveCapacity(shape.reduce(1, *))
            for image in 0..<n {
                for x in xs {
                    let per = x.count / n
                    y += x.data[image * per..<(image + 1) * per]
                }
            }
            return Tensor(shape: shape, data: y)
        case .add:
            var y = expanded(xs[0], to: shape)
            for x in xs.dropFirst() {
                if x.shape == shape {
                    for i in y.data.indices { y.data[i] += x.data[i] }
                } else {
                    let at = broadcastIndices(x.shape, to: shape)
                    for i in y.data.indices { y.data[i] += x.data[at[i]] }
                }
            }
            return y
        case .multiply:
            if isTraining { inputs = xs }
            let a = expanded(xs[0], to: shape), b = expanded(xs[1], to: shape)
            return Tensor(shape: shape, data: zip(a.data, b.data).map { $0 * $1 })
        }
    }

    /// dLoss/dInput for each input of the last `forward`, for `dout` = dLoss/dOutput.
    public func backward(_ dout: Tensor<T>) -> [Tensor<T>] {
        precondition(!shapes.isEmpty, "Merge.backward before forward")
        switch kind {
        case .concat:
            let n = dout.shape[0], per = dout.count / n
            var offset = 0
            return shapes.map { shape in
                let size = shape.reduce(1, *) / n
                var d = [T]()
                d.reserveCapacity(size * n)
                for image in 0..<n { d += dout.data[image * per + offset..<image * per + offset + size] }
                offset += size
                return Tensor(shape: shape, data: d)
            }
        case .add:
            return shapes.map { reduced(dout, to: $0) }
        case .multiply:
            precondition(inputs.count == 2, "Merge.backward of a product needs a training forward")
            let a = expanded(inputs[0], to: dout.shape), b = expanded(inputs[1], to: dout.shape)
            return [
                reduced(Tensor(shape: dout.shape, data: zip(dout.data, b.data).map { $0 * $1 }), to: shapes[0]),
                reduced(Tensor(shape: dout.shape, data: zip(dout.data, a.data).map { $0 * $1 }), to: shapes[1]),
            ]
        }
    }

    /// `x` broadcast to `shape`.
    private func expanded(_ x: Tensor<T>, to shape: [Int]) -> Tensor<T> {
        guard x.shape != shape else { return x }
        return Tensor(shape: shape, data: broadcastIndices(x.shape, to: shape).map { x.data[$0] })
    }

    /// `d` summed over the axes where `shape` broadcasts, in row-major order of `d`.
    private func reduced(_ d: Tensor<T>, to shape: [Int]) -> Tensor<T> {
        guard d.shape != shape else { return d }
        var out = Tensor<T>(zeros: shape)
        for (i, at) in broadcastIndices(shape, to: d.shape).enumerated() { out.data[at] += d.data[i] }
        return out
    }
}
