import Testing

@testable import PrecisCore

struct GPTQTests {
    static let modes = ["int4-channel", "int4-g32-z", "mxfp4", "nvfp4", "float8-e4m3", "mxint8"].map {
        Precision(name: $0)!.format!
    }

    /// Correlated inputs `(n, length)`: each a random mix of a few shared directions plus noise.
    func inputs(_ n: Int, _ length: Int, seed: UInt64) -> [Double] {
        let basis = randomTensor([4, length], seed: seed, as: Double.self).data
        let mix = randomTensor([n, 4], seed: seed + 1, as: Double.self).data
        let noise = randomTensor([n, length], seed: seed + 2, in: -0.1...0.1, as: Double.self).data
        return (0..<(n * length)).map { k in
            let (i, j) = (k / length, k % length)
            return (0..<4).reduce(noise[k]) { $0 + mix[i * 4 + $1] * basis[$1 * length + j] }
        }
    }

    /// `Σ x·xᵀ` of rows `x` `(n, length)`.
    func hessian(_ x: [Double], _ length: Int) -> [Double] {
        let n = x.count / length
        return (0..<(length * length)).map { k in
            (0..<n).reduce(0.0) { $0 + x[$1 * length + k / length] * x[$1 * length + k % length] }
        }
    }

    /// `Σ ‖(W − Ŵ)·x‖²` over the rows `x`.
    func outputError(_ w: [Double], _ t: FormatTensor, _ x: [Double]) -> Double {
        let q = t.decoded(), n = x.count / t.length
        var sum = 0.0
        for v in 0..<t.vectors {
            for i in 0..<n {
                let d = (0..<t.length).reduce(0.0) {
                    $0 + (w[v * t.length + $1] - Double(q[v * t.length + $1])) * x[i * t.length + $1]
                }
                sum += d * d
            }
        }
        return sum
    }

    @Test(arguments: modes)
    func withADiagonalHessianGPTQRoundsToNearest(_ mode: FormatMode) throws {
        let (vectors, length) = (6, 64)
        let w = randomTensor([vectors, length], seed: 3, in: -0.5...0.5, as: Double.self).data
        let nearest = FormatTensor(
            encoding: w.map { Float($0) }, vectors: vectors, length: length, format: mode.weights)
        let diagonal = (0..<(length * length)).map { $0 / length == $0 % length ? Double(1 + $0 % 5) : 0 }
        var t = nearest
        t.codes = t.codes.map { _ in 0 }
        try GPTQ.round(w.map { Double(Float($0)) }, vectors: 0..<vectors, hessian: diagonal, into: &t)
        #expect(t.codes == nearest.codes)
        #expect(t.blockScales == nearest.blockScales && t.scales == nearest.scales)
    }

    @Test(arguments: modes)
    func gptqLowersTheOutputErrorOnCorrelatedInputs(_ mode: FormatMode) throws {
        let (vectors, length) = (8, 48)
        let w = randomTensor([vectors, length], seed: 5, in: -0.5...0.5, as: Double.self).data.map {
            Double(Float($0))
        }
        let x = inputs(400, length, seed: 11)
        let nearest = FormatTensor(
            encoding: w.map { Float($0) }, vectors: vectors, length: length, format: mode.weights)
        var t = nearest
        try GPTQ.round(w, vectors: 0..<vectors, hessian: hessian(x, length), into: &t)
        #expect(t.codes != nearest.codes)
        #expect(outputError(w, t, x) < 0.8 * outputError(w, nearest, x))
    }

    @Test func theInverseFactorInvertsTheMatrix() throws {
        let n = 12, x = inputs(40, n, seed: 2), h = hessian(x, n)
        let u = try #require(GPTQ.inverseUpperFactor(h, n))
        for i in 0..<n {
            for j in 0..<n {
                // (UᵀU)·H = I
                let v = (0..<n).reduce(0.0) { s, k in
                    s + (0..<n).reduce(0.0) { $0 + u[$1 * n + i] * u[$1 * n + k] } * h[k * n + j]
                }
                #expect(abs(v - (i == j ? 1 : 0)) < 1e-8)
                if j < i { #expect(u[i * n + j] == 0) }
            }
        }
        #expect(GPTQ.inverseUpperFactor([1, 2, 2, 1], 2) == nil)
    }

    @Test func aColumnNoInputReachesIsZero() throws {
        let (vectors, length) = (3, 8)
        let w = randomTensor([vectors, length], seed: 9, in: 0.1...0.5, as: Double.self).data
        var x = inputs(50, length, seed: 4)
        for i in 0..<50 { x[i * length + 2] = 0 }
        var t = FormatTensor(
            encoding: w.map { Float($0) }, vectors: vectors, length: length, format: Self.modes[0].weights)
        try GPTQ.round(w, vectors: 0..<vectors, hessian: hessian(x, length), into: &t)
        #expect((0..<vectors).allSatisfy { t.decoded()[$0 * length + 2] == 0 })
    }

    @Test func gptqNamesParseAndNeedAStoredVariant() {
        let p = Precision(name: "int4-g32-z-gptq-mixed")
        #expect(p?.name == "int4-g32-z-gptq-mixed")
        #expect(p?.format?.rounding == .gptq && p?.format?.rounded(.nearest).name == "int4-g32-z")
        #expect(Precision(name: "mxfp4-gptq")?.format?.weights == Precision(name: "mxfp4")?.format?.weights)
        #expect(Precision(name: "int4-gptq-channel") == nil)
        #expect(Precision(name: "nvfp4-adaround")?.format?.rounding == .adaround)
        #expect(Precision(name: "nvfp4-adaround-gptq") == nil)
        #expect(Precision(name: "int4-channel-gptq")?.format?.weightRanges(.minmax).name == "int4-channel-gptq")
    }
}

struct AdaRoundTests {
    let helpers = GPTQTests()

    /// Every code is the grid value at or below its weight, or the one at or above: for int4, the
    /// floor or the ceiling of the nearest-rounding input `w / s + z`.
    @Test(arguments: GPTQTests.modes)
    func eachCodeIsTheFloorOrTheCeiling(_ mode: FormatMode) {
        let (vectors, length) = (6, 40)
        let w = randomTensor([vectors, length], seed: 21, in: -0.5...0.5, as: Double.self).data.map {
            Double(Float($0))
        }
        let x = helpers.inputs(300, length, seed: 8)
        let nearest = FormatTensor(
            encoding: w.map { Float($0) }, vectors: vectors, length: length, format: mode.weights)
        var t = nearest
        let h = helpers.hessian(x, length)
        AdaRound.round(w, vectors: 0..<vectors, inputs: .sums(hessian: h, cross: h), samples: 300, into: &t)
        let block = mode.weights.block!, values = t.decoded()
        #expect(t.scales == nearest.scales && t.blockScales == nearest.blockScales)
        for k in w.indices {
            let grid = block.validCodes.map { Double(block.value($0, block: t.block(of: k), in: t)) }
            let below = grid.filter { $0 <= w[k] }.max() ?? grid.min()!
            let above = grid.filter { $0 >= w[k] }.min() ?? grid.max()!
            #expect(Double(values[k]) == below || Double(values[k]) == above, "value \(k)")
        }
        if case .int4(let f) = mode.weights {
            for k in w.indices {
                let r = f.range(block: t.block(of: k), in: t), u = w[k] / r.scale + Double(r.zeroPoint)
                let q = Double(r.quantize(Double(values[k])))
                #expect(
                    q == min(Double(r.qmax), max(Double(r.qmin), u.rounded(.down)))
                        || q
                            == min(
                                Double(r.qmax),
                                max(Double(r.qmin), u.rounded(.up)))
                )
            }
        }
        #expect(helpers.outputError(w, t, x) < helpers.outputError(w, nearest, x))
    }

    /// With inputs the layer sees rounded (`x̃`, here to quarters), AdaRound lowers `Σ‖W·x − W̃·x̃‖²`,
    /// what the layer's output loses to both roundings, below rounding the weights to nearest.
    @Test func theAsymmetricTargetAnswersForRoundedInputs() {
        let (vectors, length) = (8, 32), mode = GPTQTests.modes[0]
        let w = randomTensor([vectors, length], seed: 31, in: -0.5...0.5, as: Double.self).data.map {
            Double(Float($0))
        }
        let x = helpers.inputs(300, length, seed: 12), seen = x.map { ($0 * 4).rounded() / 4 }
        let cross = (0..<(length * length)).map { k in
            (0..<300).reduce(0.0) { $0 + x[$1 * length + k / length] * seen[$1 * length + k % length] }
        }
        func error(_ t: FormatTensor) -> Double {
            let q = t.decoded()
            return (0..<vectors).reduce(0.0) { sum, v in
                (0..<300).reduce(sum) { sum, i in
                    let d = (0..<length).reduce(0.0) {
                        $0 + w[v * length + $1] * x[i * length + $1]
                            - Double(q[v * length + $1]) * seen[i * length + $1]
                    }
                    return sum + d * d
                }
            }
        }
        let nearest = FormatTensor(
            encoding: w.map { Float($0) }, vectors: vectors, length: length, format: mode.weights)
        var t = nearest
        AdaRound.round(
            w, vectors: 0..<vectors, inputs: .sums(hessian: helpers.hessian(seen, length), cross: cross), samples: 300,
            into: &t)
        #expect(error(t) < 0.9 * error(nearest))
        var fromRows = nearest
        AdaRound.round(w, vectors: 0..<vectors, inputs: .rows(exact: x, seen: seen), samples: 300, into: &fromRows)
        #expect(fromRows.codes == t.codes)
    }
}
