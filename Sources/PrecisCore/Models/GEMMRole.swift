/// How a layer with weights is a GEMM: `channels` weight vectors (a convolution's filters, an
/// affine layer's output units), each `length` values along the reduction axis (C·FH·FW of a
/// convolution's window, an affine layer's input features). Integer inference, the number formats,
/// QAT and input rounding read this rather than the rank of W.
public struct GEMMRole: Equatable, Sendable {
    /// Where a weight vector lies in the stored W.
    public enum Layout: Equatable, Sendable {
        /// A row: a convolution's `(FN, C, FH, FW)` is `(FN, C·FH·FW)`.
        case rows
        /// A column: an affine layer's `(in, out)`.
        case columns
    }

    public let channels: Int, length: Int, layout: Layout

    public init(channels: Int, length: Int, layout: Layout) {
        (self.channels, self.length, self.layout) = (channels, length, layout)
    }

    /// The axis of W that indexes channels.
    public var channelAxis: Int { layout == .rows ? 0 : 1 }

    /// The channel of W's value `k`, in W's stored order.
    public func channel(_ k: Int) -> Int { layout == .rows ? k / length : k % channels }

    /// W's values with each channel's vector as a row, `(channels, length)`.
    public func rows<V: NetworkScalar>(_ w: [V]) -> [V] {
        layout == .rows ? w : transposed(w, rows: length, cols: channels)
    }

    /// W in its stored layout, back from `rows`.
    public func stored<V: NetworkScalar>(_ rows: [V]) -> [V] {
        layout == .rows ? rows : transposed(rows, rows: channels, cols: length)
    }
}
