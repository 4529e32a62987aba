import ArgumentParser
import Foundation
import PrecisONNX
import PrecisWeights

/// A precision `export` can store: the variant of a precision mode.
struct VariantPrecision: ExpressibleByArgument {
    let name: String

    init?(argument: String) {
        guard WeightFile.variantPrecisions.contains(argument) else { return nil }
        name = argument
    }

    static var allValueStrings: [String] { WeightFile.variantPrecisions }
    var defaultValueDescription: String { name }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a reduced-precision copy of the weights in the file, or write the network as an ONNX model.",
        discussion: """
            Without --onnx, stores /variants/<precision> (default float16). With --onnx OUT.onnx, writes the \
            float32 network as an ONNX model (opset \(onnxOpset)) that ONNX Runtime runs: input `input` \
            (N, C, H, W), output `logits`.
            """)

    @Argument(help: "A Precis weight file.")
    var file: String

    @Option(help: "Precision to store (default: float16).")
    var precision: VariantPrecision?

    @Option(help: ArgumentHelp("Write the float32 network as an ONNX model to this file.", valueName: "out.onnx"))
    var onnx: String?

    func validate() throws {
        if let onnx {
            if precision != nil { throw ValidationError("--onnx writes the float32 network: no --precision") }
            if let problem = writeProblem(onnx) { throw ValidationError("--onnx \(onnx): \(problem)") }
        }
    }

    func run() throws {
        try reportingErrors {
            let store = try WeightStore(file)
            if let onnx {
                let data = try exportONNX(
                    spec: store.spec, tensors: store.master.tensors, producer: "precis \(Precis.version)")
                try AtomicFiles.write(data, to: onnx)
                print("\(onnx): \(store.spec.name) in float32, ONNX opset \(onnxOpset), \(data.count) bytes")
                return
            }
            let name = (precision ?? VariantPrecision(argument: "float16")!).name
            try store.export(name)
            print("\(file): stored /variants/\(name)")
        }
    }
}
