/// Runs `body` with the storage of two or three arrays at once: one call in place of a pyramid of
/// nested `withUnsafeBufferPointer` closures.
@inline(__always)
func withBuffers<A, B, R>(
    _ a: [A], _ b: [B], _ body: (UnsafeBufferPointer<A>, UnsafeBufferPointer<B>) throws -> R
) rethrows -> R {
    try a.withUnsafeBufferPointer { a in try b.withUnsafeBufferPointer { try body(a, $0) } }
}

@inline(__always)
func withBuffers<A, B, C, R>(
    _ a: [A], _ b: [B], _ c: [C],
    _ body: (UnsafeBufferPointer<A>, UnsafeBufferPointer<B>, UnsafeBufferPointer<C>) throws -> R
) rethrows -> R {
    try a.withUnsafeBufferPointer { a in try withBuffers(b, c) { try body(a, $0, $1) } }
}

/// `withBuffers` for arrays written in place.
@inline(__always)
func withMutableBuffers<A, B, R>(
    _ a: inout [A], _ b: inout [B], _ body: (UnsafeMutableBufferPointer<A>, UnsafeMutableBufferPointer<B>) throws -> R
) rethrows -> R {
    try a.withUnsafeMutableBufferPointer { a in try b.withUnsafeMutableBufferPointer { try body(a, $0) } }
}
