import Foundation

/// A one-line progress display on stderr with rate and ETA, redrawn at most ten times a second;
/// silent when stderr is not a terminal or when disabled.
public final class ProgressLine {
    private let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false

    public init(quiet: Bool) {
        enabled = !quiet && isatty(STDERR_FILENO) == 1
    }

    /// Shows `done` of `total` steps with a prefix and a suffix.
    public func update(_ prefix: String, done: Int, total: Int, unit: String, suffix: String = "") {
        guard enabled else { return }
        let now = Date()
        guard done == total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 20, filled = total > 0 ? width * done / total : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(
            format: "%@ [%@] %d/%d %.1f %@/s ETA %@ %@", prefix, bar, done, total, rate, unit, clock(eta), suffix)
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        drawn = true
    }

    /// Clears the line so that normal output follows cleanly.
    public func clear() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        drawn = false
    }
}

/// `1h02m03s`, `4m05s` or `6s`.
public func clock(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm%02ds", s / 3600, s / 60 % 60, s % 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}
