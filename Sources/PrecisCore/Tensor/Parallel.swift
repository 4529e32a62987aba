import CSystem
import Dispatch
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
    DispatchQueue.concurrentPerform(iterations: parts) { p in
        body((count * p / parts)..<(count * (p + 1) / parts))
    }
}

/// Keeps freed memory in the process instead of returning large blocks to the system, so the
/// tens of megabytes a training step allocates are not page-faulted in afresh every iteration.
public func keepFreedMemory() {
    #if os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
    #endif
}
