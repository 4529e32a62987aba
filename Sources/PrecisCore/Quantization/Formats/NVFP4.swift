/// NVFP4, the 4-bit format of NVIDIA's Blackwell GPUs: E2M1 elements in blocks of 16 along the
/// reduction axis, each block with an E4M3 scale, and one float32 scale per tensor. The scale rules
/// are those NVIDIA publishes ("Pretraining Large Language Models with NVFP4", arXiv:2509.25149,
/// §2 and its quantization appendix; TensorRT Model Optimizer and Transformer Engine convert the
/// same way): the tensor scale is `g = amax / (6·448)`, so that the largest block scale is E4M3's
/// largest value; a block's scale is `S = e4m3(amax_b / (6·g))`, rounded to nearest even and
/// saturating; each element is `e2m1(x / (S·g))`, rounded to nearest even and saturating; and the
/// value it stands for is `e2m1·S·g`.
public struct NVFP4: BlockFormat {
    public static let blockSize = 16
    /// Bits per value: 4 for the element, 8/16 for the block scale (the tensor scale aside).
    public static let bitsPerValue = 4.5

    /// The per-tensor scale `g` for a tensor whose largest magnitude is `amax` (0 when it is 0).
    public static func tensorScale(amax: Float) -> Float {
        amax > 0 && amax.isFinite ? amax / (6 * 448) : 0
    }

    /// The E4M3 block scale `S` for a block whose largest magnitude is `amax`, given `g`.
    @inline(__always)
    public static func blockScale(amax: Float, _ g: Float) -> Float {
        g > 0 ? e4m3(amax / (6 * g)) : 0
    }

    private static let e4m3 = GridRounder(.e4m3, saturating: true)

    public init() {}

    public var elementBits: Int { 4 }

    public func blockSize(length: Int) -> Int? { Self.blockSize }

    /// E4M3 block scales (positive, not NaN) and one float32 tensor scale.
    public var storage: BlockStorage { BlockStorage(blockScale: { $0 < 0x7F }, scales: .tensor) }

    public func quantize(_ values: [Float], into t: inout FormatTensor) {
        let g = Self.tensorScale(amax: values.reduce(Float(0)) { max($0, $1.magnitude) })
        t.scales = [g]
        t.forEachBlock(of: values) { block in
            let s = Self.blockScale(amax: block.reduce(Float(0)) { max($0, $1.magnitude) }, g), d = s * g
            t.blockScales.append(MiniFloat.e4m3.encode(s, saturating: true))
            t.codes += block.map { d > 0 ? MiniFloat.e2m1.encode($0 / d, saturating: true) : 0 }
        }
    }

    public func code(_ x: Float, block b: Int, in t: FormatTensor) -> UInt8 {
        let d = MiniFloat.e4m3.decode(t.blockScales[b]) * t.scales[0]
        return d > 0 ? MiniFloat.e2m1.encode(x / d, saturating: true) : 0
    }

    public func value(_ code: UInt8, block b: Int, in t: FormatTensor) -> Float {
        MiniFloat.e2m1.decode(code) * (MiniFloat.e4m3.decode(t.blockScales[b]) * t.scales[0])
    }

    public func isFiniteCode(_ code: UInt8) -> Bool { true }

    public var text: String {
        "NVFP4: E2M1 elements, one E4M3 scale per 16 values along the reduction axis, one float32 scale "
            + "per tensor (amax / 2688)"
    }

    /// The tensor scale comes from the largest magnitude calibration saw.
    public var inputNeedsCalibration: Bool { true }

    public func inputRounding(_ calibration: InputCalibration?) -> OperandRounding? {
        guard case .amax(let amax)? = calibration else { return nil }
        return .nvfp4(tensorAmax: amax)
    }
}

extension OperandRounding {
    /// NVFP4 with the per-tensor scale `g = amax / (6·448)` (see `NVFP4`).
    public static func nvfp4(tensorAmax: Float) -> OperandRounding {
        let g = NVFP4.tensorScale(amax: tensorAmax)
        return blocks(GridRounder(.e2m1, saturating: true), size: NVFP4.blockSize) { NVFP4.blockScale(amax: $0, g) * g }
    }
}
