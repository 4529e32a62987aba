import ArgumentParser
import Foundation
import PrecisCore
import PrecisONNX
import PrecisWeights
import PrecisWorkflows

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a reduced-precision copy of the weights in the file, or write the network as an ONNX model.",
        discussion: """
            Without --onnx, stores /variants/<precision> (float16 or bfloat16; default float16). With --onnx \
            OUT.onnx, writes an ONNX model (opset \(onnxOpset)) that ONNX Runtime runs, input `input` (N, C, H, W) \
            and output `logits` in float32: --precision float32 (default), float16 (the stored half variant, \
            cast at the input and output), or a stored int8 variant int8-<scheme> (QuantizeLinear and \
            DequantizeLinear pairs with the variant's own scales and zero points).
            """)

    @Argument(help: "A Precis weight file.")
    var file: String

    @Option(help: "Precision to store, or with --onnx to write.")
    var precision: String?

    @Option(help: ArgumentHelp("Write the network as an ONNX model to this file.", valueName: "out.onnx"))
    var onnx: String?

    @Flag(help: "With --onnx: replace an existing file.")
    var force = false

    func validate() throws {
        if let onnx {
            if let precision, !(Precision(name: precision).map(WeightStore.writesONNX) ?? false) {
                throw ValidationError("--onnx writes float32, float16 or a stored int8-<scheme>, not '\(precision)'")
            }
            if let problem = outputRefusal(onnx, force: force) { throw ValidationError("--onnx \(onnx): \(problem)") }
            return
        }
        if force { throw ValidationError("--force goes with --onnx (storing a variant changes the file itself)") }
        if let precision, !WeightFile.variantPrecisions.contains(precision) {
            throw ValidationError(
                "--precision stores \(WeightFile.variantPrecisions.joined(separator: ", ")), not '\(precision)'")
        }
        if let problem = editProblem(file) { throw ValidationError("\(file): \(problem)") }
    }

    func run() throws {
        try reportingErrors(file: file) {
            let store = try WeightStore(file)
            guard let onnx else {
                let name = precision ?? "float16"
                try store.export(name)
                print("\(file): stored /variants/\(name)")
                return
            }
            let name = precision ?? "float32", data = try store.onnxModel(Precision(name: name)!)
            try AtomicFiles.write(data, to: onnx)
            print("\(onnx): \(store.spec.name) in \(name), ONNX opset \(onnxOpset), \(data.count) bytes")
        }
    }
}
