import Foundation
import PrecisCore

/// Files written whole or not at all. Each write fills a temporary file next to its target and
/// renames it into place, under one lock for the process. `abandon`, called when a signal stops
/// the process while the main thread may be writing, waits for a write in progress to finish (they
/// take milliseconds) and keeps the lock, so no write starts after it and no temporary file is
/// left behind.
///
/// The rules every output follows (the Guarantees article): a symbolic link is written through, so
/// its target changes and the link stays; a file that is replaced keeps its mode and owner; a
/// read-only file, a folder, a device, a FIFO or a socket is never replaced. Whether an existing
/// file may be replaced at all is the caller's (`outputProblem`: only with `--force`).
public enum AtomicFiles {
    private static let lock = NSLock()

    /// Writes `path` whole or not at all: `body` fills a new, empty temporary file (it gets its
    /// path; every handle on it must be closed when it returns), which then replaces `path` (the
    /// file a symbolic link points to, for a link), with the mode and owner the file had. On an
    /// error the temporary file is removed and `path` is as it was.
    public static func write(_ path: String, _ body: (String) throws -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        let target = resolvedPath(path)
        var old = stat()
        let exists = stat(target, &old) == 0
        if exists, let problem = replaceProblem(old) { throw DataError(file: path, problem: problem) }
        let url = URL(fileURLWithPath: target)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).part")
            .path
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw DataError(file: path, problem: "cannot write next to it: \(String(cString: strerror(errno)))")
        }
        close(fd)
        do {
            try body(tmp)
            // The replaced file's mode and owner (an owner this user may not give is left as it is).
            if exists {
                chmod(tmp, old.st_mode & 0o7777)
                chown(tmp, old.st_uid, old.st_gid)
            }
            guard rename(tmp, target) == 0 else {
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

    /// Writes the folder `path` whole or not at all: `files` (name and contents) go into a new
    /// temporary folder next to it, which then takes its place. An existing folder at `path` is
    /// replaced only when it holds nothing but what such a folder holds (`owned`: names it may
    /// hold), so that no other file is ever deleted; the folder keeps its mode.
    public static func writeFolder(_ path: String, files: [(name: String, data: Data)], owned: (String) -> Bool)
        throws
    {
        lock.lock()
        defer { lock.unlock() }
        let url = URL(fileURLWithPath: path), manager = FileManager.default
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).part")
        let old = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).old")
        var isFolder: ObjCBool = false
        let exists = manager.fileExists(atPath: path, isDirectory: &isFolder)
        if exists {
            let names = (try? manager.contentsOfDirectory(atPath: path)) ?? []
            guard isFolder.boolValue, names.allSatisfy(owned) else {
                throw DataError(file: path, problem: "holds other files than a report: choose a new folder")
            }
        }
        try? manager.removeItem(at: tmp)
        do {
            try manager.createDirectory(at: tmp, withIntermediateDirectories: false)
            for file in files { try file.data.write(to: tmp.appendingPathComponent(file.name)) }
            if exists {
                if let mode = (try? manager.attributesOfItem(atPath: path))?[.posixPermissions] {
                    try? manager.setAttributes([.posixPermissions: mode], ofItemAtPath: tmp.path)
                }
                guard rename(path, old.path) == 0 else {
                    throw DataError(file: path, problem: "cannot be replaced: \(String(cString: strerror(errno)))")
                }
            }
            guard rename(tmp.path, path) == 0 else {
                let reason = String(cString: strerror(errno))
                if exists { rename(old.path, path) }
                throw DataError(file: path, problem: "cannot rename into place: \(reason)")
            }
            if exists { try? manager.removeItem(at: old) }
        } catch let error as DataError {
            try? manager.removeItem(at: tmp)
            throw error
        } catch {
            try? manager.removeItem(at: tmp)
            throw DataError(file: path, problem: "cannot be written: \(error.localizedDescription)")
        }
    }

    /// Waits for a write in progress and stops any later one. Call it only on the way out.
    public static func abandon() { lock.lock() }
}

/// Why an existing file with status `s` must not be replaced, or nil: only a regular file with
/// write permission is.
private func replaceProblem(_ s: stat) -> String? {
    switch s.st_mode & S_IFMT {
    case S_IFREG: return s.st_mode & 0o222 == 0 ? "is read-only (chmod u+w lets Precis change it)" : nil
    case S_IFDIR: return "is a folder, not a file"
    default: return "is not a regular file (a device, a FIFO or a socket): Precis writes only regular files"
    }
}

/// `path` with a symbolic link followed to the file it points to (which need not exist yet);
/// `path` itself when it is no link.
func resolvedPath(_ path: String) -> String {
    var s = stat()
    guard lstat(path, &s) == 0, s.st_mode & S_IFMT == S_IFLNK else { return path }
    if let real = realpath(path, nil) {
        defer { free(real) }
        return String(cString: real)
    }
    // A link to a file that does not exist yet: its target, relative to the link's folder.
    guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) else { return path }
    return target.hasPrefix("/")
        ? target : URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(target).path
}

/// An exclusive advisory lock on the folder that holds `path`, held while `body` runs, so that
/// writers of the same weight file take turns (each one then changes the file as the one before left
/// it). Readers take no lock: they see the file before or after a change, never during one, because
/// changes are renames. The lock leaves nothing behind in the folder.
func withWriteLock<R>(_ path: String, _ body: () throws -> R) throws -> R {
    let folder = URL(fileURLWithPath: resolvedPath(path)).deletingLastPathComponent().path
    let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else {
        throw HDF5Error(file: path, path: "", message: "cannot open its folder (\(String(cString: strerror(errno))))")
    }
    defer { close(fd) }
    while flock(fd, LOCK_EX) != 0 {
        guard errno == EINTR else {
            throw HDF5Error(
                file: path, path: "", message: "cannot lock its folder (\(String(cString: strerror(errno))))")
        }
    }
    defer { flock(fd, LOCK_UN) }
    return try body()
}

/// Whether a file can be written at `path` as a new output (`precis train --output`, `export
/// --onnx`, ...): the name is not empty, its folder exists and is writable, and it is either a new
/// name or, with `force`, a regular file that may be replaced (through a symbolic link: the file it
/// points to). Returns the problem, or nil.
public func outputProblem(_ path: String, force: Bool) -> String? {
    guard !path.isEmpty else { return "is an empty name" }
    let target = resolvedPath(path)
    var s = stat()
    if stat(target, &s) == 0 {
        if let problem = replaceProblem(s) { return problem }
        if !force { return "exists" }
    }
    return folderProblem(target)
}

/// Whether the file at `path` can be changed in place (`precis quantize`, `export`, `eval
/// --record`, `upgrade`): it exists, is a regular file (a link's target counts) and not read-only,
/// and its folder is writable. Returns the problem, or nil.
public func editProblem(_ path: String) -> String? {
    let target = resolvedPath(path)
    var s = stat()
    guard stat(target, &s) == 0 else { return "no such file" }
    if let problem = replaceProblem(s) { return problem }
    guard access(target, R_OK) == 0 else { return "is not readable" }
    return folderProblem(target)
}

/// Whether a folder of files (`precis report --output`) can be written at `path`: its parent
/// folder exists and is writable, and `path` is a new name or a folder (which `force` lets the
/// report replace). Returns the problem, or nil.
public func folderOutputProblem(_ path: String, force: Bool) -> String? {
    guard !path.isEmpty else { return "is an empty name" }
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
        guard isFolder.boolValue else { return "is a file, not a folder" }
        if !force { return "exists" }
    }
    return folderProblem(path)
}

/// Whether the folder that would hold `path` exists and is writable, or the problem.
private func folderProblem(_ path: String) -> String? {
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) else {
        return "its folder \(folder) does not exist"
    }
    guard isFolder.boolValue else { return "\(folder) is not a folder" }
    guard access(folder, W_OK) == 0 else { return "its folder \(folder) is not writable" }
    return nil
}

/// Whether `a` and `b` name the same file: the same absolute path once links are followed.
public func samePath(_ a: String, _ b: String) -> Bool {
    func absolute(_ p: String) -> String { URL(fileURLWithPath: resolvedPath(p)).standardizedFileURL.path }
    return absolute(a) == absolute(b)
}
