import Foundation
import PrecisCore

/// Files written whole or not at all. Each write fills a temporary file next to its target and
/// renames it into place, under one lock for the process. `abandon`, called when a signal stops
/// the process while the main thread may be writing, waits for a write in progress to finish (they
/// take milliseconds) and keeps the lock, so no write starts after it and no temporary file is
/// left behind.
public enum AtomicFiles {
    private static let lock = NSLock()

    /// Writes `path` whole or not at all: `body` fills a new, empty temporary file (it gets its
    /// path; every handle on it must be closed when it returns), which then replaces `path`. On an
    /// error the temporary file is removed and `path` is as it was.
    public static func write(_ path: String, _ body: (String) throws -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).part")
            .path
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DataError(file: path, problem: "cannot write next to it: \(String(cString: strerror(errno)))")
        }
        close(fd)
        do {
            try body(tmp)
            guard rename(tmp, path) == 0 else {
                throw DataError(file: path, problem: "cannot rename into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// Writes `data` to `path` whole or not at all.
    public static func write(_ data: Data, to path: String) throws {
        try write(path) { tmp in
            do { try data.write(to: URL(fileURLWithPath: tmp)) } catch {
                throw DataError(file: path, problem: "cannot be written: \(error.localizedDescription)")
            }
        }
    }

    /// Waits for a write in progress and stops any later one. Call it only on the way out.
    public static func abandon() { lock.lock() }
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
