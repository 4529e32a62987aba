// Precis as a library: loads a weight file, runs the precision report of three floating modes on
// a stratified sample of the file's test set, and prints it as `precis eval` does.
import Foundation
import PrecisCore
import PrecisWeights

let arguments = Array(CommandLine.arguments.dropFirst())
guard let path = arguments.first, let count = Int(arguments.count > 1 ? arguments[1] : "1000"), count > 0 else {
    FileHandle.standardError.write(Data("usage: precis-example WEIGHTS.h5 [IMAGES]\n".utf8))
    exit(64)
}
do {
    let store = try WeightStore(path)
    let dataset = try Dataset.load(named: store.master.dataset)
    let selection = ImageSelection.stratified(count: min(count, dataset.testCount), seed: 0)
    let test = dataset.testImages(selection)
    let entries = try [PrecisionMode.float32, .float16, .bfloat16Acc32].map { mode in
        EvaluationEntry(.floating(mode, tensors: try store.tensors(for: mode)), weights: store.source(for: mode))
    }
    let evaluation = try PrecisionEvaluation(
        spec: store.spec, master: store.master.tensors, entries: entries, test: test)
    let report = PrecisionReport(
        file: path, dataset: dataset.name, model: store.spec.name, images: test.count,
        sample: selection.text(of: dataset.testCount), inputScale: 1, layerNames: store.spec.layerNames,
        results: evaluation.results, explain: nil, notes: [])
    print(report.text)
} catch {
    FileHandle.standardError.write(Data("precis-example: \(error)\n".utf8))
    exit(1)
}
