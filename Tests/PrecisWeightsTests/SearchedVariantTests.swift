import Foundation
import Testing

@testable import PrecisCore
@testable import PrecisWeights

/// Searched assignments stored as variants: read back as written, run as the search measured them,
/// and refused when forged.
@Suite struct SearchedVariantTests {
    /// FoldedVariantTests' network (three layers, each with a batch normalization to fold), a data set
    /// of random images for it, and the search over int8, NVFP4, int4-g32 and float16 (float32 last).
    func setup() throws -> (dir: String, store: WeightStore, study: QuantizationStudy, search: PrecisionSearch) {
        let (dir, store, _, _) = try FoldedVariantTests().setup()
        var rng = RandomSource(seed: 9)
        func images(_ n: Int) -> [Float] { (0..<(n * 64)).map { _ in Float(rng.uniform()) } }
        let data = Dataset(
            name: "random", imageShape: [1, 8, 8], classes: 10, trainImages: images(60),
            trainLabels: (0..<60).map { $0 % 10 }, testImages: images(40), testLabels: (0..<40).map { ($0 * 7) % 10 })
        // The tensors as the file holds them (float32), which the stored variants run with.
        let study = try QuantizationStudy(
            spec: store.spec, tensors: store.master.tensors, dataset: data, calibrationSize: 20, seed: 1)
        let candidates = ["int8", "nvfp4", "int4-g32", "float16"].map { SearchCandidate(name: $0)! }
        return (dir, store, study, try PrecisionSearch(study: study, candidates: candidates))
    }

    /// Assignments that use every candidate, one uniform: each stored variant reads back as the model
    /// written, names its layers' candidates, and predicts every test image as the search measured.
    @Test func assignmentsRoundTripAndRunAsMeasured() throws {
        let (dir, store, study, s) = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (k, choice) in [[0, 1, 3], [2, 4, 0], [1, 1, 1], [3, 0, 2]].enumerated() {
            let model = s.model(choice, goal: "t\(k)")
            #expect(try store.store(model, calibration: [("calibration_images", .int(20))]) == "search-t\(k)")
            let stored = try store.variant("search-t\(k)", of: SearchedModel.self)
            #expect(stored.model == model)
            #expect(stored.model.assignment(study.spec) == model.assignment(study.spec))
            #expect(
                Set(choice.map { s.candidates[$0] }) == Set(stored.model.assignment(study.spec).values), "\(choice)")
            let run = study.evaluate { stored.network.network.predict($0) }
            let x = Tensor(shape: [40, 1, 8, 8], data: study.test.images)
            #expect(stored.network.network.predict(x).data == (try s.network(choice)).predict(x).data, "\(choice)")
            #expect(run.predicted == (try s.measure(choice)).predicted, "\(choice)")
            #expect(try store.storedBytes("search-t\(k)") == stored.network.modelBytes)
        }
        #expect(store.searchedVariantNames.count == 4)
    }

    /// Forged assignments, parts and float16 tensors get one line naming what is wrong.
    @Test func forgedVariantsAreRefused() throws {
        let (dir, store, _, s) = try setup()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func expectRefused(_ message: String, _ change: (HDF5Group) throws -> Void) throws {
            try store.store(s.model([0, 1, 3], goal: "f"), calibration: [])
            try store.modify { root in try change(try root.group("variants/search-f")) }
            #expect { try store.variant("search-f", of: SearchedModel.self) } throws: { "\($0)".contains(message) }
        }
        try expectRefused("names 2 of the 3") { v in
            try v.setAttribute("assignment", .string("00_conv1=int8 04_affine1=nvfp4"))
        }
        try expectRefused("not a convolution or affine layer once") { v in
            try v.setAttribute("assignment", .string("00_conv1=int8 00_conv1=nvfp4 07_affine2=float16"))
        }
        try expectRefused("does not hold the layers the assignment gives") { v in
            try v.setAttribute("assignment", .string("00_conv1=nvfp4 04_affine1=int8 07_affine2=float16"))
        }
        try expectRefused("has no part for int4-g32") { v in
            try v.setAttribute("assignment", .string("00_conv1=int8 04_affine1=nvfp4 07_affine2=int4-g32"))
        }
        try expectRefused("must be float16 of shape (12,10)") { v in
            let g = try v.group("model/layers/07_affine2")
            try g.remove("W")
            try g.write("W", shape: [10, 12], [Float](repeating: 0, count: 120))
        }
    }
}
