import RealModule

/// A seedable pseudo-random generator (xoshiro256**, seeded through SplitMix64): the same seed
/// gives the same sequence on every machine, so the same seed gives the same weights.
public struct RandomSource: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    private var spareNormal: Double?

    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    /// The generator's whole state, for a checkpoint: the four state words, then 1 and the spare
    /// normal's bits when one is kept (else 0 and 0).
    public var state: [UInt64] {
        [s.0, s.1, s.2, s.3, spareNormal == nil ? 0 : 1, spareNormal?.bitPattern ?? 0]
    }

    /// The generator in `state` (as `state` gives it); nil for a state no generator can be in.
    public init?(state: [UInt64]) {
        guard state.count == 6, state[4] <= 1, state[0...3].contains(where: { $0 != 0 }) else { return nil }
        s = (state[0], state[1], state[2], state[3])
        spareNormal = state[4] == 1 ? Double(bitPattern: state[5]) : nil
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Standard normal (Box–Muller; the second value of each pair is kept for the next call).
    public mutating func normal() -> Double {
        if let z = spareNormal {
            spareNormal = nil
            return z
        }
        var u = 0.0
        repeat { u = uniform() } while u == 0
        let r = (-2 * Double.log(u)).squareRoot(), theta = 2 * Double.pi * uniform()
        spareNormal = r * Double.sin(theta)
        return r * Double.cos(theta)
    }

    /// A uniformly random permutation of `0..<n` (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                p.swapAt(i, Int(next() % UInt64(i + 1)))
            }
        }
        return p
    }
}

extension RandomSource: Equatable {
    /// Two generators are equal when they are in the same state (they give the same sequence).
    public static func == (a: RandomSource, b: RandomSource) -> Bool { a.state == b.state }
}
