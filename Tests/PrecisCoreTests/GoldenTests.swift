import Testing

@testable import PrecisCore

/// Hand-computed values for tiny inputs.
@Suite struct GoldenTests {
    let x3 = Tensor<Double>(shape: [1, 1, 3, 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9])

    @Test func convolutionWithStrideAndPad() {
        // Padded 5×5 input, 2×2 filter [[1,2],[3,4]], stride 2: windows at rows/cols -1 and 1.
        let conv = Convolution(
            W: Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4]), b: Tensor(shape: [1], data: [0.5]), stride: 2, pad: 1)
        let y = conv.forward(x3, isTraining: false)
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.data == [4.5, 18.5, 36.5, 77.5])
    }

    @Test func convolutionTwoFiltersTwoChannels() {
        // Filter 0 sums channel 0, filter 1 takes channel 1 minus channel 0 at the top-left tap.
        let x = Tensor<Double>(shape: [1, 2, 2, 2], data: [1, 2, 3, 4, 10, 20, 30, 40])
        let w = Tensor<Double>(shape: [2, 2, 1, 1], data: [1, 0, -1, 1])
        let y = Convolution(W: w, b: Tensor(shape: [2], data: [0, 100]), stride: 1, pad: 0).forward(
            x, isTraining: false)
        #expect(y.data == [1, 2, 3, 4, 109, 118, 127, 136])
    }

    @Test func maxPoolingWithStrideAndPadNeverPicksPadding() {
        // -1 ... -16 on a 4×4 grid; 3×3 windows, stride 2, pad 1. Zero padding would win every window.
        let x = Tensor<Double>(shape: [1, 1, 4, 4], data: (1...16).map { -Double($0) })
        let pool = MaxPooling<Double>(size: 3, stride: 2, pad: 1)
        let y = pool.forward(x, isTraining: true)
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.data == [-1, -2, -5, -6])
        let dx = pool.backward(Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4]))
        #expect(dx.data == [1, 2, 0, 0, 3, 4] + [Double](repeating: 0, count: 10))
    }

    @Test func maxPoolingTiesGoToTheFirstElement() {
        let pool = MaxPooling<Double>(size: 2, stride: 2)
        _ = pool.forward(Tensor(shape: [1, 1, 2, 2], data: [7, 7, 7, 7]), isTraining: true)
        #expect(pool.backward(Tensor(shape: [1, 1, 1, 1], data: [1])).data == [1, 0, 0, 0])
    }

    /// A Float convolution, in inference and training (direct for whole blocks of 16 filters, give or
    /// take a quarter, and windows of 16 taps or more; 16 pixels to a vector for fewer taps and an
    /// output as large as the input; else the GEMM), gives the bits of one fused multiply-add chain
    /// per output over the window in ascending (channel, ky, kx), written out here, plus the bias;
    /// NaN inputs give NaN where the chain does, and so does an infinite weight times the zero
    /// padding (the direct kernel leaves out padding rows only when every weight is finite). One
    /// layer runs every case, its weight made infinite in place for the last, so filters packed for
    /// an earlier pass must not be reused.
    @Test(arguments: [
        (32, 3, 3, 1, 8, 8), (64, 3, 3, 2, 14, 14), (32, 3, 5, 2, 9, 23), (64, 3, 1, 0, 6, 17), (16, 3, 3, 1, 11, 7),
        (32, 3, 3, 1, 7, 7), (40, 3, 3, 1, 9, 30), (16, 1, 3, 1, 9, 20), (20, 1, 3, 2, 5, 6), (16, 3, 5, 3, 6, 9),
    ])
    func convolutionIsOneMultiplyAddChainPerOutput(filters: Int, c: Int, size: Int, pad: Int, h: Int, w: Int) {
        let x: Tensor<Float> = randomTensor([2, c, h, w], seed: 4)
        var xn = x
        xn.data[17] = .nan
        let wt: Tensor<Float> = randomTensor([filters, c, size, size], seed: 5),
            b: Tensor<Float> = randomTensor(
                [filters], seed: 6)
        let g = Window(input: x.shape, fh: size, fw: size, stride: 1, pad: pad)
        let conv = Convolution<Float>(W: wt, b: b, pad: pad)
        for (input, infinite) in [(x, false), (xn, false), (x, true)] {
            if infinite { conv.W.value.data[size * size - 1] = .infinity }
            let wt = conv.W.value, col = im2col(input.data, g)
            var expected = [Float](repeating: 0, count: 2 * filters * g.pixels)
            for row in 0..<g.rows {
                let (n, pixel) = (row / g.pixels, row % g.pixels)
                for f in 0..<filters {
                    var acc: Float = 0
                    for k in 0..<g.cols { acc = acc.addingProduct(col[row * g.cols + k], wt.data[f * g.cols + k]) }
                    expected[(n * filters + f) * g.pixels + pixel] = acc + b.data[f]
                }
            }
            for isTraining in [false, true] {
                let y = conv.forward(input, isTraining: isTraining)
                let differing = zip(y.data, expected).filter {
                    $0.bitPattern != $1.bitPattern && !($0.isNaN && $1.isNaN)
                }
                #expect(y.shape == [2, filters, g.oh, g.ow] && differing.isEmpty, "\(differing.count) differ")
            }
        }
    }

    /// A Float convolution's gradients (stride 1, square 3×3 or 5×5 windows of 16 taps or more, with
    /// the ReLU that follows it fused) have the bits of the order written out here at every kernel
    /// level: per chunk of images (`ConvPlan`), each weight one fused multiply-add chain from +0 over
    /// the chunk's output pixels in order and each bias one chain of additions, the chunks' sums
    /// added in chunk order; each input gradient one chain over (filter, ky, kx) with the window turned
    /// over, as the forward convolution of the output gradient with the filters turned over computes it.
    @Test(arguments: [
        (16, 16, 3, 1, 28, 28, 5, true), (32, 3, 3, 1, 9, 11, 3, false), (30, 1, 5, 0, 12, 12, 4, false),
        (32, 32, 3, 2, 7, 7, 3, true), (64, 32, 3, 1, 8, 8, 2, true), (16, 16, 5, 2, 10, 10, 2, true),
    ])
    func convolutionGradientsFollowOneOrder(
        filters: Int, c: Int, size: Int, pad: Int, h: Int, w: Int, n: Int, inputGradient: Bool
    ) {
        let x: Tensor<Float> = randomTensor([n, c, h, w], seed: 11)
        let conv = Convolution<Float>(
            W: randomTensor([filters, c, size, size], seed: 12), b: randomTensor([filters], seed: 13), pad: pad)
        let g = Window(input: x.shape, fh: size, fw: size, stride: 1, pad: pad)
        let y = conv.forward(x, isTraining: true, relu: true), dout: Tensor<Float> = randomTensor(y.shape, seed: 14)
        let dx = conv.backward(dout, inputGradient: inputGradient, reluOutput: y.data)
        let d = zip(dout.data, y.data).map { $1 <= 0 ? 0 : $0 }, wt = conv.W.value.data
        func input(_ j: Int, _ ch: Int, _ iy: Int, _ ix: Int) -> Float {
            (0..<h).contains(iy) && (0..<w).contains(ix) ? x.data[((j * c + ch) * h + iy) * w + ix] : 0
        }
        let plan = ConvPlan(g, outputs: filters, shifted: true), k = g.cols
        var dW = [Float](repeating: 0, count: filters * k), db = [Float](repeating: 0, count: filters)
        for chunk in 0..<plan.count {
            for f in 0..<filters {
                for r in 0..<k {
                    let t = g.tap(r)
                    var acc: Float = 0
                    for j in plan.images(chunk) {
                        for oy in 0..<g.oh {
                            for ox in 0..<g.ow {
                                acc = acc.addingProduct(
                                    input(j, t.ch, oy + t.ky - pad, ox + t.kx - pad),
                                    d[((j * filters + f) * g.oh + oy) * g.ow + ox])
                            }
                        }
                    }
                    dW[f * k + r] = chunk == 0 ? acc : dW[f * k + r] + acc
                }
                var sum: Float = 0
                for j in plan.images(chunk) { for p in 0..<g.pixels { sum += d[(j * filters + f) * g.pixels + p] } }
                db[f] = chunk == 0 ? sum : db[f] + sum
            }
        }
        func differing(_ a: [Float], _ b: [Float]) -> Int { zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count }
        #expect(differing(conv.W.grad.data, dW) == 0, "weight gradients")
        #expect(differing(conv.b.grad.data, db) == 0, "bias gradients")
        guard inputGradient else { return }
        let taps = size * size, turn = size - 1 - pad
        var expected = [Float](repeating: 0, count: x.count)
        for j in 0..<n {
            for ch in 0..<c {
                for iy in 0..<h {
                    for ix in 0..<w {
                        var acc: Float = 0
                        for f in 0..<filters {
                            for ky in 0..<size {
                                for kx in 0..<size {
                                    let (oy, ox) = (iy + ky - turn, ix + kx - turn)
                                    let v =
                                        (0..<g.oh).contains(oy) && (0..<g.ow).contains(ox)
                                        ? d[((j * filters + f) * g.oh + oy) * g.ow + ox] : 0
                                    acc = acc.addingProduct(v, wt[(f * c + ch) * taps + taps - 1 - ky * size - kx])
                                }
                            }
                        }
                        expected[((j * c + ch) * h + iy) * w + ix] = acc + 0
                    }
                }
            }
        }
        #expect(dx.shape == x.shape && differing(dx.data, expected) == 0, "input gradients")
    }

    /// A Float affine layer (a vector kernel with AVX-512, else the GEMM) gives the bits of one fused
    /// multiply-add chain per output over ascending inputs, written out here, plus the bias, for
    /// output counts that fill part of a vector, several vectors and more than four; NaN propagates.
    @Test(arguments: [(13, 37, 50), (7, 64, 10), (30, 20, 70), (1, 5, 100)])
    func affineIsOneMultiplyAddChainPerOutput(rows: Int, fin: Int, fout: Int) {
        var x: Tensor<Float> = randomTensor([rows, fin], seed: 7)
        x.data[x.count - 2] = .nan
        let w: Tensor<Float> = randomTensor([fin, fout], seed: 8), b: Tensor<Float> = randomTensor([fout], seed: 9)
        var expected = [Float](repeating: 0, count: rows * fout)
        for i in 0..<rows {
            for j in 0..<fout {
                var acc: Float = 0
                for k in 0..<fin { acc = acc.addingProduct(x.data[i * fin + k], w.data[k * fout + j]) }
                expected[i * fout + j] = acc + b.data[j]
            }
        }
        for isTraining in [false, true] {
            let y = Affine<Float>(W: w, b: b).forward(x, isTraining: isTraining)
            let differing = zip(y.data, expected).filter { $0.bitPattern != $1.bitPattern && !($0.isNaN && $1.isNaN) }
            #expect(y.shape == [rows, fout] && differing.isEmpty, "\(differing.count) differ")
        }
    }

    /// 2×2 pooling, inference (vector kernel for Float) and training alike, gives the bits of the
    /// rule written out here: each window in row-major order, a value replacing the best when it is
    /// larger, or NaN over a number. ±0 ties and NaNs with different payloads show the order.
    @Test(arguments: [(3, 5), (4, 4), (6, 33), (9, 40), (2, 64)])
    func maxPooling2x2MatchesTheRule(h: Int, w: Int) {
        var rng = RandomSource(seed: UInt64(h * 100 + w))
        let specials: [Float] = [0, -0, .nan, Float(bitPattern: 0x7FC0_0001), -.nan, .infinity, 1, 1]
        let x = Tensor<Float>(
            shape: [2, 3, h, w],
            data: (0..<(6 * h * w)).map { i in i % 4 != 3 ? specials[i * 5 / 4 % specials.count] : Float(rng.normal()) }
        )
        let (oh, ow) = (h / 2, w / 2)
        var expected = [Float](), from = [Int32]()
        for plane in 0..<6 {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let corner = 2 * oy * w + 2 * ox
                    var best = x.data[plane * h * w + corner], at = corner
                    for i in [corner + 1, corner + w, corner + w + 1] {
                        let v = x.data[plane * h * w + i]
                        if v > best || (v.isNaN && !best.isNaN) { (best, at) = (v, i) }
                    }
                    expected.append(best)
                    from.append(Int32(at))
                }
            }
        }
        for isTraining in [false, true] {
            let pool = MaxPooling<Float>(size: 2, stride: 2), y = pool.forward(x, isTraining: isTraining)
            #expect(y.shape == [2, 3, oh, ow] && y.data.map(\.bitPattern) == expected.map(\.bitPattern))
            #expect(pool.lastArgmax == (isTraining ? from : []))
        }
    }

    @Test func averagePooling() {
        let x = Tensor<Double>(shape: [1, 1, 4, 4], data: (0..<16).map(Double.init))
        #expect(
            AveragePooling<Double>(size: 2, stride: 2).forward(x, isTraining: false).data == [2.5, 4.5, 10.5, 12.5])
    }

    @Test func im2colLayout() {
        let g = Window(input: [1, 1, 3, 3], fh: 2, fw: 2, stride: 1, pad: 0)
        #expect(im2col(x3.data, g) == [1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9])
    }

    @Test func col2imSumsOverlapsSoRoundTripScalesByCoverage() {
        let g = Window(input: [1, 1, 3, 3], fh: 2, fw: 2, stride: 1, pad: 0)
        let coverage: [Double] = [1, 2, 1, 2, 4, 2, 1, 2, 1]
        #expect(col2im(im2col(x3.data, g), g) == zip(x3.data, coverage).map(*))
    }

    @Test func col2imIsTheAdjointOfIm2col() {
        // <im2col(x), c> == <x, col2im(c)> for stride 2, pad 1, rectangular windows.
        let g = Window(input: [2, 3, 5, 4], fh: 3, fw: 2, stride: 2, pad: 1)
        let x: Tensor<Double> = randomTensor([2, 3, 5, 4], seed: 1)
        let c: Tensor<Double> = randomTensor([g.rows, g.cols], seed: 2)
        let lhs = zip(im2col(x.data, g), c.data).map(*).reduce(0, +)
        let rhs = zip(x.data, col2im(c.data, g)).map(*).reduce(0, +)
        #expect(abs(lhs - rhs) < 1e-12)
    }

    @Test func softmaxWithLoss() {
        let layer = SoftmaxWithLoss<Double>()
        let x = Tensor<Double>(shape: [2, 4], data: [0.5, -1, 2, 0, 3, 3, -2, 1])
        let loss = layer.forward(x, [3, 0])
        #expect(abs(loss - 1.5520612434218284) < 1e-12)  // numpy, with the book's log(y + 1e-7)
        let y = softmax(x)
        let expected = [0.15844471, 0.03535379, 0.71009992, 0.09610157, 0.46683745, 0.46683745, 0.00314553, 0.06317958]
        #expect(zip(y.data, expected).allSatisfy { abs($0 - $1) < 1e-8 })
        let dx = layer.backward()
        #expect(abs(dx.data[3] - (0.09610157 - 1) / 2) < 1e-8)
        #expect(abs(dx.data[4] - (0.46683745 - 1) / 2) < 1e-8)
        #expect(abs(dx.data[1] - 0.03535379 / 2) < 1e-8)
    }

    /// Every element of a float32 or float64 GEMM is one chain of fused multiply-adds from +0 in
    /// ascending k, bit for bit, at every kernel level (the portable level computes a float32 fused
    /// multiply-add exactly in double): every other product cancels the one before it up to its
    /// rounding error, which only a fused multiply-add keeps, among values of every magnitude,
    /// infinities and NaN.
    @Test func gemmChainsAreFusedBitForBit() {
        func check<T: NetworkScalar>(_: T.Type, bits: (UInt64) -> T) {
            let (m, n, k) = (9, 37, 6)
            var rng = RandomSource(seed: 11)
            func value() -> T {
                let v = bits(rng.next())
                return rng.uniform() < 0.7 ? T(rng.normal()) * T(Float.pow(2, Float(Int(rng.uniform() * 40) - 20))) : v
            }
            var a = (0..<(m * k)).map { _ in value() }, b = (0..<(k * n)).map { _ in value() }
            for p in stride(from: 1, to: k, by: 2) {
                for i in 0..<m { a[i * k + p] = a[i * k + p - 1] }
                for j in 0..<n { b[p * n + j] = -b[(p - 1) * n + j] }
            }
            var c = [T](repeating: 7, count: m * n)
            let packed = packRows(m, k, a, k), rows = (0..<k).map { $0 * n }
            packed.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer {
                        gemmPacked(m, n, k, ap.baseAddress!, bp.baseAddress!, rows, $0.baseAddress!, n)
                    }
                }
            }
            var fusedOnly = 0
            for i in 0..<m {
                for j in 0..<n {
                    var want = T(0), unfused = T(0)
                    for p in 0..<k {
                        want = want.addingProduct(a[i * k + p], b[p * n + j])
                        unfused = unfused + a[i * k + p] * b[p * n + j]
                    }
                    if want != unfused && !want.isNaN { fusedOnly += 1 }
                    let got = c[i * n + j]
                    #expect(got == want || (got.isNaN && want.isNaN), "\(T.self) at \(i),\(j): \(got) not \(want)")
                }
            }
            #expect(fusedOnly > m * n / 4, "\(fusedOnly) sums differ from those of separate products and sums")
        }
        check(Float.self) { Float(bitPattern: UInt32(truncatingIfNeeded: $0)) }
        check(Double.self) { Double(bitPattern: $0) }
    }

    @Test func gemmMatchesNaiveProductForEdgeSizes() {
        // Sizes that leave partial row blocks (8) and partial column panels (16 Doubles), both layouts.
        for (m, n, k) in [(1, 1, 1), (9, 17, 5), (23, 33, 7), (8, 16, 0), (17, 20, 600), (16, 48, 3)] {
            for transA in [false, true] {
                let a: Tensor<Double> = randomTensor([m * k], seed: 3),
                    b: Tensor<Double> = randomTensor([k * n], seed: 4)
                var c = [Double](repeating: 7, count: m * n)
                a.data.withUnsafeBufferPointer { ap in
                    b.data.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            gemm(
                                m, n, k, ap.baseAddress!, transA ? m : k, transA: transA, bp.baseAddress!, n,
                                cp.baseAddress!, n)
                        }
                    }
                }
                for i in 0..<m {
                    for j in 0..<n {
                        let want = (0..<k).map { p in
                            (transA ? a.data[p * m + i] : a.data[i * k + p]) * b.data[p * n + j]
                        }.reduce(0, +)
                        #expect(abs(c[i * n + j] - want) < 1e-12, "m \(m) n \(n) k \(k) transA \(transA) at \(i),\(j)")
                    }
                }
            }
        }
    }
}

extension GoldenTests {
    /// `im2colT` for `images` of `x` into a matrix with `pad` spare columns per row.
    func unfolded(_ x: [Double], _ g: Window, images: Range<Int>, spare: Int = 0) -> [Double] {
        let ld = images.count * g.pixels + spare
        var col = [Double](repeating: .nan, count: g.cols * ld)
        x.withUnsafeBufferPointer { xs in
            col.withUnsafeMutableBufferPointer { im2colT(xs.baseAddress!, g, images: images, $0.baseAddress!, ld) }
        }
        return (0..<g.cols).flatMap { r in col[(r * ld)..<(r * ld + images.count * g.pixels)] }
    }

    @Test(arguments: [(3, 3, 1, 1), (2, 3, 2, 1), (5, 5, 1, 0), (3, 2, 3, 2), (3, 3, 1, 2), (1, 1, 1, 0)])
    func im2colTIsTheTransposeOfIm2col(fh: Int, fw: Int, stride: Int, pad: Int) {
        let x: Tensor<Double> = randomTensor([3, 3, 7, 6], seed: 9)
        let g = Window(input: x.shape, fh: fh, fw: fw, stride: stride, pad: pad)
        let book = im2col(x.data, g)
        #expect(unfolded(x.data, g, images: 0..<3) == transposed(book, rows: g.rows, cols: g.cols))
        // A chunk of images, written with spare columns, holds exactly those images' columns.
        let one = Window(input: [1, 3, 7, 6], fh: fh, fw: fw, stride: stride, pad: pad)
        let second = Array(book[(g.pixels * g.cols)..<(2 * g.pixels * g.cols)])
        #expect(unfolded(x.data, g, images: 1..<2, spare: 5) == transposed(second, rows: one.rows, cols: one.cols))
    }

    @Test(arguments: [(3, 3, 1, 1), (2, 3, 2, 1), (5, 5, 1, 0), (3, 2, 3, 2), (3, 3, 1, 2)])
    func col2imTSumsLikeTheBookBitForBit(fh: Int, fw: Int, stride: Int, pad: Int) {
        let g = Window(input: [3, 2, 7, 6], fh: fh, fw: fw, stride: stride, pad: pad)
        let col: Tensor<Double> = randomTensor([g.rows, g.cols], seed: 11)
        let colT = transposed(col.data, rows: g.rows, cols: g.cols)  // (C·FH·FW, N·OH·OW)
        var x = [Double](repeating: 0, count: 3 * 2 * 7 * 6)
        colT.withUnsafeBufferPointer { cs in
            x.withUnsafeMutableBufferPointer { xs in
                // Image 0 alone, then images 1 and 2 as one chunk (columns offset by one image).
                col2imT(cs.baseAddress!, g.rows, g, images: 0..<1, xs.baseAddress!)
                col2imT(cs.baseAddress! + g.pixels, g.rows, g, images: 1..<3, xs.baseAddress!)
            }
        }
        #expect(x == col2im(col.data, g))
    }

    @Test func gemmABtMatchesNaiveDotProducts() {
        for (m, n, len) in [(1, 1, 16), (5, 9, 32), (16, 7, 48), (4, 4, 160)] {
            let a: Tensor<Double> = randomTensor([m, len], seed: 5),
                b: Tensor<Double> = randomTensor([n, len], seed: 6)
            var c = [Double](repeating: .nan, count: m * n)
            a.data.withUnsafeBufferPointer { ap in
                b.data.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer {
                        gemmABt(
                            m, n, len, ap.baseAddress!, len, bp.baseAddress!, (0..<n).map { $0 * len }, $0.baseAddress!,
                            n)
                    }
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    let want = (0..<len).map { a.data[i * len + $0] * b.data[j * len + $0] }.reduce(0, +)
                    #expect(abs(c[i * n + j] - want) < 1e-12, "m \(m) n \(n) len \(len) at \(i),\(j)")
                }
            }
        }
    }
}
