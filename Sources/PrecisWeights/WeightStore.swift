import Foundation
import PrecisCore

/// A stored number-format variant as it runs.
public struct StoredFormat: StoredVariant {
    public let network: FormatNetwork
    public let tensors: [String: Tensor<Double>]
    public var model: FormatModel { network.model }
}

/// An open weight file: the validated master, its variants read on first use and then kept, and
/// every change made through one safe rewrite (a modified copy renamed over the file). A command
/// opens its file once to read and, when it changes the file, once to write.
public final class WeightStore {
    /// The file's path, named in every error.
    public let path: String
    /// The validated master: spec, data set, training record and float32 tensors.
    public let master: WeightFile
    /// The names under `/variants`, in order.
    public private(set) var variantNames: [String]
    /// The open file; nil after a change until something reads again.
    private var opened: HDF5Group?
    private var floats: [String: [String: Tensor<Double>]] = [:]
    private var quantized: [String: any StoredVariant] = [:]
    private var digests: [String: String] = [:]

    /// Opens and validates the file at `path` (see `WeightFile.read`).
    public init(_ path: String) throws {
        self.path = path
        let root = try HDF5File.open(path).root
        opened = root
        master = try WeightFile.read(root: root)
        variantNames = root.contains("variants") ? try root.group("variants").children() : []
    }

    /// The open file's root group, opened again after a change.
    private func root() throws -> HDF5Group {
        if let opened { return opened }
        let root = try HDF5File.open(path).root
        opened = root
        return root
    }

    /// The model spec.
    public var spec: ModelSpec { master.spec }

    /// The stored int8 variants' names, in order.
    public var int8VariantNames: [String] {
        variantNames.filter { if case .int8? = Precision(name: $0) { true } else { false } }
    }

    /// The tensors of float variant `name` (`float16`, `bfloat16`), validated, widened to Double.
    public func floatVariant(_ name: String) throws -> [String: Tensor<Double>] {
        if let cached = floats[name] { return cached }
        let tensors = try WeightFile.readVariant(name, spec: spec, root: try root())
        floats[name] = tensors
        return tensors
    }

    /// The weights `mode` runs with: its stored variant when the file has one, else the master.
    public func tensors(for mode: PrecisionMode) throws -> [String: Tensor<Double>] {
        guard let name = mode.variant, variantNames.contains(name) else { return master.tensors }
        return try floatVariant(name)
    }

    /// Where `mode`'s weights come from: `/variants/<name>` or `/model`.
    public func source(for mode: PrecisionMode) -> String {
        mode.variant.flatMap { variantNames.contains($0) ? "/variants/\($0)" : nil } ?? "/model"
    }

    /// The stored number-format variants' names, in order.
    public var formatVariantNames: [String] {
        variantNames.filter { if case .format? = Precision(name: $0) { true } else { false } }
    }

    /// The stored searched assignments' names, in order.
    public var searchedVariantNames: [String] {
        variantNames.filter { if case .searched? = Precision(name: $0) { true } else { false } }
    }

    /// The quantized variant `name` (`QuantizedModel` for int8, `FormatModel` for a number
    /// format), validated (see `WeightFile.readInt8` and `WeightFile.readFormat`).
    public func variant<Model: VariantModel>(_ name: String, of _: Model.Type) throws -> Model.Stored {
        if let cached = quantized[name] as? Model.Stored { return cached }
        let stored = try Model.read(name, for: master, root: try root())
        quantized[name] = stored
        return stored
    }

    /// Stores `model` as `/variants/<its precision>` (see `WeightFile.writeInt8` and
    /// `WeightFile.writeFormat`), drops the recorded evaluation of that name, and returns the name.
    @discardableResult
    public func store<Model: VariantModel>(_ model: Model, calibration: [(String, HDF5Attribute)]) throws -> String {
        let name = model.precision.name
        try modify { root in
            try model.write(for: master, calibration: calibration, into: root)
            try Self.dropRecords(of: name, in: root)
        }
        return name
    }

    /// The recorded evaluations that belong to the weights the file holds now, by mode. A record
    /// whose `weights_digest` is not the digest of its weights any more (the weights changed after
    /// it was recorded, by another program) is left out, and named in `staleEvaluations`.
    public func evaluations() throws -> [RecordedEvaluation] {
        try recorded().filter { try isCurrent($0) }
    }

    /// The recorded evaluations whose weights changed after they were recorded.
    public func staleEvaluations() throws -> [String] {
        try recorded().filter { try !isCurrent($0) }.map(\.result.precision)
    }

    private func recorded() throws -> [RecordedEvaluation] {
        let file = try root()
        guard file.contains("evaluations") else { return [] }
        let group = try file.group("evaluations")
        return try group.children().map { try RecordedEvaluation(group: try group.group($0), classes: spec.classes) }
    }

    private func isCurrent(_ e: RecordedEvaluation) throws -> Bool {
        guard let digest = e.weightsDigest else { return true }
        return try weightsDigest(e.result.weights) == digest
    }

    /// The SHA-256 of the weights a row of the report ran with (`weights`: `/variants/<name>`, or
    /// `/model` for everything computed from the master): every dataset of that group, in path
    /// order, its path and its stored bytes; nil when the file holds no such variant.
    public func weightsDigest(_ weights: String) throws -> String? {
        let path = weights.hasPrefix("/variants/") ? String(weights.dropFirst()) : "model"
        if let cached = digests[path] { return cached }
        guard path == "model" || variantNames.contains(String(path.dropFirst("variants/".count))) else { return nil }
        let group = try root().group(path)
        var sha = SHA256()
        for dataset in try group.datasetPaths().sorted() {
            sha.update(Array(dataset.utf8) + [0])
            sha.update(try group.storedBytes(dataset))
        }
        let digest = sha.hex()
        digests[path] = digest
        return digest
    }

    // MARK: changes

    /// Changes the file safely: `body` modifies a copy, which is then renamed over the file. The
    /// store reads the new file when it next reads anything.
    public func modify(_ body: (HDF5Group) throws -> Void) throws {
        var names: [String] = []
        try WeightFile.modify(path) { root in
            try body(root)
            names = root.contains("variants") ? try root.group("variants").children() : []
        }
        changed(variants: names)
    }

    /// After a change: the old file's handle and what was read from it are dropped.
    private func changed(variants: [String]) {
        (opened, variantNames, floats, quantized, digests) = (nil, variants, [:], [:], [:])
    }

    /// Adds (or replaces) `/variants/<precision>`: the master rounded to that precision and stored
    /// in its own HDF5 type.
    public func export(_ precision: String) throws {
        try modify { root in
            try master.writeVariant(precision, into: root)
            try Self.dropRecords(of: precision, in: root)
        }
    }

    /// Removes `/evaluations/<name>`: a variant written anew has not been measured.
    private static func dropRecords(of name: String, in root: HDF5Group) throws {
        guard root.contains("evaluations") else { return }
        let evaluations = try root.group("evaluations")
        if evaluations.contains(name) { try evaluations.remove(name) }
    }

    /// Stores `results` under `/evaluations/<precision>`, replacing earlier ones of those names, each
    /// with the digest of the weights it ran with. A record of more images is replaced only with
    /// `replacingLarger` (see `largerRecords`).
    public func record(_ results: [RecordedEvaluation], replacingLarger: Bool = false) throws {
        if !replacingLarger,
            let larger = try largerRecords(results.map { ($0.result.precision, $0.result.images) }).first
        {
            throw DataError(file: path, problem: larger)
        }
        let results = try results.map {
            var r = $0
            r.weightsDigest = try weightsDigest(r.result.weights)
            return r
        }
        try modify { root in
            let evaluations = try root.groupCreatingIfNeeded("evaluations")
            for r in results {
                if evaluations.contains(r.result.precision) { try evaluations.remove(r.result.precision) }
                try r.write(into: try evaluations.createGroup(r.result.precision))
            }
        }
    }

    /// For each `(precision, images)` whose recorded evaluation holds more images: a sentence saying
    /// so (a smaller sample does not replace a larger one unasked).
    public func largerRecords(_ rows: [(precision: String, images: Int)]) throws -> [String] {
        let recorded = Dictionary(try evaluations().map { ($0.result.precision, $0.result.images) }) { a, _ in a }
        return rows.compactMap { row in
            recorded[row.precision].flatMap { n in
                n > row.images
                    ? "/evaluations/\(row.precision) holds \(n) images, more than these \(row.images)" : nil
            }
        }
    }

    /// The recorded `quantize --compare` report (`/comparisons/int8`, attribute `report`: its
    /// JSON), or nil.
    public func comparison() throws -> CompareReport? {
        let file = try root()
        guard file.contains("comparisons") else { return nil }
        let group = try file.group("comparisons")
        guard group.contains("int8") else { return nil }
        let g = try group.group("int8"), text = try WeightFile.string(g, "report")
        guard let report = try? JSONDecoder().decode(CompareReport.self, from: Data(text.utf8)),
            report.schema == ReportSchema.compare
        else {
            throw HDF5Error(
                file: path, path: g.path, message: "attribute report is not a \(ReportSchema.compare) report")
        }
        return report
    }

    /// Records a `quantize --compare` report under `/comparisons/int8`, replacing the one before.
    public func recordComparison(_ report: CompareReport) throws {
        try modify { root in try Self.write(report, into: root) }
    }

    /// Writes `report` as `/comparisons/int8` under `root`.
    private static func write(_ report: CompareReport, into root: HDF5Group) throws {
        let comparisons = try root.groupCreatingIfNeeded("comparisons")
        if comparisons.contains("int8") { try comparisons.remove("int8") }
        let g = try comparisons.createGroup("int8")
        try g.setAttribute("schema", .string(ReportSchema.compare))
        try g.setAttribute("recorded_at", .string(ISO8601DateFormatter().string(from: Date())))
        try g.setAttribute("report", .string(String(decoding: try JSONEncoder.precis.encode(report), as: UTF8.self)))
    }

    /// The datasets whose data carries no checksum (written before Precis checksummed every
    /// dataset), as paths from `/`.
    public func datasetsWithoutChecksum() throws -> [String] {
        let file = try root()
        return try file.datasetPaths().filter { path in
            let parts = path.split(separator: "/").map(String.init)
            let group = parts.count > 1 ? try file.group(parts.dropLast().joined(separator: "/")) : file
            return try !group.datasetInfo(parts[parts.count - 1]).checksummed
        }.map { "/" + $0 }
    }

    /// Rewrites the file in the current layout and HDF5 format from what it holds: model, master,
    /// training record, float variants written again from the master, int8 and number-format
    /// variants and recorded evaluations as they were read, every dataset with a checksum, in the
    /// HDF5 1.10 formats (superblock version 3). Returns false, and leaves the file alone, when it is
    /// already current.
    @discardableResult
    public func upgrade() throws -> Bool {
        guard try root().file.superblockVersion() < 3 || !datasetsWithoutChecksum().isEmpty else { return false }
        let file = try root()
        let rewrites =
            try int8VariantNames.map { try rewrite($0, QuantizedModel.self, file) }
            + formatVariantNames.map { try rewrite($0, FormatModel.self, file) }
            + searchedVariantNames.map { try rewrite($0, SearchedModel.self, file) }
        let evaluations = try evaluations(), comparison = try comparison()
        let kept = variantNames.filter {
            WeightFile.variantPrecisions.contains($0) || int8VariantNames.contains($0)
                || formatVariantNames.contains($0) || searchedVariantNames.contains($0)
        }
        try master.write(to: path, overwrite: true, variants: kept.filter(WeightFile.variantPrecisions.contains)) {
            root in
            for write in rewrites { try write(root) }
            if !evaluations.isEmpty {
                let group = try root.createGroup("evaluations")
                for e in evaluations { try e.write(into: try group.createGroup(e.result.precision)) }
            }
            if let comparison { try Self.write(comparison, into: root) }
        }
        changed(variants: kept)
        return true
    }

    /// What writes variant `name` of `file` again as it is stored, with the attributes its writer
    /// does not set itself.
    private func rewrite<Model: VariantModel>(_ name: String, _: Model.Type, _ file: HDF5Group) throws
        -> (HDF5Group) throws -> Void
    {
        let model = try Model.read(name, for: master, root: file).model, master = master
        let attributes = try WeightFile.attributes(
            of: try WeightFile.variantGroup(file, name), besides: Model.ownAttributes)
        return { root in try model.write(for: master, calibration: attributes, into: root) }
    }
}
