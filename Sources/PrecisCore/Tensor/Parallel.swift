import CKernels
import CSystem
import Foundation

/// The cores this process may use, read once (asking Foundation costs microseconds per call).
let availableCores = ProcessInfo.processInfo.activeProcessorCount

/// Splits `0..<count` into contiguous chunks run on the available cores. Each index belongs to exactly
/// one chunk and chunks do not share output, so results do not depend on the number of cores.
@inline(__always)
func parallelChunks(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
    let parts = min(availableCores, count, max(1, work >> 18))
    if parts <= 1 {
        body(0..<count)
        return
    }
    runParts(parts) { p in body((count * p / parts)..<(count * (p + 1) / parts)) }
}

/// Runs `body(p)` for `p` in `0..<parts` on the worker pool (`precis_parallel`), or one after the
/// other on this thread when the pool is taken (a call from inside a part, or from another thread).
private func runParts(_ parts: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        var task = body
        let ran = withUnsafeMutablePointer(to: &task) { task in
            precis_parallel(
                Int32(parts),
                { context, part in context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(part)) }, task)
        }
        if ran == 0 { for p in 0..<parts { body(p) } }
    }
}

/// Splits `0..<weights.count` into one contiguous range per core with about equal total weight (each
/// boundary where the running total first reaches the next share) and runs them in parallel.
func parallelWeighted(_ weights: [Int], _ body: (Range<Int>) -> Void) {
    let total = weights.reduce(0, +), parts = min(availableCores, weights.count)
    guard parts > 1, total > 1 << 18 else {
        body(weights.indices)
        return
    }
    var bounds = [0], sum = 0
    for (i, w) in weights.enumerated() {
        sum += w
        if bounds.count < parts && sum * parts >= total * bounds.count { bounds.append(i + 1) }
    }
    bounds.append(weights.count)
    runParts(bounds.count - 1) { p in body(bounds[p]..<max(bounds[p], bounds[p + 1])) }
}

/// Keeps freed memory in the process instead of returning large blocks to the system, so the
/// tens of megabytes a training step allocates are not page-faulted in afresh every iteration.
public func keepFreedMemory() {
    #if os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
    #endif
}
