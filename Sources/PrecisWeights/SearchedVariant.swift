import PrecisCore

/// A stored searched assignment as it runs.
public struct StoredSearched: StoredVariant {
    public let network: SearchedNetwork
    public let tensors: [String: Tensor<Double>]
    public var model: SearchedModel { network.model }
}

/// The attributes `writeSearched` sets on a searched variant's group.
enum SearchedAttribute: String, CaseIterable {
    case precision, assignment, layout
    case foldedBatchNorm = "folded_batchnorm"
}

private typealias A = SearchedAttribute

extension WeightFile {
    /// Writes `model` as `/variants/search-<goal>` under `root`, replacing one of that name. The
    /// variant's `assignment` names every convolution and affine layer's candidate
    /// (`00_conv1=nvfp4 02_conv2=int8 ...`). Under its own `variants` group it holds one part per
    /// number format and one for int8, each laid out as that kind of variant is (the layers of the
    /// other candidates are its `float_layers`); under `model/layers`, each float16 layer's `W` and
    /// `b` in IEEE half (folded). float32 layers are `/model`'s. `calibration` adds attributes.
    func writeSearched(_ model: SearchedModel, calibration: [(String, HDF5Attribute)], into root: HDF5Group) throws {
        let variants = try root.groupCreatingIfNeeded("variants")
        if variants.contains(model.name) { try variants.remove(model.name) }
        let v = try variants.createGroup(model.name)
        try v.setAttribute(A.precision.rawValue, .string(model.name))
        let assignment = model.assignment(spec).sorted { $0.key < $1.key }
        try v.setAttribute(
            A.assignment.rawValue,
            .string(assignment.map { "\(spec.layerNames[$0.key])=\($0.value)" }.joined(separator: " ")))
        try v.setAttribute(
            A.layout.rawValue,
            .string(
                "each layer in the candidate the assignment names: number formats and int8 as the variants under "
                    + "variants/ hold them, float16 layers' W and b (folded) under model/layers, float32 from /model"))
        for (key, value) in calibration { try v.setAttribute(key, value) }
        try writeFolded(model.folded, on: v)
        for part in model.formats { try writeFormat(part, calibration: [], into: v) }
        if let int8 = model.int8 { try writeInt8(int8, calibration: [], into: v) }
        let halfLayers = assignment.filter { $0.value == .float16 }.map { spec.layerNames[$0.key] }
        guard !halfLayers.isEmpty else { return }
        let layers = try v.createGroup("model").createGroup("layers")
        for layer in halfLayers {
            let g = try layers.createGroup(layer)
            try g.setAttribute("precision", .string("float16"))
            for t in ["W", "b"] {
                let m = model.half[tensorKey(layer, t)]!
                try g.write(t, shape: m.shape, m.data.map { Float16($0) })
            }
        }
    }

    /// The searched variant `/variants/<name>`, validated: an assignment naming every convolution and
    /// affine layer once with a candidate, one part for each number format and for int8 holding
    /// exactly the layers assigned to it (each read as its own kind of variant), the default int8
    /// scheme, the same folded normalizations throughout, and finite float16 layers of the right shapes.
    func readSearched(_ name: String, root: HDF5Group) throws -> StoredSearched {
        guard case .searched(let goal)? = Precision(name: name) else {
            throw HDF5Error(file: root.file.path, path: "/variants/\(name)", message: "is not a searched variant")
        }
        let v = try Self.variantGroup(root, name)
        func fail(_ message: String) -> HDF5Error { HDF5Error(file: root.file.path, path: v.path, message: message) }
        let quantizable = quantizedLayers(spec)
        var assigned: [Int: SearchCandidate] = [:]
        for item in try Self.string(v, A.assignment.rawValue).split(separator: " ") {
            let pair = item.split(separator: "=", omittingEmptySubsequences: false).map(String.init)
            guard pair.count == 2, let i = spec.layerNames.firstIndex(of: pair[0]), quantizable.contains(i),
                assigned[i] == nil, let c = SearchCandidate(name: pair[1])
            else { throw fail("assignment holds '\(item)', not a convolution or affine layer once with a candidate") }
            assigned[i] = c
        }
        guard assigned.count == quantizable.count else {
            throw fail("assignment names \(assigned.count) of the \(quantizable.count) convolution and affine layers")
        }
        let folded = try readFolded(v)
        let parts = v.contains("variants") ? try v.group("variants").children() : []
        var formats: [FormatModel] = [], int8: QuantizedModel?
        for part in parts {
            let layers: Set<Int>, candidate: SearchCandidate, partFolded: Set<Int>
            switch Precision(name: part) {
            case .format(let mode, _)?:
                let (model, runs) = try readFormat(part, root: v)
                guard runs == tensors else { throw fail("part '\(part)' holds a bias that is not /model's") }
                (layers, candidate, partFolded) = (Set(model.weights.keys), .format(mode), model.folded)
                formats.append(model)
            case .int8(Precision.defaultInt8Scheme, let kind)? where kind != .dynamic:
                let model = try readInt8(part, root: v).model
                (layers, candidate, partFolded) = (Set(model.layers.keys), .int8, model.folded)
                int8 = model
            default:
                throw fail("holds part '\(part)', which is neither a number format nor int8 of the default scheme")
            }
            guard layers == Set(assigned.filter { $0.value == candidate }.keys), partFolded == folded else {
                throw fail("part '\(part)' does not hold the layers the assignment gives \(candidate), folded alike")
            }
        }
        let missing = Set(assigned.values).subtracting([.float16, .float32]).subtracting(
            formats.map { .format($0.mode) } + (int8 == nil ? [] : [.int8]))
        if let c = missing.first { throw fail("has no part for \(c), which the assignment names") }
        let shapes = Dictionary(uniqueKeysWithValues: try spec.tensorShapes().map { ($0.name, $0.shape) })
        var half: [String: Tensor<Double>] = [:]
        for (i, _) in assigned.filter({ $0.value == .float16 }) {
            let g = try v.group("model/layers/\(spec.layerNames[i])")
            for t in ["W", "b"] {
                let key = tensorKey(spec.layerNames[i], t), info = try g.datasetInfo(t), shape = shapes[key]!
                guard info.shape == shape && info.type == .float16 else {
                    throw HDF5Error(
                        file: root.file.path, path: g.path + "/" + t,
                        message:
                            "must be float16 of shape \(shapeText(shape)), is \(info.typeName) \(shapeText(info.shape))"
                    )
                }
                let x = try g.read(t, as: Float16.self).values.map(Double.init)
                guard x.allSatisfy(\.isFinite) else {
                    throw HDF5Error(file: root.file.path, path: g.path + "/" + t, message: "holds a non-finite value")
                }
                half[key] = Tensor(shape: shape, data: x)
            }
        }
        let model = SearchedModel(goal: goal, formats: formats, int8: int8, half: half, folded: folded)
        return StoredSearched(network: try model.network(spec: spec, master: tensors), tensors: tensors)
    }
}

extension SearchedModel: VariantModel {
    public static var ownAttributes: [String] { SearchedAttribute.allCases.map(\.rawValue) }

    public func write(for file: WeightFile, calibration: [(String, HDF5Attribute)], into root: HDF5Group) throws {
        try file.writeSearched(self, calibration: calibration, into: root)
    }

    public static func read(_ name: String, for file: WeightFile, root: HDF5Group) throws -> StoredSearched {
        try file.readSearched(name, root: root)
    }
}
