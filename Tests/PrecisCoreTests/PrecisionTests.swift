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

    @Test(arguments: types)
    func convolutionAgreesWithDouble(_ type: any NetworkScalar.Type) {
        check(type)
        func check<T: NetworkScalar>(_: T.Type) {
            let w: Tensor<Double> = randomTensor([4, 3, 3, 3], seed: 1), b: Tensor<Double> = randomTensor([4], seed: 2)
            let x: Tensor<Double> = randomTensor([2, 3, 6, 6], seed: 3)
            let want = Convolution(W: w, b: b, stride: 1, pad: 1).forward(x, isTraining: false)
            let got = Convolution<T>(W: w.converted(), b: b.converted(), stride: 1, pad: 1).forward(x.converted(), isTraining: false)
            #expect(got.shape == want.shape)
            #expect(maxRelativeError(got, want) < tolerance(T.self) * 10)
        }
    }

    @Test(arguments: types)
    func poolingIsExactInEveryType(_ type: any NetworkScalar.Type) {
        check(type)
        func check<T: NetworkScalar>(_: T.Type) {
            let x: Tensor<Double> = randomTensor([2, 3, 6, 6], seed: 4)
            let want = MaxPooling<Double>(size: 2, stride: 2).forward(x.converted(to: T.self).converted(), isTraining: false)
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

    @Test(arguments: types)
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

    @Test(arguments: types)
    func conversionRoundsToNearest(_ type: any NetworkScalar.Type) {
        check(type)
        func check<T: NetworkScalar>(_: T.Type) {
            let t = Tensor<Double>(shape: [3], data: [0.1, 1.0 / 3, 65504])
            let c = t.converted(to: T.self)
            #expect(c.data == t.data.map { T($0) })
            #expect(Double(c.data[2]) == 65504)
        }
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
