/// A dense row-major array with a shape; images flow through a network as `(N, C, H, W)`.
public struct Tensor<T: NetworkScalar>: Equatable {
    /// The extent of each axis, outermost first.
    public var shape: [Int]
    /// The elements in row-major order; `data.count == shape.reduce(1, *)`.
    public var data: [T]

    /// A tensor of the given shape holding `data` (row-major).
    public init(shape: [Int], data: [T]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not match \(data.count) elements")
        self.shape = shape
        self.data = data
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [T](repeating: 0, count: shape.reduce(1, *)))
    }

    /// The number of elements.
    public var count: Int { data.count }

    /// The same elements viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }

    /// The elements rounded to another scalar type (round to nearest even).
    public func converted<U: NetworkScalar>(to: U.Type = U.self) -> Tensor<U> {
        if let same = self as? Tensor<U> { return same }
        return Tensor<U>(shape: shape, data: data.map { U(Double($0)) })
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}

/// A shape written the way the README and error messages show it: `(32,16,3,3)`.
public func shapeText(_ shape: [Int]) -> String {
    "(" + shape.map(String.init).joined(separator: ",") + ")"
}

/// An array of `count` elements that `fill` writes completely, without zeroing it first.
@inline(__always)
func filledArray<T>(_ count: Int, _ fill: (UnsafeMutableBufferPointer<T>) -> Void) -> [T] {
    [T](unsafeUninitializedCapacity: count) { buffer, initialized in
        fill(buffer)
        initialized = count
    }
}
