import Foundation

extension Dataset {
    /// The data set at `path`, by what it holds: an `.npz` of arrays, a directory in CIFAR-10's
    /// binary format (it holds `test_batch.bin`), or else a directory of MNIST-format files.
    public static func load(path: String) throws -> Dataset {
        if path.hasSuffix(".npz") { return try npz(path) }
        if FileManager.default.fileExists(atPath: "\(path)/test_batch.bin") { return try cifar10Directory(path) }
        return try mnistDirectory(path)
    }

    /// CIFAR-10's binary format in `dir`: `test_batch.bin` for testing and the `data_batch_K.bin`
    /// files present (K from 1 to 5, at least one) for training. Each record is a label byte (0–9)
    /// then 3·32·32 pixel bytes: the red plane, then green, then blue, each row by row.
    public static func cifar10Directory(_ dir: String) throws -> Dataset {
        let record = 1 + 3 * 32 * 32
        func read(_ file: String) throws -> (images: [Float], labels: [Int]) {
            let path = "\(dir)/\(file)"
            guard let data = FileManager.default.contents(atPath: path) else {
                throw DataError(file: path, problem: "cannot be read")
            }
            guard !data.isEmpty, data.count % record == 0 else {
                throw DataError(
                    file: path, problem: "holds \(data.count) bytes, not a whole number of \(record)-byte records")
            }
            let bytes = [UInt8](data), count = bytes.count / record
            var images = [Float](repeating: 0, count: count * (record - 1)), labels = [Int](repeating: 0, count: count)
            for r in 0..<count {
                guard bytes[r * record] < 10 else {
                    throw DataError(file: path, problem: "record \(r) has label \(bytes[r * record]), not 0 to 9")
                }
                labels[r] = Int(bytes[r * record])
                for i in 0..<(record - 1) { images[r * (record - 1) + i] = Float(bytes[r * record + 1 + i]) / 255 }
            }
            return (images, labels)
        }
        let batches = (1...5).map { "data_batch_\($0).bin" }.filter {
            FileManager.default.fileExists(atPath: "\(dir)/\($0)")
        }
        guard !batches.isEmpty else { throw DataError(file: dir, problem: "holds no data_batch_K.bin file") }
        let train = try batches.map(read), test = try read("test_batch.bin")
        return Dataset(
            name: dir, imageShape: [3, 32, 32], classes: 10, trainImages: train.flatMap(\.images),
            trainLabels: train.flatMap(\.labels), testImages: test.images, testLabels: test.labels)
    }

    /// Images and labels from a numpy `.npz`: `x` and `y` (test images only), or `x_train`,
    /// `y_train`, `x_test` and `y_test`. Images are `(N, C, H, W)`, or `(N, H, W, C)` when the last
    /// axis has 1, 3 or 4 values and the second does not; uint8 pixels are divided by 255, float
    /// pixels are taken as they are. Labels are whole numbers from 0.
    public static func npz(_ path: String) throws -> Dataset { try npz(NumpyArchive.read(path), file: path) }

    /// The data set of `npz` holding `arrays` (see `npz(_:)`); `file` names it.
    public static func npz(_ arrays: [String: NumpyArray], file path: String) throws -> Dataset {
        func fail(_ problem: String) -> DataError { DataError(file: path, problem: problem) }
        func images(_ name: String) throws -> (values: [Float], shape: [Int]) {
            guard let a = arrays[name] else { throw fail("has no array \(name)") }
            guard a.shape.count == 4, a.shape.allSatisfy({ $0 > 0 }) else {
                throw fail("\(name) has shape \(shapeText(a.shape)), not (N, C, H, W) or (N, H, W, C)")
            }
            let channels: Set<Int> = [1, 3, 4], last = channels.contains(a.shape[3]) && !channels.contains(a.shape[1])
            let (n, c, h, w) =
                last
                ? (a.shape[0], a.shape[3], a.shape[1], a.shape[2]) : (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
            if let bad = a.values.firstIndex(where: { !$0.isFinite }) {
                throw fail("\(name) holds a non-finite value (\(a.values[bad])) at element \(bad)")
            }
            let scale = a.dtype.contains("u1") ? 1.0 / 255 : 1
            let values = (0..<(n * c * h * w)).map { i -> Float in
                let (img, ch, y, x) = (i / (c * h * w), i / (h * w) % c, i / w % h, i % w)
                let at = last ? ((img * h + y) * w + x) * c + ch : i
                return Float(a.values[at] * scale)
            }
            return (values, [c, h, w])
        }
        func labels(_ name: String, count: Int) throws -> [Int] {
            guard let a = arrays[name] else { throw fail("has no array \(name)") }
            guard a.values.count == count, a.values.allSatisfy({ $0 >= 0 && $0 < 1_048_576 && $0.rounded() == $0 })
            else {
                throw fail("\(name) must hold \(count) whole-number labels from 0")
            }
            return a.values.map { Int($0) }
        }
        let split = arrays["x_test"] != nil
        let test = try images(split ? "x_test" : "x"),
            testLabels = try labels(split ? "y_test" : "y", count: test.values.count / test.shape.reduce(1, *))
        let train = split ? try images("x_train") : (values: [Float](), shape: test.shape)
        guard train.shape == test.shape else {
            throw fail("x_train's images \(shapeText(train.shape)) and x_test's \(shapeText(test.shape)) differ")
        }
        let trainLabels = split ? try labels("y_train", count: train.values.count / train.shape.reduce(1, *)) : []
        let classes = (trainLabels + testLabels).max().map { $0 + 1 } ?? 0
        return Dataset(
            name: path, imageShape: test.shape, classes: max(classes, 2), trainImages: train.values,
            trainLabels: trainLabels, testImages: test.values, testLabels: testLabels)
    }
}
