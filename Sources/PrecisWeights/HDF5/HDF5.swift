import CHDF5
import Foundation

/// A failed HDF5 operation: the file, the object path inside it, and what went wrong (including
/// libhdf5's own message, which the library is kept from printing).
public struct HDF5Error: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var path: String
    public var message: String

    public var description: String { path.isEmpty ? "\(file): \(message)" : "\(file): \(path) \(message)" }
}

/// The element types Precis stores. `float16` is IEEE half in h5py's layout (a 16-bit float type
/// derived from float32), which h5dump prints and h5py reads as numpy float16. `bfloat16` is its own
/// 16-bit float type (sign 15, exponent 7..14 with bias 127, mantissa 0..6): h5dump prints its
/// values, and h5py reads it as numpy float32 (exactly: numpy has no bfloat16).
public enum HDF5ElementType: String, Sendable, CaseIterable {
    case float64, float32, float16, bfloat16, int8, uint8, int32, int64

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16: return 2
        case .int8, .uint8: return 1
        }
    }

    /// A new HDF5 datatype handle for this element type (little-endian), closed by the caller.
    func makeType() -> hid_t {
        switch self {
        case .float64: return H5Tcopy(precis_H5T_IEEE_F64LE())
        case .float32: return H5Tcopy(precis_H5T_IEEE_F32LE())
        case .float16: return float16Layout(exponentBits: 5, mantissaBits: 10, bias: 15)
        case .bfloat16: return float16Layout(exponentBits: 8, mantissaBits: 7, bias: 127)
        case .int8: return H5Tcopy(precis_H5T_STD_I8LE())
        case .uint8: return H5Tcopy(precis_H5T_STD_U8LE())
        case .int32: return H5Tcopy(precis_H5T_STD_I32LE())
        case .int64: return H5Tcopy(precis_H5T_STD_I64LE())
        }
    }

    /// A 16-bit float type derived from float32: sign at bit 15, then exponent, then mantissa.
    private func float16Layout(exponentBits: Int, mantissaBits: Int, bias: Int) -> hid_t {
        let t = H5Tcopy(precis_H5T_IEEE_F32LE())
        H5Tset_fields(t, 15, mantissaBits, exponentBits, 0, mantissaBits)
        H5Tset_size(t, 2)
        H5Tset_ebias(t, bias)
        return t
    }

    /// The element type of an HDF5 datatype, or nil for anything else (strings, other float layouts).
    init?(type t: hid_t) {
        let size = H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_FLOAT:
            switch size {
            case 8: self = .float64
            case 4: self = .float32
            case 2:
                var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
                H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize)
                switch (spos, epos, esize, mpos, msize, H5Tget_ebias(t)) {
                case (15, 10, 5, 0, 10, 15): self = .float16
                case (15, 7, 8, 0, 7, 127): self = .bfloat16
                default: return nil
                }
            default: return nil
            }
        case H5T_INTEGER:
            let signed = H5Tget_sign(t) == H5T_SGN_2
            switch (size, signed) {
            case (1, true): self = .int8
            case (1, false): self = .uint8
            case (4, true): self = .int32
            case (8, true): self = .int64
            default: return nil
            }
        default: return nil
        }
    }
}

/// A Swift type whose values are stored as one `HDF5ElementType`, bit for bit.
public protocol HDF5Scalar {
    static var hdf5Type: HDF5ElementType { get }
}

extension Double: HDF5Scalar { public static var hdf5Type: HDF5ElementType { .float64 } }
extension Float: HDF5Scalar { public static var hdf5Type: HDF5ElementType { .float32 } }
extension Float16: HDF5Scalar { public static var hdf5Type: HDF5ElementType { .float16 } }
extension BFloat16: HDF5Scalar { public static var hdf5Type: HDF5ElementType { .bfloat16 } }
extension Int8: HDF5Scalar { public static var hdf5Type: HDF5ElementType { .int8 } }
extension UInt8: HDF5Scalar { public static var hdf5Type: HDF5ElementType { .uint8 } }
extension Int32: HDF5Scalar { public static var hdf5Type: HDF5ElementType { .int32 } }
extension Int64: HDF5Scalar { public static var hdf5Type: HDF5ElementType { .int64 } }

/// An attribute value: a string, or integers or floats (scalar or 1-D).
public enum HDF5Attribute: Equatable, Sendable {
    case string(String)
    case int(Int)
    case double(Double)
    case ints([Int])
    case doubles([Double])
}

/// The shape and element type of a stored dataset.
public struct HDF5DatasetInfo: Equatable, Sendable {
    public var shape: [Int]
    /// nil when the dataset holds a type Precis does not use.
    public var type: HDF5ElementType?
    /// The type as h5dump would name its class, for error messages.
    public var typeName: String
    /// Whether every chunk carries a Fletcher32 checksum that reading verifies.
    public var checksummed = false
}

/// Calls into libhdf5 with its automatic error printing off, turning a negative status into an
/// `HDF5Error` carrying the library's innermost message.
enum HDF5 {
    /// Turns off libhdf5's error printing; a thread-safe libhdf5 keeps that setting per thread.
    static func silence() {
        _ = prepared
        H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
    }

    /// Done once, before any other call into libhdf5: no clean-up at process exit. Precis closes
    /// every file it opens; after a write failed (a full disk), libhdf5's own clean-up at exit
    /// tried to close the broken file again and crashed.
    private static let prepared: Void = { _ = H5dont_atexit() }()

    /// Runs `body`; a negative result throws with `what` and libhdf5's message.
    @discardableResult
    static func check<R: BinaryInteger>(_ file: String, _ path: String, _ what: String, _ body: () -> R) throws -> R {
        silence()
        let r = body()
        if r < 0 { throw HDF5Error(file: file, path: path, message: "\(what) failed\(libraryMessage())") }
        return r
    }

    /// The messages on libhdf5's error stack (outermost first), then clears it.
    static func libraryMessage() -> String {
        final class Messages { var list: [String] = [] }
        let box = Messages()
        let walker: H5E_walk2_t = { _, err, data in
            if let err, let desc = err.pointee.desc, let data {
                Unmanaged<Messages>.fromOpaque(data).takeUnretainedValue().list.append(String(cString: desc))
            }
            return 0
        }
        H5Ewalk2(hid_t(H5E_DEFAULT), H5E_WALK_UPWARD, walker, Unmanaged.passUnretained(box).toOpaque())
        H5Eclear2(hid_t(H5E_DEFAULT))
        let unique = box.list.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        return unique.isEmpty ? "" : ": " + unique.joined(separator: "; ")
    }
}

/// An open HDF5 identifier closed when the last reference goes away.
final class HDF5Handle {
    let id: hid_t
    private let close: (hid_t) -> herr_t

    init(_ id: hid_t, close: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.close = close
    }

    deinit { _ = close(id) }
}

/// An HDF5 file. Groups opened from it keep it open.
public final class HDF5File {
    /// The file's path on disk, used in every error.
    public let path: String
    let handle: HDF5Handle

    private init(path: String, id: hid_t) {
        self.path = path
        handle = HDF5Handle(id, close: H5Fclose)
    }

    /// Creates a new file; fails if one exists at `path`, unless `truncating`, which empties it.
    public static func create(_ path: String, truncating: Bool = false) throws -> HDF5File {
        let access = try unlockedAccess(path, writing: true)
        let flags = truncating ? precis_H5F_ACC_TRUNC() : precis_H5F_ACC_EXCL()
        let id = try HDF5.check(path, "", "creating the file") {
            H5Fcreate(path, flags, hid_t(H5P_DEFAULT), access.id)
        }
        return HDF5File(path: path, id: id)
    }

    private nonisolated(unsafe) static var opens: [String: Int] = [:]
    private static let opensLock = NSLock()

    /// How many times `open` has opened `path` in this process (for checks that a command opens its
    /// weight file once).
    public static func openCount(_ path: String) -> Int { opensLock.withLock { opens[path, default: 0] } }

    /// Opens an existing file, read-only unless `writable`.
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        opensLock.withLock { opens[path, default: 0] += 1 }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw HDF5Error(file: path, path: "", message: "no such file")
        }
        guard !isFolder.boolValue else { throw HDF5Error(file: path, path: "", message: "is a folder, not a file") }
        guard Foundation.access(path, writable ? R_OK | W_OK : R_OK) == 0 else {
            throw HDF5Error(
                file: path, path: "", message: "cannot be opened: \(String(cString: strerror(errno)).lowercased())")
        }
        let access = try unlockedAccess(path, writing: writable)
        HDF5.silence()
        let id = H5Fopen(path, writable ? precis_H5F_ACC_RDWR() : precis_H5F_ACC_RDONLY(), access.id)
        guard id >= 0 else {
            // Only a failed open looks at the signature, so a good file is opened once.
            let message = HDF5.libraryMessage()
            guard H5Fis_hdf5(path) > 0 else {
                _ = HDF5.libraryMessage()
                throw HDF5Error(file: path, path: "", message: "not an HDF5 file")
            }
            throw HDF5Error(file: path, path: "", message: "opening the file failed\(message)")
        }
        return HDF5File(path: path, id: id)
    }

    /// File access without libhdf5's flock-based file locking. Precis never writes a file in place
    /// (it builds a new file and renames it), and an inherited descriptor in a child process (a
    /// spawned h5dump, say) would otherwise keep a lock alive and make later opens fail. For writing,
    /// objects use the 1.10 formats, whose metadata carries checksums, chunk indexes included: a
    /// corrupted header or index is then reported as an error instead of being parsed (libhdf5 can
    /// crash on corrupt old-format metadata, and a damaged version-1 chunk index silently turned a
    /// chunk into fill values).
    private static func unlockedAccess(_ path: String, writing: Bool) throws -> HDF5Handle {
        let fapl = HDF5Handle(
            try HDF5.check(path, "", "creating file access properties") { H5Pcreate(precis_H5P_FILE_ACCESS()) },
            close: H5Pclose)
        try HDF5.check(path, "", "disabling file locking") { H5Pset_file_locking(fapl.id, false, true) }
        if writing {
            try HDF5.check(path, "", "choosing the file format") {
                H5Pset_libver_bounds(fapl.id, H5F_LIBVER_V110, H5F_LIBVER_V110)
            }
        }
        return fapl
    }

    /// Writes everything buffered to disk; throws when the disk refuses (full, gone), so that an
    /// incomplete file is never taken for a complete one.
    public func flush() throws {
        HDF5.silence()
        guard H5Fflush(handle.id, H5F_SCOPE_GLOBAL) >= 0 else {
            let message = HDF5.libraryMessage()
            let reason =
                message.contains("No space left")
                ? "the disk is full"
                : message.contains("Read-only") ? "the file system is read-only" : "the disk refused the data"
            throw HDF5Error(file: path, path: "", message: "could not be written completely: \(reason)")
        }
    }

    /// The superblock version: 3 for files written with the 1.10 formats, whose chunk indexes carry
    /// checksums; 0 to 2 for older ones.
    public func superblockVersion() throws -> Int {
        var info = H5F_info2_t()
        try HDF5.check(path, "", "reading the file information") { H5Fget_info2(handle.id, &info) }
        return Int(info.super.version)
    }

    /// The root group `/`.
    public var root: HDF5Group { HDF5Group(file: self, handle: handle, path: "/") }
}

/// A group (or the root) inside an HDF5 file, addressed by its absolute path.
public struct HDF5Group {
    public let file: HDF5File
    let handle: HDF5Handle
    /// The absolute path, `/` for the root.
    public let path: String

    init(file: HDF5File, handle: HDF5Handle, path: String) {
        (self.file, self.handle, self.path) = (file, handle, path)
    }

    func child(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    @discardableResult
    private func check<R: BinaryInteger>(_ name: String?, _ what: String, _ body: () -> R) throws -> R {
        try HDF5.check(file.path, name.map(child) ?? path, what, body)
    }

    /// Creates the subgroup `name` (one path component).
    public func createGroup(_ name: String) throws -> HDF5Group {
        let id = try check(name, "creating the group") {
            H5Gcreate2(handle.id, name, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        }
        return HDF5Group(file: file, handle: HDF5Handle(id, close: H5Gclose), path: child(name))
    }

    /// Opens the subgroup at relative path `name`; a missing one throws `missing group`.
    public func group(_ name: String) throws -> HDF5Group {
        guard contains(name) else { throw HDF5Error(file: file.path, path: child(name), message: "missing group") }
        let id = try check(name, "opening the group") { H5Gopen2(handle.id, name, hid_t(H5P_DEFAULT)) }
        return HDF5Group(file: file, handle: HDF5Handle(id, close: H5Gclose), path: child(name))
    }

    /// Opens the subgroup `name`, creating it when missing.
    public func groupCreatingIfNeeded(_ name: String) throws -> HDF5Group {
        contains(name) ? try group(name) : try createGroup(name)
    }

    /// Whether a link exists at relative path `name` (every component is checked).
    public func contains(_ name: String) -> Bool {
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            guard (try? check(prefix, "looking up") { H5Lexists(handle.id, prefix, hid_t(H5P_DEFAULT)) }) ?? 0 > 0
            else { return false }
        }
        return !prefix.isEmpty
    }

    /// The names of the links in this group, in name order.
    /// Whether the child `name` is a dataset (and not a group).
    public func isDataset(_ name: String) throws -> Bool {
        var info = H5O_info_t()
        try check(name, "reading the object kind") {
            H5Oget_info_by_name2(handle.id, name, &info, 1, hid_t(H5P_DEFAULT))
        }
        return info.type == H5O_TYPE_DATASET
    }

    /// The paths (relative to this group) of every dataset below it.
    public func datasetPaths() throws -> [String] {
        try children().flatMap { name in
            try isDataset(name) ? [name] : try group(name).datasetPaths().map { name + "/" + $0 }
        }
    }

    public func children() throws -> [String] {
        var info = H5G_info_t()
        try check(nil, "listing") { H5Gget_info(handle.id, &info) }
        return try (0..<info.nlinks).map { i in
            let n = try check(nil, "reading a link name") {
                H5Lget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
            }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            try check(nil, "reading a link name") {
                H5Lget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, hid_t(H5P_DEFAULT))
            }
            return String(cString: buf)
        }
    }

    /// Deletes the link `name` (the space is reclaimed only when the file is rewritten).
    public func remove(_ name: String) throws {
        try check(name, "deleting") { H5Ldelete(handle.id, name, hid_t(H5P_DEFAULT)) }
    }

    // MARK: datasets

    /// Writes a new dataset of `shape` holding `values` (row-major), stored as `E.hdf5Type`.
    public func write<E: HDF5Scalar>(_ name: String, shape: [Int], _ values: [E]) throws {
        try write(name, shape: shape, values, checksum: true)
    }

    /// `write`, with or without the checksum (files written before Precis checksummed had none).
    func write<E: HDF5Scalar>(_ name: String, shape: [Int], _ values: [E], checksum: Bool) throws {
        precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
        let type = HDF5Handle(E.hdf5Type.makeType(), close: H5Tclose)
        let space = try makeSpace(shape, name)
        let dcpl =
            checksum
            ? try checksummedLayout(shape, elementSize: E.hdf5Type.size, name)
            : HDF5Handle(
                try check(name, "creating dataset properties") { H5Pcreate(precis_H5P_DATASET_CREATE()) },
                close: H5Pclose)
        let id = try check(name, "creating the dataset") {
            H5Dcreate2(handle.id, name, type.id, space.id, hid_t(H5P_DEFAULT), dcpl.id, hid_t(H5P_DEFAULT))
        }
        let dataset = HDF5Handle(id, close: H5Dclose)
        try values.withUnsafeBytes { raw in
            _ = try check(name, "writing the dataset") {
                H5Dwrite(dataset.id, type.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), raw.baseAddress)
            }
        }
    }

    /// Dataset creation properties that store `shape` in chunks with a Fletcher32 checksum each,
    /// so that a changed byte in the data is an error on read (h5py and h5dump check it too). A
    /// chunk holds at most about 1 MiB (whole rows of the first axis). Scalars and empty datasets
    /// cannot be chunked and keep the default layout.
    private func checksummedLayout(_ shape: [Int], elementSize: Int, _ name: String) throws -> HDF5Handle {
        let dcpl = HDF5Handle(
            try check(name, "creating dataset properties") { H5Pcreate(precis_H5P_DATASET_CREATE()) }, close: H5Pclose)
        guard !shape.isEmpty, !shape.contains(0) else { return dcpl }
        let row = shape.dropFirst().reduce(elementSize, *)
        var chunk = shape.map { hsize_t($0) }
        chunk[0] = hsize_t(max(1, min(shape[0], (1 << 20) / max(row, 1))))
        try check(name, "choosing the chunk layout") { H5Pset_chunk(dcpl.id, Int32(chunk.count), chunk) }
        try check(name, "adding the Fletcher32 checksum") { H5Pset_fletcher32(dcpl.id) }
        return dcpl
    }

    private func makeSpace(_ shape: [Int], _ name: String) throws -> HDF5Handle {
        let id: hid_t
        if shape.isEmpty {
            id = try check(name, "creating a dataspace") { H5Screate(H5S_SCALAR) }
        } else {
            let dims = shape.map { hsize_t($0) }
            id = try check(name, "creating a dataspace") { H5Screate_simple(Int32(dims.count), dims, nil) }
        }
        return HDF5Handle(id, close: H5Sclose)
    }

    private func openDataset(_ name: String) throws -> HDF5Handle {
        guard contains(name) else { throw HDF5Error(file: file.path, path: child(name), message: "missing dataset") }
        var info = H5O_info_t()
        try check(name, "inspecting") {
            H5Oget_info_by_name2(handle.id, name, &info, UInt32(H5O_INFO_BASIC), hid_t(H5P_DEFAULT))
        }
        guard info.type == H5O_TYPE_DATASET else {
            throw HDF5Error(file: file.path, path: child(name), message: "is not a dataset")
        }
        return HDF5Handle(
            try check(name, "opening the dataset") { H5Dopen2(handle.id, name, hid_t(H5P_DEFAULT)) }, close: H5Dclose)
    }

    /// The shape and element type of dataset `name`.
    public func datasetInfo(_ name: String) throws -> HDF5DatasetInfo {
        let dataset = try openDataset(name)
        return try info(of: dataset, name)
    }

    private func info(of dataset: HDF5Handle, _ name: String) throws -> HDF5DatasetInfo {
        let space = HDF5Handle(try check(name, "reading the dataspace") { H5Dget_space(dataset.id) }, close: H5Sclose)
        let rank = try check(name, "reading the rank") { H5Sget_simple_extent_ndims(space.id) }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        try check(name, "reading the shape") { H5Sget_simple_extent_dims(space.id, &dims, nil) }
        let type = HDF5Handle(try check(name, "reading the type") { H5Dget_type(dataset.id) }, close: H5Tclose)
        let element = HDF5ElementType(type: type.id)
        let typeName = element?.rawValue ?? describe(type.id)
        let dcpl = HDF5Handle(
            try check(name, "reading the layout") { H5Dget_create_plist(dataset.id) }, close: H5Pclose)
        let filters = try check(name, "reading the filters") { H5Pget_nfilters(dcpl.id) }
        let checksummed = (0..<UInt32(filters)).contains { i in
            var flags: UInt32 = 0, count = 0, config: UInt32 = 0
            var label = [CChar](repeating: 0, count: 16)
            return H5Pget_filter2(dcpl.id, i, &flags, &count, nil, label.count, &label, &config)
                == precis_H5Z_FILTER_FLETCHER32()
        }
        return HDF5DatasetInfo(shape: dims.map { Int($0) }, type: element, typeName: typeName, checksummed: checksummed)
    }

    private func describe(_ t: hid_t) -> String {
        let bits = 8 * H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_FLOAT: return "\(bits)-bit float of another layout"
        case H5T_INTEGER: return (H5Tget_sign(t) == H5T_SGN_2 ? "int" : "uint") + "\(bits)"
        case H5T_STRING: return "string"
        case H5T_COMPOUND: return "compound"
        default: return "an unsupported type"
        }
    }

    /// The bytes of dataset `name` as stored, in its own element type.
    public func storedBytes(_ name: String) throws -> [UInt8] {
        let dataset = try openDataset(name)
        let count = try info(of: dataset, name).shape.reduce(1, *)
        let type = HDF5Handle(try check(name, "reading the type") { H5Dget_type(dataset.id) }, close: H5Tclose)
        var bytes = [UInt8](repeating: 0, count: H5Tget_size(type.id) * count)
        guard !bytes.isEmpty else { return [] }
        HDF5.silence()
        let status = bytes.withUnsafeMutableBytes {
            H5Dread(dataset.id, type.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), $0.baseAddress!)
        }
        guard status >= 0 else {
            throw HDF5Error(
                file: file.path, path: child(name), message: "reading the dataset failed\(HDF5.libraryMessage())")
        }
        return bytes
    }

    /// The values of dataset `name`, which must be stored exactly as `E.hdf5Type`, with its shape.
    public func read<E: HDF5Scalar>(_ name: String, as: E.Type = E.self) throws -> (shape: [Int], values: [E]) {
        let dataset = try openDataset(name)
        let info = try info(of: dataset, name)
        guard info.type == E.hdf5Type else {
            throw HDF5Error(
                file: file.path, path: child(name),
                message: "has element type \(info.typeName), expected \(E.hdf5Type.rawValue)")
        }
        let count = info.shape.reduce(1, *)
        let type = HDF5Handle(E.hdf5Type.makeType(), close: H5Tclose)
        var values = [E]()
        if count > 0 {
            values = try [E](unsafeUninitializedCapacity: count) { buf, n in
                HDF5.silence()
                let status = H5Dread(
                    dataset.id, type.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT),
                    UnsafeMutableRawPointer(buf.baseAddress!))
                guard status >= 0 else {
                    let message = HDF5.libraryMessage()
                    if message.contains("Fletcher32") {
                        throw HDF5Error(
                            file: file.path, path: child(name),
                            message: "is damaged: its data does not match its Fletcher32 checksum")
                    }
                    throw HDF5Error(file: file.path, path: child(name), message: "reading the dataset failed\(message)")
                }
                n = count
            }
        }
        return (info.shape, values)
    }

    // MARK: attributes

    /// Sets attribute `name` on this group (replacing an existing one).
    public func setAttribute(_ name: String, _ value: HDF5Attribute) throws {
        if try check(nil, "looking up attribute \(name)", { H5Aexists(handle.id, name) }) > 0 {
            try check(nil, "replacing attribute \(name)") { H5Adelete(handle.id, name) }
        }
        let what = "writing attribute \(name)"
        func create(_ type: hid_t, _ shape: [Int]) throws -> HDF5Handle {
            let space = try makeSpace(shape, name)
            return HDF5Handle(
                try check(nil, what) {
                    H5Acreate2(handle.id, name, type, space.id, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
                }, close: H5Aclose)
        }
        switch value {
        case .string(let s):
            let bytes = Array(s.utf8)
            let type = HDF5Handle(fixedStringType(size: max(bytes.count, 1)), close: H5Tclose)
            let attr = try create(type.id, [])
            let padded = bytes.isEmpty ? [0] : bytes
            _ = try check(nil, what) { H5Awrite(attr.id, type.id, padded) }
        case .int(let v):
            try writeNumbers(create, [Int64(v)], shape: [], precis_H5T_STD_I64LE(), precis_H5T_NATIVE_INT64(), what)
        case .ints(let v):
            try writeNumbers(
                create, v.map(Int64.init), shape: [v.count], precis_H5T_STD_I64LE(), precis_H5T_NATIVE_INT64(), what)
        case .double(let v):
            try writeNumbers(create, [v], shape: [], precis_H5T_IEEE_F64LE(), precis_H5T_NATIVE_DOUBLE(), what)
        case .doubles(let v):
            try writeNumbers(create, v, shape: [v.count], precis_H5T_IEEE_F64LE(), precis_H5T_NATIVE_DOUBLE(), what)
        }
    }

    private func writeNumbers<N>(
        _ create: (hid_t, [Int]) throws -> HDF5Handle, _ values: [N], shape: [Int], _ fileType: hid_t,
        _ memType: hid_t, _ what: String
    ) throws {
        let attr = try create(fileType, shape)
        try values.withUnsafeBytes { raw in _ = try check(nil, what) { H5Awrite(attr.id, memType, raw.baseAddress) } }
    }

    /// Fixed-length, null-padded UTF-8 strings. They live inside the (checksummed) object header;
    /// variable-length strings live in HDF5's global heap, which has no checksum, and libhdf5 crashed
    /// reading a corrupted one. h5py reads these as bytes (`.decode()` gives the text).
    private func fixedStringType(size: Int) -> hid_t {
        let t = H5Tcopy(precis_H5T_C_S1())
        H5Tset_size(t, size)
        H5Tset_strpad(t, H5T_STR_NULLPAD)
        H5Tset_cset(t, H5T_CSET_UTF8)
        return t
    }

    /// Variable-length strings in character set `cset`, for reading attributes written that way by
    /// other tools (h5py writes ASCII or UTF-8; libhdf5 converts between neither).
    private func variableStringType(cset: H5T_cset_t) -> hid_t {
        let t = H5Tcopy(precis_H5T_C_S1())
        H5Tset_size(t, precis_H5T_VARIABLE())
        H5Tset_cset(t, cset)
        return t
    }

    /// The names of this group's attributes.
    public func attributeNames() throws -> [String] {
        var info = H5O_info_t()
        try check(nil, "inspecting") { H5Oget_info2(handle.id, &info, UInt32(H5O_INFO_NUM_ATTRS)) }
        return try (0..<info.num_attrs).map { i in
            let n = try check(nil, "reading an attribute name") {
                H5Aget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
            }
            var buf = [CChar](repeating: 0, count: n + 1)
            try check(nil, "reading an attribute name") {
                H5Aget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, hid_t(H5P_DEFAULT))
            }
            return String(cString: buf)
        }
    }

    /// Attribute `name`, or nil when the group has none by that name.
    public func attribute(_ name: String) throws -> HDF5Attribute? {
        guard try check(nil, "looking up attribute \(name)", { H5Aexists(handle.id, name) }) > 0 else { return nil }
        let what = "reading attribute \(name)"
        let attr = HDF5Handle(try check(nil, what) { H5Aopen(handle.id, name, hid_t(H5P_DEFAULT)) }, close: H5Aclose)
        let type = HDF5Handle(try check(nil, what) { H5Aget_type(attr.id) }, close: H5Tclose)
        let space = HDF5Handle(try check(nil, what) { H5Aget_space(attr.id) }, close: H5Sclose)
        let count = Int(try check(nil, what) { H5Sget_simple_extent_npoints(space.id) })
        let scalar = try check(nil, what) { H5Sget_simple_extent_ndims(space.id) } == 0
        switch H5Tget_class(type.id) {
        case H5T_STRING:
            guard count == 1 else {
                throw HDF5Error(
                    file: file.path, path: path, message: "attribute \(name) holds \(count) strings, expected one")
            }
            if H5Tis_variable_str(type.id) > 0 {
                let mem = HDF5Handle(variableStringType(cset: H5Tget_cset(type.id)), close: H5Tclose)
                var p: UnsafeMutablePointer<CChar>?
                try check(nil, what) { H5Aread(attr.id, mem.id, &p) }
                defer { H5free_memory(p) }
                return .string(p.map { String(cString: $0) } ?? "")
            }
            let size = H5Tget_size(type.id)
            let mem = HDF5Handle(H5Tcopy(precis_H5T_C_S1()), close: H5Tclose)
            H5Tset_size(mem.id, size + 1)
            H5Tset_cset(mem.id, H5Tget_cset(type.id))
            var buf = [CChar](repeating: 0, count: size + 1)
            try check(nil, what) { H5Aread(attr.id, mem.id, &buf) }
            return .string(String(cString: buf))
        case H5T_INTEGER:
            var v = [Int64](repeating: 0, count: count)
            try check(nil, what) { H5Aread(attr.id, precis_H5T_NATIVE_INT64(), &v) }
            return scalar ? .int(Int(v[0])) : .ints(v.map(Int.init))
        case H5T_FLOAT:
            var v = [Double](repeating: 0, count: count)
            try check(nil, what) { H5Aread(attr.id, precis_H5T_NATIVE_DOUBLE(), &v) }
            return scalar ? .double(v[0]) : .doubles(v)
        default:
            throw HDF5Error(file: file.path, path: path, message: "attribute \(name) has an unsupported type")
        }
    }
}
