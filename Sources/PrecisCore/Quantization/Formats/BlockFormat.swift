/// A number format as a block type, as ggml keeps its quantization types: how a weight tensor of
/// reduction vectors becomes codes and scales (`quantize`) and back (`dequantize`, the reference
/// the simulation runs on), how a variant stores it, and how a layer input is rounded to it. Each
/// format is one file; `OperandFormat.block` is the one table that names them.
public protocol BlockFormat: Sendable {
    /// Bits of one element code.
    var elementBits: Int { get }

    /// Values that share a scale along a vector of `length`, or nil for one scale per tensor.
    func blockSize(length: Int) -> Int?

    /// The stored arrays besides the codes, and what is valid in them.
    var storage: BlockStorage { get }

    /// Fills `t` (its format, vectors and length set, nothing else) with the codes and scales of
    /// `values`, row-major `(vectors, length)`.
    func quantize(_ values: [Float], into t: inout FormatTensor)

    /// The values `t`'s codes and scales stand for, row-major `(vectors, length)`.
    func dequantize(_ t: FormatTensor) -> [Float]

    /// Whether `code` (within `elementBits`) stands for a finite value.
    func isFiniteCode(_ code: UInt8) -> Bool

    /// How a variant's attributes describe the format.
    var text: String { get }

    /// Whether a layer input in the format needs a scale from calibration images.
    var inputNeedsCalibration: Bool { get }

    /// The rounding of a layer input to the format, with its calibration; nil when it cannot have one.
    func inputRounding(_ calibration: InputCalibration?) -> OperandRounding?
}

/// What a stored tensor of a block format holds besides its codes.
public struct BlockStorage: Sendable {
    /// Where the float32 scales are.
    public enum Scales: Sendable { case none, tensor, perBlock }

    /// Which one-byte block-scale codes are scales (nil: the format has no block scales).
    public let blockScale: (@Sendable (UInt8) -> Bool)?
    public let scales: Scales
    /// A uint8 zero point per block, 0...15.
    public let zeroPoints: Bool

    public init(blockScale: (@Sendable (UInt8) -> Bool)? = nil, scales: Scales, zeroPoints: Bool = false) {
        (self.blockScale, self.scales, self.zeroPoints) = (blockScale, scales, zeroPoints)
    }
}

extension FormatTensor {
    /// `body(block)` for every block of `values` (row-major `(vectors, length)`), in order.
    func forEachBlock(of values: [Float], _ body: (ArraySlice<Float>) -> Void) {
        let size = blockSize!
        for v in 0..<vectors {
            for start in stride(from: 0, to: length, by: size) {
                body(values[(v * length + start)..<(v * length + min(start + size, length))])
            }
        }
    }

    /// `body(block index, the block's codes)` for every block in order, the results joined.
    func blockwise(_ body: (Int, ArraySlice<UInt8>) -> [Float]) -> [Float] {
        let size = blockSize!, per = blocksPerVector
        var out: [Float] = []
        out.reserveCapacity(codes.count)
        for v in 0..<vectors {
            for (k, start) in stride(from: 0, to: length, by: size).enumerated() {
                out += body(v * per + k, codes[(v * length + start)..<(v * length + min(start + size, length))])
            }
        }
        return out
    }
}
