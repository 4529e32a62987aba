import ArgumentParser
import Foundation
import PrecisCore
import PrecisONNX
import PrecisWeights

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a Precis weight file from a network trained elsewhere.",
        discussion: """
            Reads ONNX models (.onnx) and Keras models (.keras, or HDF5: .h5), Sequential or functional: graphs \
            of convolutions (depthwise and grouped too), pooling, affine, batch normalization, dropout, \
            activations, adds, concatenations and channel-wise products; and numpy .npz archives in the book's \
            layout (W1, b1, W2, ... for the convolution and affine layers in order; give the architecture with \
            --model). The new file works with eval, quantize, export, inspect and report like one precis train wrote.
            """)

    @Argument(help: "The network to import: an .onnx model, a Keras .keras or .h5 model, or an .npz archive.")
    var source: String

    @Option(help: ArgumentHelp("The weight file to write.", valueName: "file.h5"))
    var output: String

    @Option(help: "For .npz: the architecture, simple, deep, or a layer list as precis train takes it.")
    var model: String?

    @Option(help: ArgumentHelp("For .npz: the shape of one input image, C,H,W.", valueName: "c,h,w"))
    var inputShape = "1,28,28"

    @OptionGroup(title: "The data set the network was made for (required; eval and report use it)")
    var data: DataOptions

    @Option(
        help: ArgumentHelp(
            "Put an input normalization in front of the network, as it was trained: MEAN/STD, comma-separated, one "
                + "per channel or one for all (e.g. 0.4914,0.4822,0.4465/0.247,0.2435,0.2616). Inputs stay pixels "
                + "in [0, 1]; every command normalizes them.", valueName: "mean/std"))
    var normalize: String?

    @Option(help: "A license or copyright notice to keep with the weights (attribute attribution on /model).")
    var attribution = ""

    @Flag(help: "Replace --output if it exists.")
    var force = false

    /// The source's format, from its extension.
    var format: String { URL(fileURLWithPath: source).pathExtension.lowercased() }

    func validate() throws {
        guard ["npz", "onnx", "h5", "keras"].contains(format) else {
            throw ValidationError(
                "\(source): precis import reads .onnx models, Keras .keras and .h5 models and .npz archives")
        }
        if format == "npz" && model == nil {
            throw ValidationError("an .npz archive holds no architecture: give --model")
        }
        if format != "npz" && model != nil {
            throw ValidationError("\(source) holds its architecture: no --model")
        }
        if data.dataset == nil && data.data == nil {
            throw ValidationError(
                "give the data set the network was trained for: --dataset NAME or --data PATH (eval and report use it)")
        }
        if let dir = data.data {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isFolder), isFolder.boolValue else {
                throw ValidationError("--data \(dir): no such folder")
            }
        }
        if let normalize {
            do { _ = try ChannelStatistics(parsing: normalize) } catch {
                throw ValidationError("--normalize: \(error)")
            }
        }
        if let problem = outputRefusal(output, force: force) { throw ValidationError("--output \(output): \(problem)") }
        guard shape.count == 3 && shape.allSatisfy({ $0 > 0 && $0 <= 4096 }) else {
            throw ValidationError("--input-shape takes three positive sizes, C,H,W (such as 1,28,28)")
        }
    }

    /// `--input-shape` as numbers (empty when it does not parse).
    var shape: [Int] {
        let parts = inputShape.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        return parts.contains(nil) ? [] : parts.compactMap { $0 }
    }

    func run() throws {
        try reportingErrors {
            var network: ImportedNetwork, sourceFormat: String
            switch format {
            case "h5", "keras":
                (network, sourceFormat) = (try importKeras(source), format == "h5" ? "Keras HDF5" : "Keras")
            case "onnx":
                guard let data = FileManager.default.contents(atPath: source) else {
                    throw DataError(file: source, problem: "no such file, or it cannot be read")
                }
                (network, sourceFormat) = (try importONNX(data, file: source), "ONNX")
            default:
                let arrays = try NumpyArchive.read(source)
                let spec = try ModelSpec.named(model ?? "", inputShape: shape)
                network = ImportedNetwork(
                    spec: spec, tensors: try bookTensors(arrays, spec: spec, file: source),
                    producer: "numpy (\(Set(arrays.values.map(\.dtype)).sorted().joined(separator: ", ")) arrays)",
                    notes: [])
                sourceFormat = "npz (Deep Learning from Scratch layout: W1, b1, ...)"
            }
            if let normalize {
                do {
                    network = try network.normalizingInput(try ChannelStatistics(parsing: normalize))
                } catch let error as ModelError {
                    throw DataError(file: source, problem: "--normalize: \(error)")
                }
            }
            let provenance = Provenance(
                format: sourceFormat, file: URL(fileURLWithPath: source).lastPathComponent,
                producer: network.producer, attribution: attribution)
            let dataset = data.dataset ?? URL(fileURLWithPath: data.data ?? "").standardizedFileURL.path
            let file = WeightFile(
                spec: network.spec, dataset: dataset, training: nil, tensors: network.tensors, source: provenance)
            try file.write(to: output, overwrite: force)
            for note in network.notes { print("note: \(note)") }
            print(
                "\(output): \(network.spec.layerText), \(try network.spec.parameterCount()) parameters from \(source)")
        }
    }
}
