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

    /// The code of `x` in block `b` of `t` (see `FormatTensor.block(of:)`), under the scales `t`
    /// holds: what `quantize` stores for a value of that block. GPTQ and learned rounding round
    /// with the scales fixed this way.
    func code(_ x: Float, block b: Int, in t: FormatTensor) -> UInt8

    /// The value `code` stands for in block `b` of `t`.
    func value(_ code: UInt8, block b: Int, in t: FormatTensor) -> Float

    /// Whether `code` (within `elementBits`) stands for a finite value.
    func isFiniteCode(_ code: UInt8) -> Bool

    /// Every code `quantize` may store.
    var validCodes: [UInt8] { get }

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

extension BlockFormat {
    /// Every code of `elementBits` that stands for a finite value.
    public var validCodes: [UInt8] { (0..<(1 << elementBits)).map { UInt8($0) }.filter(isFiniteCode) }

    /// The values `t`'s codes and scales stand for, row-major `(vectors, length)`.
    public func dequantize(_ t: FormatTensor) -> [Float] {
        t.codes.indices.map { value(t.codes[$0], block: t.block(of: $0), in: t) }
    }
}

extension FormatTensor {
    /// The block (or group) that value `k` (row-major `(vectors, length)`) belongs to, as the block
    /// scales and group scales are indexed; 0 for a format with one scale per tensor.
    public func block(of k: Int) -> Int {
        guard let size = blockSize else { return 0 }
        return k / length * blocksPerVector + k % length / size
    }

    /// `body(block)` for every block of `values` (row-major `(vectors, length)`), in order.
    func forEachBlock(of values: [Float], _ body: (ArraySlice<Float>) -> Void) {
        let size = blockSize!
        for v in 0..<vectors {
            for start in stride(from: 0, to: length, by: size) {
                body(values[(v * length + start)..<(v * length + min(start + size, length))])
            }
        }
    }
}
