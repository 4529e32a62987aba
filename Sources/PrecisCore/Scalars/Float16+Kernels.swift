// Float16 is unavailable on macOS/Catalyst x86_64; the same guard swift-numerics uses.
#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
    import CKernels

    /// Float16's kernels: with F16C (`halfKernels`) the GEMMs and the convolution epilogue in C on
    /// the values' bit patterns, the same results as the Swift kernels bit for bit; without, the
    /// GEMMs in Swift. Strict half unfolds every convolution input.
    extension Float16: ScalarKernels {
        public static var panelWidth: Int { halfKernels ? 32 : 24 }

        public static func gemmPanels(
            _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float16>, _ b: UnsafePointer<Float16>,
            _ rows: UnsafePointer<Int>, _ c: UnsafeMutablePointer<Float16>, _ ldc: Int, _ panels: Range<Int>
        ) {
            guard halfKernels else { return halfPanels(panels, m, n, k, a, b, rows, c, ldc) }
            precis_gemm_f16_panels(
                Int32(m), Int32(n), Int32(k), bits(a), bits(b), int64s(rows), bits(c), Int32(ldc),
                Int32(panels.lowerBound), Int32(panels.upperBound))
        }

        public static var abtTile: (rows: Int, cols: Int) { halfKernels ? (4, 4) : (2, 3) }

        public static func gemmABtTiles(
            _ m: Int, _ n: Int, _ len: Int, _ a: UnsafePointer<Float16>, _ lda: Int, _ b: UnsafePointer<Float16>,
            _ rows: UnsafePointer<Int>, _ c: UnsafeMutablePointer<Float16>, _ ldc: Int, _ tiles: Range<Int>
        ) {
            guard halfKernels else { return abtTiles2x3(m, n, len, a, lda, b, rows, c, ldc, tiles) }
            precis_gemm_abt_f16_tiles(
                Int32(m), Int32(n), Int32(len), bits(a), Int32(lda), bits(b), int64s(rows), bits(c), Int32(ldc),
                Int32(tiles.lowerBound), Int32(tiles.upperBound))
        }

        public static var shiftedPlanes: Bool { false }

        public static func finishConvolution(
            _ out: UnsafePointer<Float16>, columns: Int, filters: Int, images: Int, bandRows: Int, rowWidth: Int,
            oh: Int, ow: Int, bias: UnsafePointer<Float16>, relu: Bool, pooled: Bool,
            _ y: UnsafeMutablePointer<Float16>
        ) -> Bool {
            guard halfKernels else { return false }
            precis_conv_finish_f16(
                bits(out), Int32(columns), Int32(filters), Int32(images), Int32(bandRows), Int32(rowWidth), Int32(oh),
                Int32(ow), bits(bias), relu ? 1 : 0, pooled ? 1 : 0, bits(y))
            return true
        }

        /// SGD, momentum and Adam with F16C.
        public static func optimizerStep(
            _ kind: OptimizerKind, _ p: UnsafeMutablePointer<Float16>, _ g: UnsafePointer<Float16>,
            _ s1: UnsafeMutablePointer<Float16>, _ s2: UnsafeMutablePointer<Float16>, count: Int,
            constants: [Float16]
        ) -> Bool {
            let code: Int32
            switch kind {
            case .sgd: code = 0
            case .momentum: code = 1
            case .adam: code = 2
            case .nesterov, .adagrad, .rmsprop: return false
            }
            guard halfKernels else { return false }
            let c = (constants + [0, 0, 0, 0]).prefix(4).map(\.bitPattern)
            precis_optimizer_f16(code, bits(p), bits(g), bits(s1), bits(s2), Int64(count), c)
            return true
        }

        public static func errorSums(
            _ x: UnsafePointer<Float16>, _ reference: UnsafePointer<Double>, count: Int, minNormal: Double,
            _ sums: inout precis_error_sums
        ) -> Bool {
            precis_error_stats_f16(bits(x), reference, Int64(count), minNormal, &sums)
            return true
        }
    }

    /// IEEE half values as their bit patterns, for the C kernels.
    @inline(__always)
    private func bits(_ p: UnsafePointer<Float16>) -> UnsafePointer<UInt16> {
        UnsafeRawPointer(p).assumingMemoryBound(to: UInt16.self)
    }

    @inline(__always)
    private func bits(_ p: UnsafeMutablePointer<Float16>) -> UnsafeMutablePointer<UInt16> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt16.self)
    }
#endif
