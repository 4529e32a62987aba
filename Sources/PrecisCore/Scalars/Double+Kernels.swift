import CKernels

/// Double's kernels: the GEMMs and the error sums in C, at every level.
extension Double: ScalarKernels {
    public static var panelWidth: Int { Int(precis_gemm_panel_width(8)) }

    public static func gemmPanels(
        _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
        _ rows: UnsafePointer<Int>, _ c: UnsafeMutablePointer<Double>, _ ldc: Int, _ panels: Range<Int>
    ) {
        precis_gemm_f64_panels(
            Int32(m), Int32(n), Int32(k), a, b, int64s(rows), c, Int32(ldc), Int32(panels.lowerBound),
            Int32(panels.upperBound))
    }

    public static var abtTile: (rows: Int, cols: Int) { (4, 4) }

    public static func gemmABtTiles(
        _ m: Int, _ n: Int, _ len: Int, _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>,
        _ rows: UnsafePointer<Int>, _ c: UnsafeMutablePointer<Double>, _ ldc: Int, _ tiles: Range<Int>
    ) {
        precis_gemm_abt_f64_tiles(
            Int32(m), Int32(n), Int32(len), a, Int32(lda), b, int64s(rows), c, Int32(ldc), Int32(tiles.lowerBound),
            Int32(tiles.upperBound))
    }

    public static var shiftedPlanes: Bool { true }

    public static func errorSums(
        _ x: UnsafePointer<Double>, _ reference: UnsafePointer<Double>, count: Int, minNormal: Double,
        _ sums: inout precis_error_sums
    ) -> Bool {
        precis_error_stats_f64(x, reference, Int64(count), minNormal, &sums)
        return true
    }
}
