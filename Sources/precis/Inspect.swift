import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize a weight file: model, layers, parameters, bytes per variant, training, evaluations.")

    @Argument(help: "A weight file written by precis train.")
    var file: String

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let w = try WeightFile.read(file)
            let spec = w.spec
            let shapes = try spec.shapes()
            let tensorShapes = try spec.tensorShapes()
            let parameters = tensorShapes.reduce(0) { $0 + $1.shape.reduce(1, *) }
            let layers: [[String: Any]] = zip(spec.layerNames, zip(spec.layers, shapes)).map { name, ls in
                let count = tensorShapes.filter { $0.name.hasPrefix(name + "/") }.reduce(0) { $0 + $1.shape.reduce(1, *) }
                return ["name": name, "kind": ls.0.kind, "spec": ls.0.description, "output_shape": ls.1, "parameters": count]
            }
            let float32Bytes = parameters * 4
            var storage: [[String: Any]] = [["precision": "float32", "where": "/model", "bytes": float32Bytes, "ratio_to_float32": 1.0]]
            for v in try WeightFile.variants(file) {
                // float variants are named by their element type; int8 ones hold codes, scales and int32
                // biases, and mixed ones the layers they keep in float too.
                var bytes = parameters * (HDF5ElementType(rawValue: v)?.size ?? 4)
                if v.hasPrefix("int8-") {
                    let stored = try WeightFile.readInt8Variant(file, spec: spec, variant: v)
                    bytes = stored.model.bytes + (stored.dynamic ? 0 : stored.floatBytesPerValue * stored.floatTensors.values.reduce(0) { $0 + $1.count })
                }
                storage.append(["precision": v, "where": "/variants/\(v)", "bytes": bytes, "ratio_to_float32": Double(bytes) / Double(float32Bytes)])
            }
            var training: [String: Any]? = nil
            if let t = w.training {
                training = ["dataset": t.dataset, "train_size": t.trainSize, "test_size": t.testSize, "epochs": t.epochs,
                            "batch_size": t.batchSize, "optimizer": t.optimizer, "learning_rate": t.learningRate, "lr_schedule": t.schedule,
                            "seed": t.seed, "seconds": t.seconds, "iterations": t.iterations,
                            "final_train_accuracy": t.trainAccuracy.last ?? .nan, "final_test_accuracy": t.testAccuracy.last ?? .nan]
            }
            let evaluations = try WeightFile.evaluations(file).mapValues { attrs in attrs.mapValues(plain) }
            if json {
                try printJSON(["file": file, "format": WeightFile.format, "format_version": WeightFile.version, "model": spec.name,
                               "input_shape": spec.inputShape, "classes": spec.classes, "weight_init": spec.weightInit.description,
                               "dataset": w.dataset, "parameters": parameters, "layers": layers, "storage": storage,
                               "training": training ?? NSNull(), "evaluations": evaluations] as [String: Any])
                return
            }
            print("\(file): \(WeightFile.format) v\(WeightFile.version)")
            print("model \(spec.name): input \(shapeText(spec.inputShape)), \(spec.classes) classes, init \(spec.weightInit), trained on \(w.dataset)")
            print("  layer           kind                 output        parameters")
            for l in layers {
                print("  " + [pad(l["name"] as! String, 15), pad(l["kind"] as! String, 20), pad(shapeText(l["output_shape"] as! [Int]), 13)].joined(separator: " ")
                      + String(format: " %10d", l["parameters"] as! Int))
            }
            print("  total parameters: \(parameters)")
            print("storage:")
            let width = storage.map { ($0["precision"] as! String).count }.max() ?? 9
            for s in storage {
                print(String(format: "  %@ %@ %10d bytes  %.2fx float32", pad(s["precision"] as! String, width), pad(s["where"] as! String, width + 10),
                             s["bytes"] as! Int, s["ratio_to_float32"] as! Double))
            }
            if let t = w.training {
                print(String(format: "training: %@ (%d train / %d test), %d epochs, batch %d, %@ lr %g (%@), seed %d, %.0f s, %d iterations",
                             t.dataset, t.trainSize, t.testSize, t.epochs, t.batchSize, t.optimizer, t.learningRate, t.schedule, t.seed,
                             t.seconds, t.iterations))
                print("  final accuracy: train \(percent(t.trainAccuracy.last ?? .nan)), test \(percent(t.testAccuracy.last ?? .nan))")
            }
            if !evaluations.isEmpty {
                print("evaluations:")
                let width = max(14, evaluations.keys.map(\.count).max() ?? 0)
                for (mode, attrs) in evaluations.sorted(by: { $0.key < $1.key }) {
                    let acc = attrs["accuracy"] as? Double ?? .nan
                    let change = (attrs["change_vs_float32"] as? Double).map { String(format: ", change %+.2f pp", 100 * $0) } ?? ""
                    let sqnr = attrs["logit_sqnr_db"].map { ", logit SQNR \($0 is String ? "\($0)" : String(format: "%.1f", $0 as! Double)) dB" } ?? ""
                    print("  \(pad(mode, width)) \(percent(acc)) on \(attrs["dataset"] ?? "?") (\(attrs["images"] ?? "?") images), "
                          + "differs from float32: \(attrs["differs_from_float32"] ?? "?")\(change)\(sqnr), weights \(attrs["weights"] ?? "?")")
                }
            }
        }
    }
}

private func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }

/// An attribute as a JSON-friendly value.
private func plain(_ a: HDF5Attribute) -> Any {
    switch a {
    case .string(let s): return s
    case .int(let v): return v
    case .double(let v): return jsonNumber(v)
    case .ints(let v): return v
    case .doubles(let v): return v.map(jsonNumber)
    }
}
