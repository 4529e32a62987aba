import Foundation
import Testing

@testable import PrecisCore

/// IDX and CSV readers on files written here: good ones parse, bad ones throw one clear error.
@Suite struct DataTests {
    func idx(rank: Int, dims: [Int], payload: Int? = nil, magic: [UInt8]? = nil) -> Data {
        var d = Data(magic ?? [0, 0, 8, UInt8(rank)])
        for v in dims { d += [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        d += Data((0..<(payload ?? dims.reduce(1, *))).map { UInt8($0 % 10) })
        return d
    }

    func gzip(_ data: Data, at path: String) throws {
        try data.write(to: URL(fileURLWithPath: path))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-f", path]
        try p.run()
        p.waitUntilExit()
    }

    @Test func parsesImagesAndLabels() throws {
        let images = try IDXArray(data: idx(rank: 3, dims: [2, 3, 4]), file: "x", rank: 3)
        #expect(images.dims == [2, 3, 4])
        #expect(images.bytes.count == 24)
        #expect(try IDXArray(data: idx(rank: 1, dims: [5]), file: "y", rank: 1).bytes == [0, 1, 2, 3, 4])
    }

    @Test func wrongMagic() {
        #expect(throws: DataError(file: "f", problem: "not an IDX file (magic 89504e47)")) {
            try IDXArray(data: idx(rank: 3, dims: [1, 1, 1], magic: [0x89, 0x50, 0x4e, 0x47]), file: "f", rank: 3)
        }
        #expect(throws: DataError(file: "f", problem: "IDX element type 0x0d, expected 0x08 (unsigned byte)")) {
            try IDXArray(data: idx(rank: 3, dims: [1, 1, 1], magic: [0, 0, 0x0d, 3]), file: "f", rank: 3)
        }
        #expect(throws: DataError(file: "f", problem: "IDX rank 1, expected 3")) {
            try IDXArray(data: idx(rank: 1, dims: [4]), file: "f", rank: 3)
        }
    }

    @Test func truncated() {
        #expect(throws: DataError(file: "f", problem: "truncated: dims (2,3,4) need 24 bytes of data, found 20")) {
            try IDXArray(data: idx(rank: 3, dims: [2, 3, 4], payload: 20), file: "f", rank: 3)
        }
        #expect(throws: DataError(file: "f", problem: "truncated IDX header (9 bytes)")) {
            try IDXArray(data: idx(rank: 3, dims: [2, 3, 4]).prefix(9), file: "f", rank: 3)
        }
    }

    /// Writes an MNIST-format directory with `trainLabels` labels for 3 training images.
    func directory(trainLabels: Int, gzipped: Bool) throws -> String {
        let dir = try scratchDirectory()
        let files = [
            ("train-images-idx3-ubyte", idx(rank: 3, dims: [3, 2, 2])),
            ("train-labels-idx1-ubyte", idx(rank: 1, dims: [trainLabels])),
            ("t10k-images-idx3-ubyte", idx(rank: 3, dims: [2, 2, 2])),
            ("t10k-labels-idx1-ubyte", idx(rank: 1, dims: [2])),
        ]
        for (name, data) in files {
            if gzipped {
                try gzip(data, at: "\(dir)/\(name)")
            } else {
                try data.write(to: URL(fileURLWithPath: "\(dir)/\(name)"))
            }
        }
        return dir
    }

    @Test(arguments: [false, true])
    func readsAnMNISTDirectory(gzipped: Bool) throws {
        let dir = try directory(trainLabels: 3, gzipped: gzipped)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try Dataset.mnistDirectory(dir)
        #expect(d.imageShape == [1, 2, 2])
        #expect(d.trainCount == 3 && d.testCount == 2)
        #expect(d.trainImages[1] == Float(1) / 255)
        #expect(d.trainLabels == [0, 1, 2])
    }

    @Test func labelCountMismatch() throws {
        let dir = try directory(trainLabels: 4, gzipped: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(
            throws: DataError(
                file: "\(dir)/train-labels-idx1-ubyte",
                problem: "4 labels for 3 images in \(dir)/train-images-idx3-ubyte")
        ) {
            try Dataset.mnistDirectory(dir)
        }
    }

    @Test func truncatedGzip() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/a"
        try gzip(idx(rank: 3, dims: [50, 28, 28]), at: path)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path + ".gz"))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path + ".gz"))
        #expect(throws: DataError(file: path + ".gz", problem: "truncated gzip data")) {
            try IDXArray(path: path + ".gz", rank: 3)
        }
    }

    @Test func missingDirectoryAndUnknownName() {
        #expect(throws: DataError.self) { try Dataset.mnistDirectory("/nonexistent/mnist") }
        #expect(throws: DataError.self) { try Dataset.load(named: "cifar") }
    }

    @Test func mnist5kIsStratified() throws {
        let d = try Dataset.load(named: "mnist5k")
        #expect(d.trainCount == 4000 && d.testCount == 1000)
        for c in 0..<10 {
            #expect(d.trainLabels.filter { $0 == c }.count == 400)
            #expect(d.testLabels.filter { $0 == c }.count == 100)
        }
        #expect(d.trainImages.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func mnist5kBadRows() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/m.csv"
        try Data("1,2,3\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: DataError(file: path, problem: "row 1 has 3 fields, expected 785")) {
            try Dataset.mnist5k(file: path)
        }
    }

    /// A version-1 `.npy` file: magic, version, header length, the header padded with spaces to a
    /// multiple of 16 bytes and ended by a newline, then `values`.
    func npy(_ header: String, _ values: [UInt8]) -> [UInt8] {
        var h = Array(header.utf8)
        while (10 + h.count + 1) % 16 != 0 { h.append(0x20) }
        h.append(0x0A)
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h + values
    }

    @Test func npyArraysAreReadInRowMajorOrder() throws {
        let floats: [Float] = [1, 4, 2, 5, 3, 6]  // a 2×3 array [[1, 2, 3], [4, 5, 6]] in column-major order
        let bytes = floats.flatMap { f in withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) } }
        let a = try NumpyArchive.parseNPY(
            npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", bytes), file: "f.npz", name: "W1")
        #expect(a.shape == [2, 3] && a.values == [1, 2, 3, 4, 5, 6] && a.dtype == "<f4")
        let scalar = try NumpyArchive.parseNPY(
            npy("{'descr': '|i1', 'fortran_order': False, 'shape': (), }", [0xFF]), file: "f.npz", name: "s")
        #expect(scalar.shape == [] && scalar.values == [-1])
    }

    @Test func npyRefusesObjectsBigEndianAndShortData() {
        let cases: [(String, [UInt8], String)] = [
            ("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", [], "an object array"),
            ("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0, 0, 0, 0, 0], "big-endian"),
            ("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", [0, 0, 0, 0, 0, 0, 0, 0], "holds 8 bytes"),
            ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0], "structured"),
        ]
        for (header, values, problem) in cases {
            #expect(throws: DataError.self, "\(problem)") {
                do { _ = try NumpyArchive.parseNPY(npy(header, values), file: "f.npz", name: "x") } catch let e
                    as DataError
                {
                    #expect(e.problem.contains(problem), "\(e.problem)")
                    throw e
                }
            }
        }
    }
}
