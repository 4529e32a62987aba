import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a Precis weight file from a network trained elsewhere.",
        discussion: """
            Reads numpy .npz archives in the book's layout (W1, b1, W2, ... for the convolution and affine \
            layers in order; give the architecture with --model). The new file works with eval, quantize, \
            export, inspect and report like one precis train wrote.
            """)

    @Argument(help: "The network to import: an .npz archive.")
    var source: String

    @Option(help: ArgumentHelp("The weight file to write.", valueName: "file.h5"))
    var output: String

    @Option(help: "The architecture: simple, deep, or a layer list as precis train takes it.")
    var model: String?

    @Option(help: ArgumentHelp("The shape of one input image, C,H,W.", valueName: "c,h,w"))
    var inputShape = "1,28,28"

    @Option(help: "The data set eval and report use by default: fashion-mnist, mnist5k or a directory.")
    var dataset = "mnist5k"

    @Option(help: "A license or copyright notice to keep with the weights (attribute attribution on /model).")
    var attribution = ""

    @Flag(help: "Replace --output if it exists.")
    var force = false

    func validate() throws {
        guard URL(fileURLWithPath: source).pathExtension == "npz" else {
            throw ValidationError("\(source): precis import reads .npz archives (the book's layout)")
        }
        guard model != nil else { throw ValidationError("an .npz archive holds no architecture: give --model") }
        if let problem = writeProblem(output) { throw ValidationError("--output \(output): \(problem)") }
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
            let arrays = try NumpyArchive.read(source)
            let spec = try ModelSpec.named(model ?? "", inputShape: shape)
            let tensors = try bookTensors(arrays, spec: spec, file: source)
            let source = Provenance(
                format: "npz (Deep Learning from Scratch layout: W1, b1, ...)",
                file: URL(fileURLWithPath: self.source).lastPathComponent,
                producer: "numpy (\(Set(arrays.values.map(\.dtype)).sorted().joined(separator: ", ")) arrays)",
                attribution: attribution)
            let file = WeightFile(spec: spec, dataset: dataset, training: nil, tensors: tensors, source: source)
            try file.write(to: output, overwrite: force)
            print("\(output): \(spec.name), \(try spec.parameterCount()) parameters from \(self.source)")
        }
    }
}
