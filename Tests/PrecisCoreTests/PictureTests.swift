import Foundation
import Testing

@testable import PrecisCore

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Counts the elements of an SVG document by name, and whether it parses as XML.
final class ElementCounter: NSObject, XMLParserDelegate {
    var counts: [String: Int] = [:]
    var attributes: [String: [[String: String]]] = [:]
    /// The text of every element, in document order.
    var texts: [String] = []
    private var inside = false

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String]
    ) {
        counts[name, default: 0] += 1
        self.attributes[name, default: []].append(attributes)
        texts.append("")
        inside = true
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        inside = false
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if inside { texts[texts.count - 1] += string }
    }

    /// Parses `svg`; nil when it is not well-formed XML.
    static func parse(_ svg: String) -> ElementCounter? {
        let counter = ElementCounter(), parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = counter
        return parser.parse() ? counter : nil
    }
}

@Suite struct PictureTests {
    @Test func learningCurvesHoldOnePointPerEpochAndIteration() throws {
        let charts = trainingCharts(
            loss: (0..<120).map { 2.3 * exp(-Double($0) / 40) }, trainAccuracy: [0.5, 0.7, 0.8],
            testAccuracy: [0.45, 0.65, 0.75])
        #expect(charts.map(\.name) == ["loss", "accuracy"])
        let loss = try #require(ElementCounter.parse(charts[0].svg))
        let accuracy = try #require(ElementCounter.parse(charts[1].svg))
        let points = { (c: ElementCounter) in
            c.attributes["polyline"]?.map { $0["points"]!.split(separator: " ").count }
        }
        #expect(points(loss) == [120, 120] && points(accuracy) == [3, 3])
        #expect(charts[1].svg.contains(">accuracy (%)</text>") && charts[1].svg.contains(">epoch</text>"))
    }

    @Test func filtersAreOneTilePerFilterBeforeAndAfter() throws {
        let spec = try ModelSpec.named("conv(6,3) relu conv(4,3,pad=1) relu affine(10)", inputShape: [1, 8, 8])
        let trained = try Network<Double>(spec: spec, seed: 1).tensorValues()
        let initial = try Network<Double>(spec: spec, seed: 2).tensorValues()
        let charts = try filterCharts(spec: spec, trained: trained, initial: initial)
        #expect(charts.map(\.name) == ["filters-00_conv1", "filters-00_conv1-initial", "filters-02_conv2"])
        let first = try #require(ElementCounter.parse(charts[0].svg))
        #expect(first.counts["rect"] == 6 * 9)  // one grey square per weight of the 6 filters of 3×3
        let second = try #require(ElementCounter.parse(charts[2].svg))
        #expect(second.counts["rect"] == 4 * 9)  // channel means: one 3×3 tile per filter
        #expect(charts[0].svg != charts[1].svg)
    }

    @Test func anEmptyChartSaysSoAndTextIsEscaped() throws {
        let chart = LineChart(title: "a < b & \"c\"", xLabel: "x", yLabel: "y", series: [.init("none", [])])
        let parsed = try #require(ElementCounter.parse(chart.svg))
        #expect(parsed.counts["polyline"] == nil && chart.svg.contains("nothing recorded to draw"))
        #expect(chart.svg.contains("a &lt; b &amp; &quot;c&quot;"))
    }

    @Test func mistakesAreAConfusionMatrixAndOneThumbnailPerWrongImage() throws {
        // Four 2×2 images of three classes; two are wrong.
        let images: [Float] = (0..<16).map { Float($0 % 4) / 3 }
        let charts = mistakeCharts(images: images, labels: [0, 1, 2, 2], predicted: [0, 2, 2, 1], classes: 3, side: 2)
        #expect(charts.map(\.name) == ["confusion", "mistakes"])
        let matrix = try #require(ElementCounter.parse(charts[0].svg))
        #expect(matrix.counts["rect"] == 9)
        let cells = matrix.attributes["text"]?.count ?? 0
        #expect(cells >= 9 + 3 + 3 + 3)  // counts, two axes of class numbers, title and axis names
        let wrong = try #require(ElementCounter.parse(charts[1].svg))
        #expect(
            wrong.counts["image"] == 1 && charts[1].svg.contains(">1→2</text>")
                && charts[1].svg.contains(">2→1</text>")
        )
        #expect(charts[1].svg.contains("2 misclassified test images"))
    }

    @Test func featureMapsAreOneGridPerConvolutionAndPooling() throws {
        let spec = try ModelSpec.named(
            "conv(3,3,pad=1) relu maxpool(2) conv(12,3) relu affine(10)", inputShape: [1, 8, 8])
        let net = try Network<Float>(spec: spec, seed: 5)
        let images: [Float] = (0..<(2 * 64)).map { Float($0 % 7) / 7 }
        let charts = featureMapCharts(network: net, images: images, labels: [0, 1])
        #expect(charts.map(\.name) == ["maps-00_conv1", "maps-02_maxpool1", "maps-03_conv2"])
        for chart in charts {
            let parsed = try #require(ElementCounter.parse(chart.svg))
            #expect(parsed.counts["image"] == 1)
        }
        #expect(charts[0].svg.contains("3 of 3 maps of 8×8") && charts[2].svg.contains("8 of 12 maps of 2×2"))
        #expect(charts[0].svg.contains(">class 1</text>"))
    }

    /// A graph: one box per layer with its output shape, a straight edge to each next layer, an
    /// arc for the skip connection and for each branch's edges; feature maps per block.
    @Test func graphsAreDrawnWithTheirShapesAndMapsPerBlock() throws {
        let spec = try ModelSpec.named(
            "conv(4,3,pad=1) relu :a conv(4,3,pad=1) add(a) :b @b conv(2,1) :c @b conv(3,3,pad=1) :d concat(c,d) "
                + "gap affine(10)", inputShape: [1, 8, 8])
        let chart = try networkChart(spec: spec)
        let parsed = try #require(ElementCounter.parse(chart.svg))
        #expect(parsed.counts["rect"] == 10)  // the input and 9 layers
        // Straight edges to each next layer in its lane; arcs for the skip into the add, the branch out to
        // conv 5 and both inputs of the concat (one skips a row, one comes back from lane 1).
        #expect(parsed.counts["line"] == 7 && parsed.counts["path"] == 4, "\(parsed.counts)")
        #expect(chart.svg.contains("04_conv3  conv(2,1,stride=1,pad=0)") && chart.svg.contains(">5×8×8</text>"))
        #expect(chart.svg.contains(">10</text>") && chart.svg.contains("input 1×8×8"))
        // Two assignments beside it: a cell per weighted layer in each, the same fill for the same candidate.
        let drawn = try networkChart(
            spec: spec,
            assignments: [("search-bits4", [0: "mxfp4", 2: "int8", 5: "mxfp4"]), ("search-drop1", [0: "int8"])])
        #expect(try #require(ElementCounter.parse(drawn.svg)).counts["rect"] == 10 + 4)
        #expect(drawn.svg.components(separatedBy: ">mxfp4</text>").count == 3 && drawn.svg.contains(">search-drop1<"))
        #expect(drawn.svg.components(separatedBy: candidateFills[0]).count == 3)
        #expect(drawn.svg.components(separatedBy: candidateFills[1]).count == 3)
        let net = try Network<Float>(spec: spec, seed: 5)
        let maps = featureMapCharts(network: net, images: (0..<64).map { Float($0 % 5) / 5 }, labels: [0])
        #expect(maps.map(\.name) == ["maps-00_conv1", "maps-03_add1", "maps-06_concat1"])
    }

    @Test func precisionChartsShowEveryRecordedModeButFloat64() throws {
        func row(_ name: String, _ change: Double, integer: Bool = false) -> ModeResult {
            var e = ErrorStats()
            e.add([1.01, 2] as [Double], reference: [1, 2], minNormal: 0)
            let c = AccuracyChange(
                changePP: change, ci95LowPP: change - 0.1, ci95HighPP: change + 0.1, differs: 3, gained: 1, lost: 2,
                agreement: 0.99)
            let layers = [
                LayerError(layer: "a", errors: integer ? nil : ErrorSummary(e)),
                LayerError(layer: "b", errors: ErrorSummary(e)),
            ]
            return ModeResult(
                precision: name, integer: integer, weights: "/model", images: 100, correct: 90, vsFloat32: c,
                logits: ErrorSummary(e), modelBytes: 1, float32Bytes: 4, seconds: 1, layers: layers)
        }
        let charts = precisionCharts([
            row("float64", 0), row("float32", 0), row("float16", -0.05), row("int8-x", -0.1, integer: true),
        ])
        let change = try #require(ElementCounter.parse(charts[0].svg))
        #expect(change.counts["rect"] == 3)  // float32, float16 and int8: a dot each
        let sqnr = try #require(ElementCounter.parse(charts[1].svg))
        let points = sqnr.attributes["polyline"]?.map { $0["points"]!.split(separator: " ").count }
        #expect(points == [2])  // float16's two layers; int8 has one layer of its own, a single dot
        #expect(sqnr.counts["rect"] == 1 && !charts[1].svg.contains(">float32<"))
    }

    @Test func greyPNGIsAValidPNG() throws {
        let png = greyPNG(width: 3, height: 2, pixels: [0, 128, 255, 255, 128, 0])
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        #expect(png.suffix(12).prefix(8).suffix(4) == Data("IEND".utf8))
        let header = [UInt8](png[16..<29])  // width, height, depth 8, colour type 0 (grey)
        #expect(header == [0, 0, 0, 3, 0, 0, 0, 2, 8, 0, 0, 0, 0])
    }

    @Test func ticksAreRoundAndCoverTheRange() {
        let unit = niceTicks(0, 1)
        #expect(unit.count == 6 && zip(unit, [0, 0.2, 0.4, 0.6, 0.8, 1]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(niceTicks(84.6, 95.2) == [85, 90, 95])
        #expect(niceTicks(1, 12_000) == [5000, 10_000])
        #expect(tickText(0.6000000000000001, step: 0.2) == "0.6" && tickText(5000, step: 5000) == "5000")
    }

    @Test func thePageIsSelfContained() {
        let report = PictureReport(
            title: "t",
            sections: [.init(heading: "h", text: "p", charts: [Chart(name: "c", svg: "<svg></svg>", caption: "x")])])
        #expect(report.html.hasPrefix("<!DOCTYPE html>") && report.html.contains("<svg></svg>"))
        // Nothing to run and nothing to fetch.
        #expect(
            !report.html.contains("<script") && !report.html.contains("src=") && !report.html.contains("href=\"http"))
    }

    @Test func changedAnswersAreTheImagesWhosePredictionDiffersFromFloat32() throws {
        // Image 0: float32 right, the mode wrong; 1: not recorded; 2: the same; 3: the mode mends it.
        let chart = changedChart(
            mode: "int8", images: [Float](repeating: 0.5, count: 4 * 4), side: 2, labels: [0, 1, 2, 3],
            float32: [0, 1, 2, 0], predicted: [1, nil, 2, 3])
        let svg = try #require(ElementCounter.parse(chart.svg))
        #expect(svg.texts.contains("int8: 2 of 3 answers differ from float32"))
        let labels = (svg.attributes["text"] ?? []).indices.dropFirst().map { svg.attributes["text"]![$0]["fill"]! }
        #expect(svg.texts.filter { $0.contains("→") } == ["0→1", "0→3"])
        #expect(labels == [Palette.colour(3), Palette.colour(0)])
        #expect(svg.counts["image"] == 1)
        let none = changedChart(mode: "float16", images: [], side: 2, labels: [], float32: [], predicted: [])
        #expect(
            try #require(ElementCounter.parse(none.svg)).texts.contains(
                "float16: no prediction recorded for these images"))
    }

    @Test func rangePanelsCountClippedValuesAndDrawABarPerChannel() throws {
        let tensor = RangePanel(title: "a input", values: [-2, -0.5, 0, 0.5, 3], ranges: [-1...1])
        let channels = RangePanel(title: "b weights", values: [-1, 1], ranges: [-1...1, -0.5...0.5, -0.25...0.25])
        #expect(tensor.clipped == 2 && channels.clipped == 0)
        let svg = try #require(ElementCounter.parse(rangeChart(title: "r", panels: [tensor, channels], steps: 254)))
        #expect(svg.texts.contains("step 0.00787; 2 of 5 values clipped"))
        #expect(svg.texts.contains("3 channels, steps 0.00197 to 0.00787"))
        let bars = (svg.attributes["rect"] ?? []).filter { $0["fill"] == Palette.colour(0) }
        #expect(bars.count == 3)
        // The clipped tails of the per-tensor panel are shaded: two regions.
        #expect((svg.attributes["rect"] ?? []).filter { $0["fill"] == "#D55E0033" }.count == 2)
    }

    @Test func compareHeatMapsHaveACellPerSchemeAndCalibration() throws {
        func run(_ scheme: String, _ calibration: String, change: Double, differs: Int) -> CompareRun {
            CompareRun(
                scheme: scheme, calibration: calibration, images: 100, correct: 90, accuracy: 0.9,
                vsFloat32: AccuracyChange(
                    changePP: change, ci95LowPP: change - 1, ci95HighPP: change + 1, differs: differs, gained: 0,
                    lost: differs, agreement: 0.9),
                differsFromFakeQuant: 0, logits: ErrorSummary(ErrorStats()), modelBytes: 10, modelRatioToFloat32: 0.25,
                seconds: 1, imagesPerSecond: 100, layers: [])
        }
        let runs = [
            run("wtensor-as8", "mse", change: -1, differs: 4), run("wchannel-as8", "minmax", change: 0, differs: 1),
            run("wtensor-as8", "minmax", change: -2, differs: 6),
        ]
        let report = CompareReport(
            file: "f", dataset: "d", images: 100, calibrationImages: 50, seed: 0, sample: "all 100 test images",
            percentile: 99.99, float32Accuracy: 0.9, float32ImagesPerSecond: 1000, int8GemmPath: "portable",
            runs: runs, weightSQNRDB: [:], recommended: runs[1])
        let charts = compareCharts(report)
        #expect(charts.map(\.name) == ["compare-change", "compare-differs"])
        let change = try #require(ElementCounter.parse(charts[0].svg))
        // 2 schemes × 2 calibrations, one without a run; minmax before mse whatever the run order.
        #expect(change.counts["rect"] == 4)
        #expect(change.texts.filter { ["minmax", "mse"].contains($0) } == ["minmax", "mse"])
        #expect(change.texts.filter { $0.hasPrefix("+") || $0.hasPrefix("-") } == ["+0.00", "-2.00", "-1.00"])
        let differs = try #require(ElementCounter.parse(charts[1].svg))
        #expect(differs.texts.contains("6") && differs.texts.contains("1") && differs.texts.contains("4"))
    }
}

@Suite struct ParetoTests {
    /// A point is on the front when nothing with as few bits does better; ties in bits keep the better.
    @Test func theFrontKeepsWhatNothingBeats() {
        let points: [(bits: Double, change: Double)] = [(8, -0.1), (4, -0.7), (4.5, -0.4), (5, -0.9), (32, 0), (4, -2)]
        #expect(paretoFront(points) == [1, 2, 0, 4])
        #expect(paretoFront([]) == [])
    }
}
