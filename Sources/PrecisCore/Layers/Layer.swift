/// A named tensor a layer owns: a learnable weight with its gradient, or saved state such as
/// batch-normalization running statistics (`learnable == false`, never touched by an optimizer).
public final class Parameter<T: NetworkScalar> {
    /// The name inside its layer (`W`, `b`, `gamma`, `running_mean`, ...); also its HDF5 dataset name.
    public let name: String
    /// The current value.
    public var value: Tensor<T>
    /// The gradient of the loss with respect to `value`, set by the layer's last `backward`.
    public var grad: Tensor<T>
    /// Whether optimizers update it.
    public let learnable: Bool

    public init(_ name: String, _ value: Tensor<T>, learnable: Bool = true) {
        self.name = name
        self.value = value
        self.grad = Tensor(zeros: learnable ? value.shape : [0])
        self.learnable = learnable
    }
}

/// A differentiable step of a network. `forward` caches what `backward` needs; `backward` takes
/// dLoss/dOutput, sets the gradients of the layer's parameters and returns dLoss/dInput.
/// `isTraining` selects training semantics (dropout masks, batch statistics) or inference.
public protocol Layer<Scalar>: AnyObject {
    associatedtype Scalar: NetworkScalar
    /// The output for `x`; caches what `backward` needs.
    func forward(_ x: Tensor<Scalar>, isTraining: Bool) -> Tensor<Scalar>
    /// dLoss/dInput for `dout` = dLoss/dOutput of the last `forward`; sets parameter gradients.
    func backward(_ dout: Tensor<Scalar>) -> Tensor<Scalar>
    /// The tensors the layer owns, in a fixed order.
    var parameters: [Parameter<Scalar>] { get }
}

extension Layer {
    public var parameters: [Parameter<Scalar>] { [] }
}

/// Sum over rows: `(rows×cols) -> (cols)`, each column summed in ascending row order.
func columnSums<T: NetworkScalar>(_ x: UnsafeBufferPointer<T>, rows: Int, cols: Int) -> [T] {
    var s = [T](repeating: 0, count: cols)
    for r in 0..<rows {
        for c in 0..<cols { s[c] += x[r * cols + c] }
    }
    return s
}

/// A layer whose GEMM input can be rounded to a number format (convolution and affine layers).
protocol RoundedInput: AnyObject {
    var inputRounding: OperandRounding? { get set }
}
