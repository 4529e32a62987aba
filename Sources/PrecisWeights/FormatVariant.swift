import PrecisCore

/// The attributes `writeFormat` sets on a number-format variant's group.
enum FormatAttribute: String, CaseIterable {
    case precision, weights, activations, rounding, layout, packing, equalization
    case weightRanges = "weight_ranges", floatLayers = "float_layers", foldedBatchNorm = "folded_batchnorm"
}

/// The attributes of a layer's group in a number-format variant.
enum FormatLayerAttribute: String, CaseIterable {
    case inputAmax = "input_amax"
    case inputScale = "input_scale", inputZeroPoint = "input_zero_point", inputQmin = "input_qmin", inputQmax =
        "input_qmax"
}

private typealias A = FormatAttribute
private typealias L = FormatLayerAttribute

extension WeightFile {
    /// Writes `model` as `/variants/<mode name>` under `root`, replacing one of that name.
    /// Each convolution and affine layer's group under `model/layers` holds:
    /// - `W`: uint8 codes `(vectors, length)`, one row per output channel holding its reduction
    ///   vector (a convolution's filter as C·FH·FW values; an affine layer's unit, W transposed);
    ///   4-bit codes packed two a byte, low nibble first, `(vectors, ⌈length/2⌉)`;
    /// - `W_block_scale`: uint8 `(vectors, blocks)`, E8M0 (MX) or E4M3 (NVFP4) codes;
    /// - `W_scale`: float32, `(1)` per tensor (OFP8, NVFP4) or `(vectors, groups)` (int4);
    /// - `W_zero_point`: uint8 `(vectors, groups)` (int4 with a zero point);
    /// - `b`: float32; and the input's calibration as attributes: `input_amax`, or `input_scale`,
    ///   `input_zero_point`, `input_qmin`, `input_qmax` for int8 inputs.
    /// The variant's `float_layers` lists the convolution and affine layers left in float32 (their
    /// tensors are `/model`'s); the name of such a mixed variant ends in `-mixed`. Its
    /// `folded_batchnorm` names the batch normalizations folded into the layer before them: that
    /// layer's `W` and `b` hold the folded values, which a variant runs with as `/model` folds.
    /// An equalized variant (`-cle`) holds, under `equalization/<layer>`, the `scale` and `shift`
    /// (float64, one per output channel) of each pair's first layer (see `Equalization`): it runs with
    /// `/model`'s tensors equalized by them, and its `b` are those.
    /// `calibration` adds attributes to the variant.
    func writeFormat(_ model: FormatModel, calibration: [(String, HDF5Attribute)], into root: HDF5Group) throws {
        let name = model.name
        let variants = try root.groupCreatingIfNeeded("variants")
        if variants.contains(name) { try variants.remove(name) }
        let v = try variants.createGroup(name)
        try v.setAttribute(A.precision.rawValue, .string(name))
        try v.setAttribute(A.weights.rawValue, .string(model.mode.weights.block?.text ?? ""))
        try v.setAttribute(A.activations.rawValue, .string(model.mode.activations.map(inputText) ?? "float32"))
        try v.setAttribute(A.rounding.rawValue, .string(model.mode.rounding.text))
        try v.setAttribute(
            A.layout.rawValue,
            .string("W rows: output channels; columns: the reduction axis (C*FH*FW, or the affine inputs)"))
        try v.setAttribute(
            A.packing.rawValue,
            .string(packingText(model.mode.weights.elementBits)))
        if case .int4(let w) = model.mode.weights {
            try v.setAttribute(A.weightRanges.rawValue, .string(w.method.rawValue))
        }
        let floatLayers = quantizedLayers(spec).filter { model.weights[$0] == nil }.map { spec.layerNames[$0] }
        try v.setAttribute(A.floatLayers.rawValue, .string(floatLayers.joined(separator: " ")))
        for (key, value) in calibration { try v.setAttribute(key, value) }
        try writeFolded(model.folded, on: v)
        if let e = model.equalization { try writeEqualization(e, on: v) }
        let layers = try v.createGroup("model").createGroup("layers"),
            tensors = try spec.folding(model.folded, in: try model.tensors(from: tensors, spec: spec))
        for (i, t) in model.weights.sorted(by: { $0.key < $1.key }) {
            let layer = spec.layerNames[i], g = try layers.createGroup(layer)
            try g.setAttribute("kind", .string(spec.layers[i].kind))
            let bits = t.format.elementBits
            try g.write(
                "W", shape: [t.vectors, packedBytes(t.length, bits)], packCodes(t.codes, t.vectors, t.length, bits))
            if !t.blockScales.isEmpty {
                try g.write("W_block_scale", shape: [t.vectors, t.blocksPerVector], t.blockScales)
            }
            if !t.scales.isEmpty {
                try g.write("W_scale", shape: t.scales.count == 1 ? [1] : [t.vectors, t.blocksPerVector], t.scales)
            }
            if !t.zeroPoints.isEmpty {
                try g.write("W_zero_point", shape: [t.vectors, t.blocksPerVector], t.zeroPoints)
            }
            let b = tensors[tensorKey(layer, "b")]!
            try g.write("b", shape: b.shape, b.data.map(Float.init))
            switch model.inputs[i] {
            case .amax(let amax)?:
                try g.setAttribute(L.inputAmax.rawValue, .double(Double(amax)))
            case .range(let r)?:
                try g.setAttribute(L.inputScale.rawValue, .double(r.scale))
                try g.setAttribute(L.inputZeroPoint.rawValue, .int(r.zeroPoint))
                try g.setAttribute(L.inputQmin.rawValue, .int(r.qmin))
                try g.setAttribute(L.inputQmax.rawValue, .int(r.qmax))
            case nil:
                break
            }
        }
    }

    /// The number-format variant `/variants/<name>` for `spec`, validated: shapes and types, codes
    /// that stand for finite values, valid scales and zero points, finite biases and a calibration
    /// for every input the mode scales. Returns the model and the float tensors it runs with (its
    /// own biases in place of the master's).
    func readFormat(_ name: String, root: HDF5Group) throws -> (model: FormatModel, tensors: [String: Tensor<Double>]) {
        guard case .format(let mode, let mixed)? = Precision(name: name), let block = mode.weights.block else {
            throw HDF5Error(file: root.file.path, path: "/variants/\(name)", message: "is not a number-format variant")
        }
        let v = try Self.variantGroup(root, name), path = root.file.path, layers = try v.group("model/layers")
        let floatLayers =
            try v.attribute(A.floatLayers.rawValue) == nil
            ? [] : try Self.string(v, A.floatLayers.rawValue).split(separator: " ").map(String.init)
        let quantizable = quantizedLayers(spec).map { spec.layerNames[$0] }
        if let bad = floatLayers.first(where: { !quantizable.contains($0) }) {
            throw HDF5Error(
                file: path, path: v.path,
                message: "float_layers names '\(bad)', which is not a convolution or affine layer of the network")
        }
        guard mixed == !floatLayers.isEmpty else {
            throw HDF5Error(
                file: path, path: v.path,
                message: "a variant keeps layers in float32 exactly when its name ends in -mixed")
        }
        let folded = try readFolded(v), equalization = mode.equalized ? try readEqualization(v) : nil
        var model = FormatModel(
            mode: mode, weights: [:], inputs: [:], mixed: !floatLayers.isEmpty, folded: folded,
            equalization: equalization)
        var floats = try model.tensors(from: tensors, spec: spec)
        let foldedTensors = try spec.folding(folded, in: floats)
        for layer in try spec.geometry() where !floatLayers.contains(layer.name) {
            guard let gemm = layer.gemm else { continue }
            let g = try layers.group(layer.name)
            func fail(_ message: String) -> HDF5Error { HDF5Error(file: path, path: g.path, message: message) }
            func read<E: HDF5Scalar>(_ t: String, _ shape: [Int], as: E.Type) throws -> [E] {
                let info = try g.datasetInfo(t)
                guard info.shape == shape && info.type == E.hdf5Type else {
                    throw fail(
                        "\(t) must be \(E.hdf5Type.rawValue) of shape \(shapeText(shape)), "
                            + "is \(info.typeName) \(shapeText(info.shape))")
                }
                return try g.read(t, as: E.self).values
            }
            let (vectors, length) = (gemm.channels, gemm.length)
            var t = FormatTensor(
                format: mode.weights, vectors: vectors, length: length, codes: [], blockScales: [], scales: [],
                zeroPoints: [])
            let blocks = t.blocksPerVector
            let bits = mode.weights.elementBits
            t.codes = unpackCodes(
                try read("W", [vectors, packedBytes(length, bits)], as: UInt8.self), vectors, length, bits)
            let storage = block.storage
            if let bad = t.codes.firstIndex(where: { Int($0) >= 1 << bits || !block.isFiniteCode($0) }) {
                throw fail("W holds code 0x\(String(t.codes[bad], radix: 16)) at element \(bad), not a finite value")
            }
            if let valid = storage.blockScale {
                t.blockScales = try read("W_block_scale", [vectors, blocks], as: UInt8.self)
                if let bad = t.blockScales.firstIndex(where: { !valid($0) }) {
                    throw fail("W_block_scale holds 0x\(String(t.blockScales[bad], radix: 16)) at \(bad), not a scale")
                }
            }
            switch storage.scales {
            case .tensor: t.scales = try read("W_scale", [1], as: Float.self)
            case .perBlock: t.scales = try read("W_scale", [vectors, blocks], as: Float.self)
            case .none: break
            }
            if t.scales.contains(where: { !($0.isFinite && $0 >= 0) }) {
                throw fail("W_scale holds a negative or non-finite scale")
            }
            if storage.zeroPoints {
                t.zeroPoints = try read("W_zero_point", [vectors, blocks], as: UInt8.self)
                if t.zeroPoints.contains(where: { $0 > 15 }) { throw fail("W_zero_point holds a value beyond 15") }
            }
            let bias = try read("b", [vectors], as: Float.self)
            guard bias.allSatisfy(\.isFinite), t.decoded().allSatisfy(\.isFinite) else {
                throw fail("holds a non-finite weight or bias")
            }
            if let foldedBias = foldedTensors[layer.key("b")],
                folded.contains(where: { spec.inputs(of: $0) == [layer.index] })
            {
                // The bias runs as `/model`'s, folded: the stored one must be that.
                guard bias == foldedBias.data.map(Float.init) else {
                    throw fail("b is not /model's bias with the batch normalization after it folded in")
                }
            } else {
                floats[layer.key("b")] = Tensor(shape: [vectors], data: bias.map(Double.init))
            }
            model.weights[layer.index] = t
            guard mode.needsCalibration else { continue }
            if mode.activations == .int8 {
                let (scale, zero, qmin, qmax) = (
                    try Self.number(g, L.inputScale.rawValue), Int(try Self.number(g, L.inputZeroPoint.rawValue)),
                    Int(try Self.number(g, L.inputQmin.rawValue)), Int(try Self.number(g, L.inputQmax.rawValue))
                )
                guard scale > 0 && scale.isFinite, (qmin, qmax) == (0, 255), qmin <= zero, zero <= qmax else {
                    throw fail("has a bad input range (scale \(scale), zero point \(zero), codes \(qmin)...\(qmax))")
                }
                model.inputs[layer.index] = .range(QuantRange(scale: scale, zeroPoint: zero, qmin: qmin, qmax: qmax))
            } else {
                let amax = try Self.number(g, L.inputAmax.rawValue)
                guard amax.isFinite && amax >= 0 else { throw fail("has a bad input_amax (\(amax))") }
                model.inputs[layer.index] = .amax(Float(amax))
            }
        }
        return (model, floats)
    }
}

extension WeightFile {
    /// Writes `e` under `v/equalization`, one group per pair's first layer, and says what it is.
    func writeEqualization(_ e: Equalization, on v: HDF5Group) throws {
        try v.setAttribute(
            A.equalization.rawValue,
            .string(
                "cross-layer equalization (Nagel et al. 2019) of \(e.scales.count) layer pairs, high biases absorbed "
                    + "on the calibration images: each first layer's output channel divided by equalization/<layer>/"
                    + "scale and less its shift, the next layer's weights and bias making up for it"))
        let g = try v.createGroup("equalization")
        for (i, s) in e.scales.sorted(by: { $0.key < $1.key }) {
            let layer = try g.createGroup(spec.layerNames[i])
            try layer.write("scale", shape: [s.count], s)
            try layer.write("shift", shape: [s.count], e.shifts[i] ?? Array(repeating: 0, count: s.count))
        }
    }

    /// The equalization under `v/equalization`: a group for the first layer of every pair the network
    /// has, each with as many positive scales and non-negative shifts as the layer has output channels.
    func readEqualization(_ v: HDF5Group) throws -> Equalization {
        let g = try v.group("equalization"), geometry = try spec.geometry(), pairs = try spec.equalizedPairs()
        if let bad = try g.children().first(where: { c in !pairs.contains { spec.layerNames[$0.first] == c } }) {
            throw HDF5Error(
                file: v.file.path, path: g.path, message: "names '\(bad)', which is not the first layer of a pair")
        }
        var e = Equalization()
        for p in pairs {
            let name = spec.layerNames[p.first], channels = geometry[p.first].gemm!.channels
            let layer = try g.group(name)
            func fail(_ message: String) -> HDF5Error {
                HDF5Error(file: v.file.path, path: layer.path, message: message)
            }
            for t in ["scale", "shift"] {
                let info = try layer.datasetInfo(t)
                guard info.shape == [channels] && info.type == .float64 else {
                    throw fail(
                        "\(t) must be float64 of shape (\(channels)), is \(info.typeName) \(shapeText(info.shape))")
                }
            }
            let (s, c) = (
                try layer.read("scale", as: Double.self).values, try layer.read("shift", as: Double.self).values
            )
            guard s.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw fail("scale holds a value that is not positive")
            }
            guard c.allSatisfy({ $0 >= 0 && $0.isFinite }), p.absorbs || c.allSatisfy({ $0 == 0 }) else {
                throw fail("shift holds a negative value, or a shift the next layer cannot absorb")
            }
            (e.scales[p.first], e.shifts[p.first]) = (s, c)
        }
        return e
    }
}

/// How a variant's attributes describe a layer input's format.
func inputText(_ format: OperandFormat) -> String {
    format.block?.text ?? "uint8 with a zero point per tensor (calibrated, MSE)"
}

/// How codes of `bits` bits are packed, as a variant's `packing` attribute says it.
func packingText(_ bits: Int) -> String {
    switch bits {
    case 8...: return "one code a byte"
    case 4: return "two 4-bit codes a byte, low nibble first"
    case 6: return "four 6-bit codes in three bytes, code i at bits 6i to 6i+5 of its row, lowest bit first"
    default: return "\(bits)-bit codes, code i at bits \(bits)i to \(bits)i+\(bits - 1) of its row, lowest bit first"
    }
}

/// Bytes of a row of `length` codes of `bits` bits, packed.
func packedBytes(_ length: Int, _ bits: Int) -> Int { (length * bits + 7) / 8 }

/// Codes `(rows, length)` of `bits` bits packed row by row: code `i` of a row occupies bits
/// `bits·i ..< bits·(i+1)` of the row's bytes, counting from the lowest bit of the first byte (4-bit
/// codes: two a byte, low nibble first; 6-bit codes: four in three bytes). Each row ends on a byte.
func packCodes(_ codes: [UInt8], _ rows: Int, _ length: Int, _ bits: Int) -> [UInt8] {
    guard bits < 8 else { return codes }
    let per = packedBytes(length, bits)
    var out = [UInt8](repeating: 0, count: rows * per)
    for r in 0..<rows {
        for i in 0..<length {
            let c = UInt16(codes[r * length + i]) << ((bits * i) % 8), byte = r * per + bits * i / 8
            out[byte] |= UInt8(truncatingIfNeeded: c)
            if c > 0xFF { out[byte + 1] |= UInt8(c >> 8) }
        }
    }
    return out
}

/// The inverse of `packCodes`.
func unpackCodes(_ bytes: [UInt8], _ rows: Int, _ length: Int, _ bits: Int) -> [UInt8] {
    guard bits < 8 else { return bytes }
    let per = packedBytes(length, bits), mask = UInt16(1 << bits) - 1
    return (0..<rows * length).map { k in
        let (r, i) = (k / length, k % length), byte = r * per + bits * i / 8
        let pair = UInt16(bytes[byte]) | (byte + 1 < (r + 1) * per ? UInt16(bytes[byte + 1]) << 8 : 0)
        return UInt8((pair >> ((bits * i) % 8)) & mask)
    }
}
