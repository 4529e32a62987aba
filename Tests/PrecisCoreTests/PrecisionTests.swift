import Testing

@testable import PrecisCore

/// The same generic checks for every scalar type, with a tolerance per type.
@Suite struct PrecisionTests {
    static let types: [any NetworkScalar.Type] = [Double.self, Float.self, Float16.self]

    /// Relative tolerance for results of short sums in `T`.
    func tolerance<T: NetworkScalar>(_: T.Type) -> Double {
        switch T.precisionName {
        case "float64": return 1e-12
        case "float32": return 1e-5
        default: return 1e-2
        }
    }

    func maxRelativeError<T: NetworkScalar>(_ a: Tensor<T>, _ b: Tensor<Double>) -> Double {
        let scale = b.data.map(abs).max() ?? 1
        return zip(a.data, b.data).map { abs(Double($0) - $1) }.max()! / scale
    }

    /// The convolution by its definition: y[n,f,i,j] = b[f] + Σ W[f,c,ky,kx]·x[n,c,i·s+ky−p,j·s+kx−p].
    func directConvolution(_ x: Tensor<Double>, _ w: Tensor<Double>, _ b: Tensor<Double>, stride s: Int, pad p: Int)
        -> Tensor<Double>
    {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), (f, k) = (w.shape[0], w.shape[2])
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1)
        var y = [Double](repeating: 0, count: n * f * oh * ow)
        for i in 0..<n {
            for o in 0..<f {
                for r in 0..<oh {
                    for q in 0..<ow {
                        var sum = b.data[o]
                        for ch in 0..<c {
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    let (yy, xx) = (r * s + ky - p, q * s + kx - p)
                                    guard yy >= 0 && yy < h && xx >= 0 && xx < wd else { continue }
                                    sum +=
                                        w.data[((o * c + ch) * k + ky) * k + kx]
                                        * x.data[((i * c + ch) * h + yy) * wd + xx]
                                }
                            }
                        }
                        y[((i * f + o) * oh + r) * ow + q] = sum
                    }
                }
            }
        }
        return Tensor(shape: [n, f, oh, ow], data: y)
    }

    @Test(arguments: types)
    func convolutionAgreesWithItsDefinition(_ type: any NetworkScalar.Type) {
        check(type)
        func check<T: NetworkScalar>(_: T.Type) {
            let w: Tensor<Double> = randomTensor([4, 3, 3, 3], seed: 1), b: Tensor<Double> = randomTensor([4], seed: 2)
            let x: Tensor<Double> = randomTensor([2, 3, 6, 6], seed: 3)
            let want = directConvolution(x, w, b, stride: 1, pad: 1)
            let got = Convolution<T>(W: w.converted(), b: b.converted(), stride: 1, pad: 1).forward(
                x.converted(), isTraining: false)
            #expect(got.shape == want.shape)
            #expect(maxRelativeError(got, want) < tolerance(T.self) * 10)
        }
    }

    @Test(arguments: types)
    func poolingIsExactInEveryType(_ type: any NetworkScalar.Type) {
        check(type)
        func check<T: NetworkScalar>(_: T.Type) {
            let x: Tensor<Double> = randomTensor([2, 3, 6, 6], seed: 4)
            let want = MaxPooling<Double>(size: 2, stride: 2).forward(
                x.converted(to: T.self).converted(), isTraining: false)
            let got = MaxPooling<T>(size: 2, stride: 2).forward(x.converted(), isTraining: false)
            #expect(got.converted(to: Double.self) == want)
        }
    }

    @Test(arguments: types)
    func softmaxRowsSumToOne(_ type: any NetworkScalar.Type) {
        check(type)
        func check<T: NetworkScalar>(_: T.Type) {
            let y = softmax(randomTensor([5, 10], seed: 5, in: -8...8, as: T.self))
            for i in 0..<5 {
                let sum = y.data[i * 10..<(i + 1) * 10].reduce(0.0) { $0 + Double($1) }
                #expect(abs(sum - 1) < tolerance(T.self) * 5)
            }
        }
    }

    /// Float and Float16 against the same network in Double (Double against itself would prove nothing).
    @Test(arguments: [Float.self, Float16.self] as [any NetworkScalar.Type])
    func deepConvNetLogitsAgreeWithDouble(_ type: any NetworkScalar.Type) throws {
        try check(type)
        func check<T: NetworkScalar>(_: T.Type) throws {
            let reference = try Network<Double>(spec: .deepConvNet, seed: 7)
            let x: Tensor<Double> = randomTensor([3, 1, 28, 28], seed: 8, in: 0...1)
            let want = reference.predict(x)
            let got = reference.converted(to: T.self).predict(x.converted())
            // Deep sums in half precision drift; float16 gets a looser bound.
            #expect(maxRelativeError(got, want) < (T.self == Float16.self ? 0.1 : tolerance(T.self) * 10))
        }
    }

    /// Conversion from Double rounds to nearest, ties to even: known values and ties in Float and
    /// Float16 (a Double converts to itself, so it has no case here).
    @Test func conversionRoundsToNearestEven() {
        let half = Tensor<Double>(shape: [5], data: [1 + 0x1p-11, 1 + 3 * 0x1p-11, 0.1, 65504, 65520]).converted(
            to: Float16.self)
        #expect(half.data == [1, 1 + 0x1p-9, Float16(bitPattern: 0x2E66), 65504, .infinity])
        #expect(Double(Float16(bitPattern: 0x2E66)) == 0.0999755859375)
        let single = Tensor<Double>(shape: [3], data: [1 + 0x1p-24, 1 + 3 * 0x1p-24, 0.1]).converted(to: Float.self)
        #expect(single.data == [1, 1 + 0x1p-22, Float(bitPattern: 0x3DCC_CCCD)])
        #expect(Double(Float(bitPattern: 0x3DCC_CCCD)) == 0.100000001490116119384765625)
    }
}

/// The `-acc32` modes: Float arithmetic, values stored in half or bfloat16 between operations.
@Suite struct StorageModeTests {
    @Test func roundingIsToNearestEven() {
        #expect(StorageFormat.float16.round(Float(1) + Float(1) / 2048) == 1)  // tie: even mantissa stays
        #expect(StorageFormat.float16.round(Float(1) + Float(3) / 2048) == 1 + Float(1) / 512)  // tie: odd rounds up
        #expect(StorageFormat.float16.round(Float(70000)) == .infinity)
        #expect(bfloat16Bits(1) == 0x3F80)
        #expect(bfloat16Bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(StorageFormat.bfloat16.round(Float(70000)) == 70144)
        #expect(StorageFormat.native.round(Float(0.1)) == 0.1)
    }

    @Test(arguments: [StorageFormat.float16, .bfloat16])
    func everyStoredValueIsRepresentable(_ storage: StorageFormat) throws {
        let net = try Network<Double>(spec: .deepConvNet, seed: 5).converted(to: Float.self, storage: storage)
        let x: Tensor<Float> = randomTensor([2, 1, 28, 28], seed: 6, in: 0...1)
        for (i, out) in net.forwardAll(x).enumerated() {
            #expect(out.data.allSatisfy { storage.round($0) == $0 }, "output \(i)")
        }
        for (name, p) in net.parameters {
            #expect(p.value.data.allSatisfy { storage.round($0) == $0 }, "\(name)")
        }
    }

    @Test func acc32LogitsStayCloseToFloat32ButDiffer() throws {
        let reference = try Network<Double>(spec: .deepConvNet, seed: 7)
        let x: Tensor<Double> = randomTensor([3, 1, 28, 28], seed: 8, in: 0...1)
        let want = reference.converted(to: Float.self).predict(x.converted())
        for storage in [StorageFormat.float16, .bfloat16] {
            let got = reference.converted(to: Float.self, storage: storage).predict(x.converted())
            let err = zip(got.data, want.data).map { abs($0 - $1) }.max()!, scale = want.data.map(abs).max()!
            #expect(err > 0 && err < scale * (storage == .float16 ? 0.01 : 0.05), "\(storage): \(err) of \(scale)")
        }
    }
}
