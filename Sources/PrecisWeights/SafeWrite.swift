import Foundation

/// The temporary files being written in this process, so that an interrupted run can remove them
/// (`removeAll`, called from a signal handler's queue) and leave nothing behind.
public enum TemporaryFiles {
    private nonisolated(unsafe) static var paths: Set<String> = []
    private static let lock = NSLock()

    static func add(_ path: String) { lock.withLock { _ = paths.insert(path) } }
    static func remove(_ path: String) { lock.withLock { _ = paths.remove(path) } }

    /// Deletes every temporary file still being written.
    public static func removeAll() {
        lock.withLock {
            for path in paths { unlink(path) }
            paths.removeAll()
        }
    }
}

/// An exclusive advisory lock on the sidecar file `.NAME.lock` next to `path`, held while `body`
/// runs, so that writers of the same weight file take turns (each one then changes the file as the
/// one before left it). Readers take no lock: they see the file before or after a change, never
/// during one, because changes are renames.
func withWriteLock<R>(_ path: String, _ body: () throws -> R) throws -> R {
    let url = URL(fileURLWithPath: path)
    let lockPath = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).lock").path
    let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
        throw HDF5Error(
            file: path, path: "", message: "cannot write in its folder (\(String(cString: strerror(errno))))")
    }
    defer { close(fd) }
    while flock(fd, LOCK_EX) != 0 {
        guard errno == EINTR else {
            throw HDF5Error(file: path, path: "", message: "cannot lock it (\(String(cString: strerror(errno))))")
        }
    }
    defer { flock(fd, LOCK_UN) }
    return try body()
}

/// Whether a new file can be written at `path`: its folder exists and is writable. Returns the
/// problem, or nil.
public func writeProblem(_ path: String) -> String? {
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
        return "its folder \(folder) does not exist"
    }
    guard access(folder, W_OK) == 0 else { return "its folder \(folder) is not writable" }
    return nil
}
