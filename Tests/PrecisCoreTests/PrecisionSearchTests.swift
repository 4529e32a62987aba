import Testing

@testable import PrecisCore

/// The per-layer precision search: its knapsack against every assignment, its networks against the
/// uniform ones built elsewhere, and its answers within their limits.
@Suite struct PrecisionSearchTests {
    static let candidates = ["int8", "int4-g32", "mxfp4", "float16"].map { SearchCandidate(name: $0)! }

    /// A study of StudyTests' small random network (3 quantized layers) and the search over it.
    func search() throws -> (QuantizationStudy, PrecisionSearch) {
        let (spec, tensors, data) = try StudyTests().setUp()
        let study = try QuantizationStudy(spec: spec, tensors: tensors, dataset: data, calibrationSize: 20, seed: 1)
        return (study, try PrecisionSearch(study: study, candidates: Self.candidates))
    }

    /// Every assignment of the candidates to the layers, with its predicted change and bits.
    func everyAssignment(_ s: PrecisionSearch) -> [(choice: [Int], change: Double, bits: Int)] {
        var all: [[Int]] = [[]]
        for _ in s.layers { all = all.flatMap { c in s.candidates.indices.map { c + [$0] } } }
        return all.map { c in
            (
                c, c.indices.reduce(0) { $0 + s.predicted(c[$1], $1) },
                c.indices.reduce(0) { $0 + s.options[c[$1]][$1].bits }
            )
        }
    }

    /// With one bit a step, the knapsack is exact: at every capacity, no assignment within it is
    /// predicted better, and the one it returns fits.
    @Test func knapsackFindsTheBestAssignmentAtEveryCapacity() throws {
        let (_, s) = try search()
        let all = everyAssignment(s)
        #expect(all.count == 125)
        let full = all.map(\.bits).max()!
        for capacity in stride(from: all.map(\.bits).min()!, through: full, by: max(1, full / 40)) {
            let plan = try #require(s.knapsack(capacity: capacity, units: capacity).last!)
            let best = all.filter { $0.bits <= capacity }.map(\.change).max()!
            #expect(plan.bits <= capacity && abs(plan.change - best) < 1e-9, "capacity \(capacity)")
        }
        #expect(s.knapsack(capacity: all.map(\.bits).min()! - 1, units: 4096).last! == nil)
    }

    /// The search's network with every layer in one candidate predicts as the uniform network built
    /// by the format's own code (`FormatNetwork`), or int8's quantize-dequantize simulation.
    @Test func uniformAssignmentsMatchTheUniformNetworks() throws {
        let (study, s) = try search()
        for (c, candidate) in s.candidates.enumerated() {
            let measured = try s.measure(Array(repeating: c, count: s.layers.count))
            let reference: RunResult
            switch candidate {
            case .format(let mode):
                let network = try FormatNetwork(
                    spec: study.spec, tensors: study.tensors, model: study.formatModel(mode))
                reference = study.evaluate { network.predict($0) }
            case .int8:
                let network = try FakeQuantNetwork(
                    spec: study.spec, model: study.quantize(Precision.defaultInt8Scheme, .mse), tensors: study.tensors)
                reference = study.evaluate { network.predict($0) }
            case .float32:
                reference = study.float32
            case .float16:
                continue
            }
            #expect(measured.predicted == reference.predicted, "\(candidate)")
        }
    }

    /// The model of an assignment, as the variant stores it, runs as the search measured the
    /// assignment, and counts the same bits.
    @Test func assignmentModelsRunAsMeasured() throws {
        let (study, s) = try search()
        for choice in [[0, 1, 2], [3, 2, 4], [1, 1, 0], [4, 4, 4]] {
            let model = s.model(choice, goal: "x")
            #expect(
                model.assignment(study.spec).sorted { $0.key < $1.key }.map(\.value) == choice.map { s.candidates[$0] })
            let run = try model.network(spec: study.spec, master: study.tensors)
            let x = Tensor(shape: [40, 1, 8, 8], data: study.test.images)
            #expect(run.network.predict(x).data == (try s.network(choice)).predict(x).data, "\(choice)")
            let bits = choice.indices.reduce(0) { $0 + s.options[choice[$1]][$1].bits }
            #expect(abs(run.bitsPerWeight - Double(bits) / Double(s.weightCount)) < 1e-12)
        }
    }

    /// A budget is met in bits exactly; a drop limit is met as measured.
    @Test func outcomesMeetTheirLimits() throws {
        let (_, s) = try search()
        for bits in [5.0, 9.0, 20.0] {
            let o = try s.within(bitsPerWeight: bits)
            #expect(o.bitsPerWeight <= bits && o.assignment.count == s.layers.count)
            let choice = o.assignment.map { a in s.candidates.firstIndex { $0.description == a.candidate }! }
            #expect(abs(o.predictedPP - choice.indices.reduce(0) { $0 + s.predicted(choice[$1], $1) }) < 1e-9)
            #expect(
                try s.measure(choice).predicted == o.verified.predicted, "the outcome is the assignment's measurement")
        }
        #expect(throws: ModelError.self) { try s.within(bitsPerWeight: 1) }
        for drop in [0.0, 5.0] {
            let o = try s.within(maxDrop: drop)
            #expect(-o.verified.vsFloat32.changePP <= drop)
        }
    }
}
