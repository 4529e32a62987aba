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

    /// CIFAR-10's binary layout, written record by record: a label byte, then the red, green and blue planes.
    @Test func readsACIFAR10Directory() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Record r: pixel i of plane p holds 50p + r.
        func records(_ labels: [UInt8]) -> Data {
            var bytes: [UInt8] = []
            for (r, label) in labels.enumerated() {
                bytes.append(label)
                for i in 0..<3072 { bytes.append(UInt8(i / 1024 * 50 + r)) }
            }
            return Data(bytes)
        }
        try records([3, 9]).write(to: URL(fileURLWithPath: "\(dir)/data_batch_1.bin"))
        try records([7]).write(to: URL(fileURLWithPath: "\(dir)/data_batch_2.bin"))
        try records([0]).write(to: URL(fileURLWithPath: "\(dir)/test_batch.bin"))
        let d = try Dataset.load(path: dir)
        #expect(d.imageShape == [3, 32, 32] && d.trainLabels == [3, 9, 7] && d.testLabels == [0])
        // Image 1 of training: red plane 1/255, green 51/255, blue 101/255.
        let pixels: [Float] = [0, 1024, 2048].map { d.trainImages[3072 + $0] }
        #expect(pixels == [Float(1) / 255, Float(51) / 255, Float(101) / 255])
        try records([3, 10]).write(to: URL(fileURLWithPath: "\(dir)/data_batch_1.bin"))
        #expect(throws: DataError(file: "\(dir)/data_batch_1.bin", problem: "record 1 has label 10, not 0 to 9")) {
            try Dataset.load(path: dir)
        }
        try records([3, 9]).write(to: URL(fileURLWithPath: "\(dir)/data_batch_1.bin"))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: "\(dir)/test_batch.bin"))
        #expect(
            throws: DataError(
                file: "\(dir)/test_batch.bin", problem: "holds 3 bytes, not a whole number of 3073-byte records")
        ) { try Dataset.cifar10Directory(dir) }
    }

    /// An `.npz` of channels-last uint8 images with a train/test split, and one of float images in `(N, C, H, W)`.
    @Test func readsImagesFromNPZArrays() throws {
        // Two 2×2 images of 3 channels, channels last: pixel (y, x) of channel c holds 100c + 10y + x + image.
        let x = NumpyArray(
            shape: [2, 2, 2, 3],
            values: (0..<24).map { (i: Int) -> Double in
                let (c, x, y, image) = (i % 3, i / 3 % 2, i / 6 % 2, i / 12)
                return Double(100 * c + 10 * y + x + image)
            }, dtype: "|u1")
        let split = try Dataset.npz(
            [
                "x_train": x, "y_train": NumpyArray(shape: [2], values: [1, 4], dtype: "<i8"), "x_test": x,
                "y_test": NumpyArray(shape: [2], values: [0, 2], dtype: "<i8"),
            ], file: "d.npz")
        #expect(split.imageShape == [3, 2, 2] && split.trainLabels == [1, 4] && split.classes == 5)
        // Image 1, channel 2, pixel (1, 0): 200 + 10 + 0 + 1.
        #expect(split.trainImages[12 + 2 * 4 + 2] == Float(211.0 / 255))
        let planar = NumpyArray(shape: [1, 2, 3, 5], values: (0..<30).map { Double($0) / 4 }, dtype: "<f4")
        let test = try Dataset.npz(
            ["x": planar, "y": NumpyArray(shape: [1], values: [1], dtype: "<i8")], file: "t.npz")
        #expect(
            test.imageShape == [2, 3, 5] && test.trainCount == 0 && test.testImages == planar.values.map(Float.init))
        #expect(throws: DataError(file: "t.npz", problem: "y must hold 1 whole-number labels from 0")) {
            try Dataset.npz(["x": planar, "y": NumpyArray(shape: [1], values: [0.5], dtype: "<f8")], file: "t.npz")
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
