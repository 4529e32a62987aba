import Foundation
import Testing

@testable import PrecisCore

/// The int8 studies `precis quantize` runs: calibration draw, sensitivity ranking, mixed precision.
@Suite struct StudyTests {
    /// A random 10-class data set of 8×8 images, 60 training and 40 test images, and a small
    /// network trained on nothing (random He weights): enough for predictions to change.
    func setUp() throws -> (ModelSpec, [String: Tensor<Double>], Dataset) {
        let spec = ModelSpec(
            name: "custom", inputShape: [1, 8, 8],
            layers: try LayerSpec.parseList("conv(6,3,pad=1) relu maxpool(2) affine(12) relu affine(10)"),
            weightInit: .he)
        var rng = RandomSource(seed: 21)
        func images(_ n: Int) -> [Float] { (0..<(n * 64)).map { _ in Float(rng.uniform()) } }
        let data = Dataset(
            name: "random", imageShape: [1, 8, 8], classes: 10, trainImages: images(60),
            trainLabels: (0..<60).map { $0 % 10 },
            testImages: images(40), testLabels: (0..<40).map { ($0 * 7) % 10 })
        return (spec, try Network<Double>(spec: spec, seed: 2).tensorValues(), data)
    }

    @Test func calibrationImagesComeFromTheTrainingSetWithoutRepeats() throws {
        let (_, _, data) = try setUp()
        let (images, count) = drawCalibrationImages(data, count: 25, seed: 4)
        #expect(count == 25 && images.count == 25 * 64)
        let rows = (0..<count).map { Array(images[$0 * 64..<($0 + 1) * 64]) }
        let train = (0..<60).map { Array(data.trainImages[$0 * 64..<($0 + 1) * 64]) }
        #expect(rows.allSatisfy { train.contains($0) } && Set(rows.map { $0.description }).count == 25)
        #expect(drawCalibrationImages(data, count: 25, seed: 4).images == images)
        #expect(drawCalibrationImages(data, count: 25, seed: 5).images != images)
        #expect(drawCalibrationImages(data, count: 500, seed: 4).count == 60)  // never more than the set holds
    }

    /// A resample draws as many images from the calibration set, with replacement, seeded; every
    /// compared run gets its interval, Holm's verdict and the change it could detect.
    @Test func compareResamplesTheCalibrationImages() throws {
        let (spec, tensors, data) = try setUp()
        let study = try QuantizationStudy(spec: spec, tensors: tensors, dataset: data, calibrationSize: 20, seed: 1)
        let r = study.resampled(seed: 3), rows = (0..<20).map { Array(r.calibrationImages[$0 * 64..<($0 + 1) * 64]) }
        let own = Set((0..<20).map { Array(study.calibrationImages[$0 * 64..<($0 + 1) * 64]).description })
        #expect(rows.count == 20 && rows.allSatisfy { own.contains($0.description) })
        #expect(
            Set(rows.map(\.description)).count < 20 && study.resampled(seed: 3).calibrationImages == r.calibrationImages
        )
        let report = try compareSchemes(
            study, file: "f.h5", dataset: "random", schemes: [QuantScheme.all[0]], methods: [.minmax, .mse],
            percentile: 99.99, seed: 1, biasCorrection: false, bootstrap: 4)
        for run in report.runs {
            #expect(run.beyondNoiseHolm != nil && run.detectablePP! > 0 && run.pValue! <= 1)
            if run.calibration == "dynamic" {
                #expect(run.bootstrap == nil)
            } else {
                #expect(run.bootstrap?.resamples == 4 && run.bootstrap!.lowPP <= run.bootstrap!.highPP)
            }
        }
        #expect(report.text.contains("calibration resampled [95%]"))
    }

    @Test func samplesAreStratifiedSeededAndInFileOrder() {
        // 1,000 labels sorted by class, as mnist5k's test split is: 100 per class.
        let labels = (0..<1000).map { $0 / 100 }
        let sample = ImageSelection.stratified(count: 100, seed: 3).indices(labels)
        #expect(sample.count == 100 && sample == sample.sorted() && Set(sample).count == 100)
        #expect((0..<10).allSatisfy { c in sample.filter { labels[$0] == c }.count == 10 })
        #expect(ImageSelection.stratified(count: 100, seed: 3).indices(labels) == sample)
        #expect(ImageSelection.stratified(count: 100, seed: 4).indices(labels) != sample)
        #expect(ImageSelection.first(count: 100).indices(labels).allSatisfy { labels[$0] == 0 })
        // Uneven classes: each in proportion, the remainder to the largest fractions.
        let uneven = [Int](repeating: 0, count: 70) + [Int](repeating: 1, count: 20) + [Int](repeating: 2, count: 10)
        let picked = ImageSelection.stratified(count: 15, seed: 1).indices(uneven).map { uneven[$0] }
        #expect([0, 1, 2].map { c in picked.filter { $0 == c }.count } == [11, 3, 1])
        #expect(ImageSelection.stratified(count: 500, seed: 1).indices(uneven) == Array(0..<100))
        #expect(
            ImageSelection.stratified(count: 15, seed: 1).text(of: 100)
                == "15 of 100 test images (stratified sample, seed 1)")
    }

    @Test func sensitivityRanksEveryQuantizedLayerMostHarmfulFirst() throws {
        let (spec, tensors, data) = try setUp()
        let study = try QuantizationStudy(
            spec: spec, tensors: tensors, dataset: data, calibrationSize: 30, seed: 0)
        #expect(study.float32.vsFloat32.differs == 0 && study.test.count == 40)
        let model = try study.quantize(QuantScheme(weights: .perTensor, activations: .int8Symmetric), .minmax)
        let ranked = try study.sensitivity(model)
        #expect(Set(ranked.map(\.layer)) == ["00_conv1", "03_affine1", "05_affine2"])
        let keys = ranked.map { ($0.vsFloat32.changePP, $0.logits.sqnrDB) }
        #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 <= $1 })
        // Each layer alone loses less logit SQNR than all of them together.
        let all = try FakeQuantNetwork(spec: spec, model: model, tensors: tensors)
        var together = ErrorStats()
        let reference = try Network<Double>(spec: spec, parameters: tensors).logits(study.test.images, count: 40)
        together.add(
            all.predict(Tensor(shape: [40, 1, 8, 8], data: study.test.images)).data, reference: reference.data,
            minNormal: 0)
        #expect(ranked.allSatisfy { $0.logits.sqnrDB > together.sqnrDB && $0.weightSQNRDB > 20 })
    }

    @Test func mixedPrecisionKeepsLayersUntilTheBudgetHolds() throws {
        let (spec, tensors, data) = try setUp()
        let study = try QuantizationStudy(
            spec: spec, tensors: tensors, dataset: data, calibrationSize: 30, seed: 0)
        let model = try study.quantize(QuantScheme(weights: .perTensor, activations: .int8Symmetric), .minmax)
        let order = try study.sensitivity(model).map(\.index)
        // A budget of -100 points can never hold: every layer ends in float, with float32's answers.
        let all = try study.mixedPrecision(model, order: order, maxDrop: -100, floats: tensors, bytesPerValue: 4)
        #expect(all.count == order.count + 1 && all.map(\.floatLayers.count) == Array(0...order.count))
        let float32Bytes = 4 * (try spec.parameterCount())
        #expect(all.last?.result.vsFloat32.differs == 0 && all.last?.modelBytes == float32Bytes)
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.modelBytes < $1.modelBytes })
        // A budget of 100 points holds at once.
        let none = try study.mixedPrecision(model, order: order, maxDrop: 100, floats: tensors, bytesPerValue: 4)
        #expect(none.count == 1 && none[0].floatLayers.isEmpty && none[0].modelBytes == model.bytes)
    }
}

/// Report tables and JSON.
@Suite struct PrecisionReportTests {
    /// The column of every header: where it starts and ends in the header line.
    func columns(_ header: String, _ names: [String]) -> [Range<Int>] {
        var from = header.startIndex
        return names.map { name in
            let r = header.range(of: name, range: from..<header.endIndex)!
            from = r.upperBound
            return header.distance(
                from: header.startIndex, to: r.lowerBound)..<header.distance(from: header.startIndex, to: r.upperBound)
        }
    }

    @Test func everyValueSitsUnderItsHeader() {
        var table = TextTable([
            ("precision", .left), ("accuracy", .right), ("change vs float32 [95% CI]", .left), ("images/s", .right),
        ])
        table.add(["float16-acc32", "92.14%", "-0.01 [-0.04, +0.02] pp", "7502"])
        table.add(["int8-wchannel-au8z-dynamic", "100.00%", "+0.00 [+0.00, +0.00] pp", "48319123"])
        let lines = table.lines()
        let spans = columns(lines[0], table.headers)
        for row in lines.dropFirst() {
            let chars = Array(row)
            for (c, span) in spans.enumerated() {
                // Left columns start at their header's first character, right ones end at its last.
                let edge = table.alignments[c] == .left ? span.lowerBound : span.upperBound - 1
                #expect(chars[edge] != " ", "column \(table.headers[c]) in '\(row)'")
                let outside = table.alignments[c] == .left ? edge - 1 : edge + 1
                #expect(
                    outside < 0 || outside >= chars.count || chars[outside] == " ",
                    "column \(table.headers[c]) in '\(row)'")
            }
        }
    }

    @Test func theReportTableAlignsRealRows() throws {
        let change = AccuracyChange(
            changePP: -0.04, ci95LowPP: -0.1, ci95HighPP: 0.02, differs: 7, gained: 1, lost: 5, agreement: 0.9993)
        var e = ErrorStats()
        e.add([1.5, 2] as [Double], reference: [1, 2], minNormal: 0)
        let layer = LayerError(layer: "00_affine1", errors: ErrorSummary(e))
        let rows = ["float32", "bfloat16-acc32", "int8-wchannel-au8z-dynamic"].map {
            ModeResult(
                precision: $0, integer: false, weights: "/model", images: 10_000, correct: 9211, vsFloat32: change,
                logits: ErrorSummary(e), modelBytes: 494_208, float32Bytes: 494_208, seconds: 1.3, layers: [layer])
        }
        let report = PrecisionReport(
            file: "f.h5", dataset: "d", model: "m", images: 10_000, inputScale: 1, layerNames: ["00_affine1"],
            results: rows)
        let lines = report.text.split(separator: "\n").map(String.init)
        let headers = [
            "precision", "accuracy", "change vs float32 [95% CI]", "differs", "agree", "logit max err", "logit SQNR dB",
            "inf+NaN", "model KiB", "ratio", "images/s",
        ]
        let spans = columns(lines[1], headers)
        for row in lines[2...4].map(Array.init) {
            // The first three columns are text (left), the rest numbers (right).
            for (c, span) in spans.enumerated() {
                #expect(row[c == 0 || c == 2 ? span.lowerBound : span.upperBound - 1] != " ", "\(headers[c])")
            }
        }
    }

    @Test func jsonWritesNullForInfiniteValuesAndReadsThemBack() throws {
        var exact = ErrorStats(), broken = ErrorStats()
        exact.add([1, 2] as [Double], reference: [1, 2], minNormal: 0)
        broken.add([.nan, 2] as [Double], reference: [1, 2], minNormal: 0)
        let layers = [
            LayerError(layer: "a", errors: ErrorSummary(exact)), LayerError(layer: "b", errors: ErrorSummary(broken)),
            LayerError(layer: "c", errors: nil),
        ]
        let json = try JSONEncoder.precis.encode(layers)
        let text = String(decoding: json, as: UTF8.self)
        #expect(
            !text.contains("\"inf\"") && !text.contains("\"-inf\"") && !text.contains("Infinity")
                && !text.contains("NaN"))
        let objects = try JSONSerialization.jsonObject(with: json) as? [[String: Any]] ?? []
        #expect(objects.count == 3 && objects[0]["sqnr_db"] is NSNull && objects[0]["exact"] as? Bool == true)
        #expect(
            objects[1]["sqnr_db"] is NSNull && objects[1]["exact"] as? Bool == false && objects[1]["nans"] as? Int == 1)
        #expect(objects[2]["folded"] as? Bool == true && objects[2]["sqnr_db"] == nil)
        let back = try JSONDecoder().decode([LayerError].self, from: json)
        #expect(
            back[0].errors?.sqnrDB == .infinity && back[1].errors?.sqnrDB == -.infinity
                && back[1].errors?.maxAbsError == .infinity)
        #expect(back[2].errors == nil && back[0] == layers[0])
    }

    @Test func explanationRanksLossesBeyondNoiseFirst() {
        var small = ErrorStats(), large = ErrorStats()
        small.add([1.001] as [Double], reference: [1], minNormal: 0)
        large.add([1.5] as [Double], reference: [1], minNormal: 0)
        func effect(_ name: String, lost: Int, _ e: ErrorStats) -> LayerEffectResult {
            let labels = [Int](repeating: 0, count: 1000)
            let change = PairedChange(
                predicted: (0..<1000).map { $0 < lost ? 1 : 0 }, reference: labels, labels: labels)
            return LayerEffectResult(LayerEffect(layer: name, change: change, logits: e))
        }
        let ranked = Explanation(
            precision: "float16", simulated: false,
            effects: [effect("quiet", lost: 0, large), effect("loses", lost: 9, small), effect("tiny", lost: 0, small)])
        #expect(ranked.layers.map(\.layer) == ["loses", "quiet", "tiny"])
    }
}
