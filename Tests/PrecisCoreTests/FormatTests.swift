import Testing

@testable import PrecisCore

/// The number-format modes: the vector rounding against the scalar codes (themselves checked against
/// ml_dtypes), blocks along the reduction axis in both layouts, NVFP4 and int4 groups worked by
/// hand, and a simulated network's weights and bytes.
@Suite struct FormatTests {
    /// Every float16 value, and values around every float32 binade, with both signs.
    static let probes: [Float] = {
        let halves = (0..<UInt16.max).map { Float(Float16(bitPattern: $0)) }
        var rng = RandomSource(seed: 7)
        let wide = (0..<20000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        return halves + wide + [.infinity, -.infinity, .nan, 0, -0.0]
    }()

    @Test(arguments: [MiniFloat.e4m3, .e5m2, .e3m2, .e2m3, .e2m1], [false, true])
    func gridRounderMatchesTheCodes(_ f: MiniFloat, saturating: Bool) {
        let grid = GridRounder(f, saturating: saturating)
        // The scalar path, and the C kernel that rounds buffers, at this process's kernel level.
        var bulk = Self.probes
        grid.round(&bulk, count: bulk.count)
        let wrong = zip(Self.probes, bulk).filter { x, fromBuffer in
            let want = f.decode(f.encode(x, saturating: saturating))
            return [grid(x), fromBuffer].contains { !(want == $0 || (want.isNaN && $0.isNaN)) }
        }
        #expect(wrong.isEmpty, "first differing inputs: \(wrong.prefix(5).map(\.0))")
    }

    /// The int8 operand rounding of the simulated formats (a C kernel) against its definition in
    /// Swift: `(clamp(round(x / s) + zp, qmin, qmax) − zp)·s` in Float, ties to even, NaN to qmin.
    @Test func int8OperandRoundingFollowsItsDefinition() {
        let range = QuantRange(scale: 0.0371, zeroPoint: 9, qmin: -128, qmax: 127)
        let (s, zp, lo, hi) = (Float(range.scale), Float(range.zeroPoint), Float(range.qmin), Float(range.qmax))
        let probes = Self.probes + (-300...300).map { Float($0) * s / 2 }
        var x = probes
        OperandRounding.int8(range)(&x, .rows(1, x.count))
        let wrong = zip(probes, x).filter { v, got in
            let want = (min(hi, max(lo, (v / s).rounded(.toNearestOrEven) + zp)) - zp) * s
            return want.bitPattern != got.bitPattern
        }
        #expect(wrong.isEmpty, "first differing inputs: \(wrong.prefix(5).map(\.0))")
    }

    /// The storage formats' rounding of float32 buffers (in C) gives what rounding each value does.
    @Test(arguments: [StorageFormat.float16, .bfloat16])
    func storageRoundingOfBuffersMatchesEachValue(_ storage: StorageFormat) {
        var bulk = Self.probes
        storage.round(&bulk)
        let wrong = zip(Self.probes, bulk).filter { x, got in
            let want = storage.round(x)
            return !(want.bitPattern == got.bitPattern || (want.isNaN && got.isNaN))
        }
        #expect(wrong.isEmpty, "first differing inputs: \(wrong.prefix(5).map(\.0))")
    }

    /// The integer grid of MXINT8's elements: the buffer kernel gives what the scalar path gives.
    @Test func integerGridBuffersMatchTheScalarPath() {
        let grid = MXElement.int8.rounder
        var bulk = Self.probes
        grid.round(&bulk, count: bulk.count)
        let wrong = zip(Self.probes, bulk).filter { x, got in
            let want = grid(x)
            return !(want.bitPattern == got.bitPattern || (want.isNaN && got.isNaN))
        }
        #expect(wrong.isEmpty, "first differing inputs: \(wrong.prefix(5).map(\.0))")
    }

    @Test func mxint8ElementsAreSixtyFourthsClampedSymmetrically() {
        let grid = MXElement.int8.rounder
        // 1/128 ties to the even 0; 3/128 to 2/64; 2 and beyond clamp to 127/64; the code -128 is not used.
        let inputs: [Float] = [1.0 / 128, 3.0 / 128, 2, -5, 0.5],
            expected: [Float] = [0, 1.0 / 32, 127.0 / 64, -127.0 / 64, 0.5]
        #expect(inputs.map { grid($0) } == expected)
        let int8 = MXBlockFormat(element: .int8)
        // amax 3: floor(log2 3) = 1, emax 0, scale 2; 3/2 = 1.5 is 96/64; -0.7/2 = -0.35 is -22.4/64, code -22.
        let (scale, codes) = int8.quantize([3, -0.7][...])
        #expect(scale == 128 && codes.map { Int8(bitPattern: $0) } == [96, -22])
        #expect(int8.bitsPerValue == 8.25)
    }

    /// The vector path of MX blocks gives what the scalar conversion of each block gives, for
    /// vectors stored as rows or as columns, with a partial last block.
    @Test(arguments: [MXElement.float(.e4m3), .float(.e5m2), .float(.e3m2), .float(.e2m3), .float(.e2m1), .int8])
    func mxBlocksAlongTheReductionAxis(_ element: MXElement) {
        let format = MXBlockFormat(element: element), (vectors, length) = (5, 70)
        var rng = RandomSource(seed: 3)
        // Vector v spans magnitudes around 2^(4v - 8), so the blocks get different scales.
        let rows: [Float] = (0..<vectors * length).map { i in
            Float(rng.normal()) * Float(sign: .plus, exponent: 4 * (i / length) - 8, significand: 1)
        }
        var expected: [Float] = []
        for v in 0..<vectors {
            for start in stride(from: 0, to: length, by: 32) {
                let block = rows[(v * length + start)..<(v * length + min(start + 32, length))]
                let (s, c) = format.quantize(block)
                expected += format.dequantize(scale: s, codes: c)
            }
        }
        var byRows = rows
        OperandRounding.mx(format)(&byRows, .rows(vectors, length))
        #expect(byRows == expected)
        var byColumns = (0..<length * vectors).map { rows[($0 % vectors) * length + $0 / vectors] }
        OperandRounding.mx(format)(&byColumns, .columns(length, vectors))
        #expect((0..<vectors * length).allSatisfy { byColumns[($0 % length) * vectors + $0 / length] == expected[$0] })
    }

    @Test func anNVFP4BlockWorkedByHand() {
        // Tensor amax 2688 = 6·448 gives g = 1. The block's amax 100 gives S = e4m3(100/6 = 16.67) = 16
        // (the E4M3 values near it are 16 and 18). Elements x/16: 100/16 = 6.25 saturates to 6; 40/16 = 2.5
        // ties to the even 2; -9/16 = -0.5625 rounds to -0.5; 1/16 rounds to 0. Values: 96, 32, -8, 0.
        var block: [Float] = [100, 40, -9, 1] + Array(repeating: 0, count: 12) + [2688]
        OperandRounding.nvfp4(tensorAmax: 2688)(&block, .rows(1, 17))
        #expect(Array(block.prefix(4)) == [96, 32, -8, 0] && block[16] == 2688)
        // A second tensor scale: amax 1 gives g = 1/2688, and a block with amax 1 gets S = 448.
        var small: [Float] = [1, 0.3]
        OperandRounding.nvfp4(tensorAmax: 1)(&small, .rows(1, 2))
        let g = Float(1) / 2688
        #expect(NVFP4.blockScale(amax: 1, g) == 448 && small == [6 * (448 * g), 2 * (448 * g)])
    }

    /// `w` as `weights` stores and decodes it, one vector.
    func int4(_ w: [Float], _ weights: Int4Weights) -> [Float] {
        FormatTensor(encoding: w, vectors: 1, length: w.count, format: .int4(weights)).decoded()
    }

    @Test func int4GroupsWorkedByHand() {
        // Symmetric, min-max: amax 3.5 gives scale 0.5; 1.2/0.5 = 2.4 -> 2; -0.75/0.5 = -1.5 ties to -2.
        let symmetric = Int4Weights(group: 4, zeroPoint: false, method: .minmax)
        let w = int4([3.5, 1.2, -0.75, 0, 28, 14, 0, -1], symmetric)
        // Second group: amax 28, scale 4; 14/4 = 3.5 ties to 4 (16); -1/4 = -0.25 rounds to 0.
        #expect(w == [3.5, 1, -1, 0, 28, 16, 0, 0])
        // With a zero point: [-1, 2] over 0...15 has scale 0.2 and zero point 5; 0.5/0.2 is just under 2.5
        // (the scale is a float32 a little above 0.2), so code 7, value 0.4.
        let asymmetric = Int4Weights(group: nil, zeroPoint: true, method: .minmax)
        let z = int4([-1, 2, 0.5, 0], asymmetric)
        #expect(z.map { ($0 * 1000).rounded() / 1000 } == [-1, 2, 0.4, 0])
        // MSE never does worse than min-max on the group's own values.
        var rng = RandomSource(seed: 9)
        let heavy = (0..<64).map { _ in Float(rng.normal() * rng.normal()) }
        let error = { (m: CalibrationMethod) -> Double in
            let x = int4(heavy, Int4Weights(group: 32, zeroPoint: false, method: m))
            return zip(x, heavy).reduce(0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
        }
        #expect(error(.mse) < error(.minmax))
    }

    @Test func formatNetworkRoundsWeightsAndCountsScales() throws {
        let spec = try ModelSpec.named("conv(4,3,pad=1) relu maxpool(2) affine(10)", inputShape: [2, 8, 8])
        let tensors = try Network<Float>(spec: spec, seed: 1).tensorValues()
        let mxfp4 = Precision(name: "mxfp4")!.format!
        let f = try FormatNetwork(spec: spec, tensors: tensors, mode: mxfp4)
        let values = Set((0..<16).map { MiniFloat.e2m1.decode(UInt8($0)) })
        // Every conv weight is an E2M1 value times its block's power of two (K = 18: one block per filter).
        let w = f.network.tensorValues()["00_conv1/W"]!.data, k = 18
        for filter in 0..<4 {
            let block = w[filter * k..<(filter + 1) * k].map { Float($0) }
            let amax = block.map(\.magnitude).max()!
            let scale = Float(sign: .plus, exponent: Int(amax.exponent) - 2, significand: 1)
            #expect(block.allSatisfy { values.contains($0 / scale) })
        }
        // conv: 72 weights at 4 bits and 4 scales; affine (64, 10): 640 weights and 2 blocks of 32 per
        // unit, 20 scales; biases 14·4 bytes.
        #expect(f.modelBytes == (72 * 4 + 4 * 8) / 8 + (640 * 4 + 20 * 8) / 8 + 14 * 4)
        #expect(abs(f.bitsPerWeight - Double(72 * 4 + 32 + 640 * 4 + 160) / 712) < 1e-12)
        // float8 needs calibrated input scales and says so without them.
        #expect(throws: ModelError.self) {
            try FormatNetwork(spec: spec, tensors: tensors, mode: Precision(name: "float8-e4m3")!.format!)
        }
    }

    /// Stored codes decode to exactly what the vector rounding gives the same values, so a stored
    /// variant runs the network that rounding now runs.
    @Test(arguments: FormatMode.floats + [Precision(name: "float8-e4m3-nosat")!.format!])
    func codesDecodeToTheRoundedValues(_ mode: FormatMode) {
        var rng = RandomSource(seed: 11)
        let (vectors, length) = (6, 50)
        let x = (0..<vectors * length).map { i in Float(rng.normal()) * Float(1 + i % 7) }
        let amax = x.map(\.magnitude).max()!
        let t = FormatTensor(encoding: x, vectors: vectors, length: length, format: mode.weights)
        var rounded = x
        let rounding: OperandRounding =
            switch mode.weights {
            case let .scaled(f, saturating): .scaled(GridRounder(f, saturating: saturating), scale: amax / f.max)
            case .mx(let f): .mx(f)
            default: .nvfp4(tensorAmax: amax)
            }
        rounding(&rounded, .rows(vectors, length))
        #expect(t.decoded() == rounded)
        #expect(t.codes.allSatisfy { Int($0) < 1 << mode.weights.elementBits })
    }

    @Test func modeNames() {
        #expect(FormatMode.standard.map(\.name).count == 13)
        #expect(Precision(name: "int4-g64-z-a8")?.format?.activations == .int8)
        #expect(["int4", "int4-g16", "int4-a8-z", "mxfp5", "float8-e3m2"].allSatisfy { Precision(name: $0) == nil })
    }
}
