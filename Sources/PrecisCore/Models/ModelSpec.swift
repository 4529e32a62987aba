import Foundation

/// How a layer's weights are drawn: `normal(std)`, He (`std = sqrt(2 / fanIn)`) or Xavier
/// (`std = sqrt(1 / fanIn)`, the book's form); biases start at zero.
public enum WeightInit: Equatable, Sendable, CustomStringConvertible {
    case normal(Double)
    case he
    case xavier

    /// The standard deviation for a layer with `fanIn` inputs per output.
    public func std(fanIn: Int) -> Double {
        switch self {
        case .normal(let s): return s
        case .he: return (2 / Double(fanIn)).squareRoot()
        case .xavier: return (1 / Double(fanIn)).squareRoot()
        }
    }

    /// Parses `he`, `xavier` or `normal:0.01`.
    public init(parsing text: String) throws {
        switch text.lowercased() {
        case "he": self = .he
        case "xavier": self = .xavier
        case let s where s.hasPrefix("normal:"):
            guard let std = Double(s.dropFirst(7)), std > 0, std <= 10 else {
                throw ModelError.badSpec("normal:STD takes a standard deviation in (0, 10]")
            }
            self = .normal(std)
        default: throw ModelError.badSpec("unknown weight init '\(text)' (he, xavier, normal:STD)")
        }
    }

    public var description: String {
        switch self {
        case .normal(let s): return "normal:\(s)"
        case .he: return "he"
        case .xavier: return "xavier"
        }
    }
}

/// A convolution's geometry: `filters` outputs, a `kernel` of (height, width), `strides` and
/// `dilations` along (height, width), `pads` of zeros (top, left, bottom, right) and `groups`: the
/// input channels and the filters split into that many groups, each filter reading its group's
/// channels only (depthwise when groups equal the input channels).
public struct ConvolutionSpec: Equatable, Sendable {
    public var filters: Int
    public var kernel: [Int], strides: [Int], pads: [Int], dilations: [Int]
    public var groups: Int

    public init(filters: Int, kernel: [Int], strides: [Int], pads: [Int], dilations: [Int] = [1, 1], groups: Int = 1) {
        (self.filters, self.kernel, self.strides, self.pads) = (filters, kernel, strides, pads)
        (self.dilations, self.groups) = (dilations, groups)
    }

    /// A square kernel with one stride and the same padding on every side (the book's convolution).
    public init(filters: Int, size: Int, stride: Int = 1, pad: Int = 0) {
        self.init(filters: filters, kernel: [size, size], strides: [stride, stride], pads: [pad, pad, pad, pad])
    }

    /// Whether it is the book's kind: square, one stride, one pad, no dilation, one group.
    public var isPlain: Bool {
        kernel[0] == kernel[1] && strides[0] == strides[1] && Set(pads).count == 1 && dilations == [1, 1]
            && groups == 1
    }

    /// The output's (height, width) for an input of (height, width), or nil when the kernel does not fit.
    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int)? {
        let eh = h + pads[0] + pads[2] - dilations[0] * (kernel[0] - 1) - 1
        let ew = w + pads[1] + pads[3] - dilations[1] * (kernel[1] - 1) - 1
        guard eh >= 0, ew >= 0 else { return nil }
        return (eh / strides[0] + 1, ew / strides[1] + 1)
    }
}

/// One layer of a model, as the user writes it and the weight file stores it.
public enum LayerSpec: Equatable, Sendable, CustomStringConvertible {
    case convolution(ConvolutionSpec)
    case maxPooling(size: Int, stride: Int, pad: Int)
    case averagePooling(size: Int, stride: Int, pad: Int)
    case affine(units: Int)
    case relu
    case dropout(ratio: Double)
    case batchNormalization
    /// The network's input normalized per channel, `(x - mean) / std`, with the mean and standard
    /// deviation the layer holds as tensors (the training images' own, or given at import).
    case inputNormalization
    /// An elementwise activation besides ReLU: ReLU6 and clip, LeakyReLU, sigmoid, hard sigmoid, hard swish.
    case activation(ActivationFunction)
    /// Each channel's mean over its pixels: `(C, H, W) -> (C, 1, 1)`.
    case globalAveragePooling
    /// A node of several inputs (`ModelSpec.inputs(of:)`): their sum, concatenation or product.
    case merge(MergeKind)

    /// The book's convolution: square, one stride, the same padding on every side.
    public static func convolution(filters: Int, size: Int, stride: Int, pad: Int) -> LayerSpec {
        .convolution(ConvolutionSpec(filters: filters, size: size, stride: stride, pad: pad))
    }

    /// Whether it is a merge of several inputs.
    public var isMerge: Bool {
        switch self {
        case .merge: return true
        default: return false
        }
    }

    /// The short name used in layer names (`00_conv1`) and the text syntax.
    public var keyword: String {
        switch self {
        case .convolution: return "conv"
        case .maxPooling: return "maxpool"
        case .averagePooling: return "avgpool"
        case .affine: return "affine"
        case .relu: return "relu"
        case .dropout: return "dropout"
        case .batchNormalization: return "batchnorm"
        case .inputNormalization: return "normalize"
        case .activation(let f): return f.keyword
        case .globalAveragePooling: return "gap"
        case .merge(.multiply): return "mul"
        case .merge(let m): return m.rawValue
        }
    }

    /// The text syntax, e.g. `conv(16,3,stride=1,pad=1)`; `LayerSpec.parse` reads it back.
    public var description: String {
        switch self {
        case .convolution(let c):
            let pair = { (v: [Int]) in v[0] == v[1] ? "\(v[0])" : "\(v[0])x\(v[1])" }
            let pads = Set(c.pads).count == 1 ? "\(c.pads[0])" : c.pads.map(String.init).joined(separator: "x")
            let extra =
                (c.dilations == [1, 1] ? "" : ",dilation=\(pair(c.dilations))")
                + (c.groups == 1 ? "" : ",groups=\(c.groups)")
            return "conv(\(c.filters),\(pair(c.kernel)),stride=\(pair(c.strides)),pad=\(pads)\(extra))"
        case let .maxPooling(k, s, p): return "maxpool(\(k),stride=\(s),pad=\(p))"
        case let .averagePooling(k, s, p): return "avgpool(\(k),stride=\(s),pad=\(p))"
        case let .affine(u): return "affine(\(u))"
        case .relu: return "relu"
        case let .dropout(r): return "dropout(\(r))"
        case .batchNormalization: return "batchnorm"
        case .inputNormalization: return "normalize"
        case .activation(let f):
            let args = f.arguments.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
            if f == .clip(min: 0, max: 6) { return "relu6" }
            return args.isEmpty ? f.keyword : "\(f.keyword)(\(args))"
        case .globalAveragePooling: return "gap"
        case .merge: return keyword
        }
    }
}

/// Bad model descriptions: unknown layers, bad arguments, shapes that do not fit.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case badSpec(String)

    public var description: String {
        switch self {
        case .badSpec(let m): return m
        }
    }
}

/// A network: input shape, layers, how they connect, weight initialization. The layers form a
/// directed acyclic graph in topological order: each layer reads the one before it unless `wiring`
/// says otherwise, so a chain is a graph without wiring. The last layer's output is the network's,
/// its size the number of classes; the loss (softmax with cross-entropy) is implicit after it.
public struct ModelSpec: Equatable, Sendable {
    /// A short name (`simple`, `deep`, or `custom`).
    public var name: String
    /// `(C, H, W)` of one input image.
    public var inputShape: [Int]
    public var layers: [LayerSpec]
    /// The inputs of every layer that does not read just the layer before it, by layer index:
    /// indices of earlier layers, -1 for the network's input.
    public var wiring: [Int: [Int]]
    public var weightInit: WeightInit

    public init(
        name: String, inputShape: [Int] = [1, 28, 28], layers: [LayerSpec], wiring: [Int: [Int]] = [:],
        weightInit: WeightInit
    ) {
        self.name = name
        self.inputShape = inputShape
        self.layers = layers
        self.wiring = wiring.filter { $0.value != [$0.key - 1] }
        self.weightInit = weightInit
    }

    /// The layers whose outputs layer `i` reads (-1: the network's input).
    public func inputs(of i: Int) -> [Int] { wiring[i] ?? [i - 1] }

    /// Whether every layer reads the one before it.
    public var isChain: Bool { wiring.isEmpty }

    /// The layers that read each layer's output, in order (a merge reading it twice twice).
    public var readers: [[Int]] {
        var r = [[Int]](repeating: [], count: layers.count)
        for i in layers.indices { for j in inputs(of: i) where j >= 0 { r[j].append(i) } }
        return r
    }

    /// How many layers read each layer's output.
    public var consumers: [Int] { readers.map(\.count) }

    /// The name by which the text syntax refers to the output of layer `j`: its layer name, or
    /// `input`.
    public func sourceName(_ j: Int) -> String { j < 0 ? "input" : layerNames[j] }

    /// The book's SimpleConvNet: conv 30×5×5 - ReLU - pool 2 - affine 100 - ReLU - affine 10, N(0, 0.01²).
    public static let simpleConvNet = ModelSpec(
        name: "simple",
        layers: [
            .convolution(filters: 30, size: 5, stride: 1, pad: 0), .relu, .maxPooling(size: 2, stride: 2, pad: 0),
            .affine(units: 100), .relu, .affine(units: 10),
        ], weightInit: .normal(0.01))

    /// The book's DeepConvNet (ch. 8): six 3×3 convolutions in three pooled blocks, affine 50,
    /// dropout 0.5, affine 10, dropout 0.5; He init.
    public static let deepConvNet = ModelSpec(
        name: "deep",
        layers: [
            .convolution(filters: 16, size: 3, stride: 1, pad: 1), .relu,
            .convolution(filters: 16, size: 3, stride: 1, pad: 1), .relu, .maxPooling(size: 2, stride: 2, pad: 0),
            .convolution(filters: 32, size: 3, stride: 1, pad: 1), .relu,
            .convolution(filters: 32, size: 3, stride: 1, pad: 2), .relu, .maxPooling(size: 2, stride: 2, pad: 0),
            .convolution(filters: 64, size: 3, stride: 1, pad: 1), .relu,
            .convolution(filters: 64, size: 3, stride: 1, pad: 1), .relu, .maxPooling(size: 2, stride: 2, pad: 0),
            .affine(units: 50), .relu, .dropout(ratio: 0.5), .affine(units: 10), .dropout(ratio: 0.5),
        ], weightInit: .he)

    /// He et al. 2016's ResNet-20 for CIFAR, in the text syntax: a 3×3 stem of 16 channels, three
    /// stages of three basic blocks (two 3×3 convolutions with batch normalization and ReLU, and a
    /// residual sum) of 16, 32 and 64 channels, the last two starting with stride 2 and a projection
    /// shortcut (a 1×1 convolution with batch normalization) where the shape changes, global average
    /// pooling and one affine layer: 0.27 million weights.
    public static var resNet20Text: String {
        var text = ["conv(16,3,pad=1) batchnorm relu :s0"], channels = 16, block = 0
        for (width, stride) in [(16, 1), (32, 2), (64, 2)] {
            for i in 0..<3 {
                let s = i == 0 ? stride : 1, input = "s\(block)"
                text.append(
                    "conv(\(width),3,stride=\(s),pad=1) batchnorm relu conv(\(width),3,pad=1) batchnorm :m\(block)")
                if s == 1 && width == channels {
                    text.append("add(m\(block),\(input))")
                } else {
                    text.append("@\(input) conv(\(width),1,stride=\(s)) batchnorm add(m\(block))")
                }
                block += 1
                text.append("relu :s\(block)")
                channels = width
            }
        }
        return (text + ["gap affine(10)"]).joined(separator: " ")
    }

    /// A MobileNetV2 (Sandler et al. 2018) sized for 28×28 images: a 3×3 stem of 16 channels at full
    /// resolution, then inverted residual blocks (a 1×1 expansion by t, a 3×3 depthwise convolution,
    /// a 1×1 linear projection, each with batch normalization, ReLU6 after the first two, and a
    /// residual sum where the stride is 1 and the channels match) as (t, channels, blocks, stride):
    /// (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 1, 1); a 1×1 convolution to
    /// 320 channels, global average pooling and one affine layer. The resolution goes 28, 14, 7, 4.
    public static var mobileNetV2Text: String {
        var text = ["conv(16,3,pad=1) batchnorm relu6 :s0"], channels = 16, block = 0
        for (t, width, count, stride) in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 1, 1)] {
            for i in 0..<count {
                let s = i == 0 ? stride : 1, hidden = channels * t
                if t != 1 { text.append("conv(\(hidden),1) batchnorm relu6") }
                text.append(
                    "conv(\(hidden),3,stride=\(s),pad=1,groups=\(hidden)) batchnorm relu6 conv(\(width),1) batchnorm")
                if s == 1 && width == channels { text.append("add(s\(block))") }
                block += 1
                text.append(":s\(block)")
                channels = width
            }
        }
        return (text + ["conv(320,1) batchnorm relu6 gap affine(10)"]).joined(separator: " ")
    }

    /// A model by name (`simple`, `deep`, `resnet20`, `mobilenetv2`) or by its layer list in the text syntax, e.g.
    /// `conv(6,5,pad=2) relu maxpool(2) conv(16,5) relu maxpool(2) affine(120) relu affine(84) relu affine(10)`.
    public static func named(_ text: String, weightInit: WeightInit? = nil, inputShape: [Int] = [1, 28, 28]) throws
        -> ModelSpec
    {
        var spec: ModelSpec
        switch text {
        case "simple": spec = .simpleConvNet
        case "deep": spec = .deepConvNet
        case "resnet20", "mobilenetv2":
            let (layers, wiring) = try LayerSpec.parseGraph(text == "resnet20" ? resNet20Text : mobileNetV2Text)
            spec = ModelSpec(name: text, layers: layers, wiring: wiring, weightInit: .he)
        default:
            let (layers, wiring) = try LayerSpec.parseGraph(text)
            spec = ModelSpec(name: "custom", layers: layers, wiring: wiring, weightInit: .he)
        }
        spec.inputShape = inputShape
        if let weightInit { spec.weightInit = weightInit }
        _ = try spec.shapes()
        return spec
    }

    /// Whether the network normalizes its input per channel (an `inputNormalization` reads the input).
    public var normalizesInput: Bool { layers.indices.contains { layers[$0] == .inputNormalization } }

    /// The same network with an input normalization in front, which every layer that read the input
    /// now reads; the network itself when it has one.
    public func normalizingInput() -> ModelSpec {
        guard !normalizesInput else { return self }
        var wired: [Int: [Int]] = [:]
        for i in layers.indices { wired[i + 1] = inputs(of: i).map { $0 + 1 } }
        return ModelSpec(
            name: name, inputShape: inputShape, layers: [.inputNormalization] + layers, wiring: wired,
            weightInit: weightInit)
    }

    /// The text form of the layers: `LayerSpec.parseGraph` reads it back. A layer that does not
    /// read the one before it is preceded by `@NAME`; a merge lists its inputs, `add(NAME,NAME)`.
    public var layerText: String {
        layers.indices.map { i in
            let from = inputs(of: i)
            if case .merge = layers[i] { return "\(layers[i])(\(from.map(sourceName).joined(separator: ",")))" }
            return from == [i - 1] ? layers[i].description : "@\(sourceName(from[0])) \(layers[i])"
        }.joined(separator: " ")
    }

    /// Layer names `NN_kindK` (index in the list, then a count per kind): `00_conv1`, `01_relu1`, ...
    public var layerNames: [String] {
        var counts: [String: Int] = [:]
        return layers.enumerated().map { i, l in
            counts[l.keyword, default: 0] += 1
            return String(format: "%02d_%@%d", i, l.keyword, counts[l.keyword]!)
        }
    }

    /// The largest value each layer argument may take: far beyond any network Precis trains, and
    /// small enough that no shape or count computed from them can overflow.
    public static let limits = (
        filters: 1 << 16, size: 1 << 10, stride: 1 << 10, pad: 1 << 10, units: 1 << 24,
        inputSide: 1 << 14
    )

    /// The output shape (without the batch axis) after each layer; throws when a layer does not fit
    /// or an argument is beyond `limits`.
    public func shapes() throws -> [[Int]] {
        let out = try layerShapes()
        guard let last = out.last, last.count == 1, last[0] >= 2 else {
            throw ModelError.badSpec(
                "the last layer must produce class scores (an affine layer), got \(shapeText(out.last ?? []))")
        }
        return out
    }

    /// The output shape of every layer, checked as `shapes` checks them, for a model that need not
    /// end yet (a model being built layer by layer, as an import does, where a branch may still wait
    /// for its reader: `partial`).
    public func layerShapes(partial: Bool = false) throws -> [[Int]] {
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 > 0 && $0 <= Self.limits.inputSide }) else {
            throw ModelError.badSpec(
                "input shape must be (C,H,W) with sizes from 1 to \(Self.limits.inputSide), "
                    + "got \(shapeText(inputShape))"
            )
        }
        guard !layers.isEmpty else { throw ModelError.badSpec("the model has no layers") }
        if let bad = wiring.keys.first(where: { !layers.indices.contains($0) }) {
            throw ModelError.badSpec("the wiring names layer \(bad), which the model does not have")
        }
        var out: [[Int]] = []
        let names = layerNames
        for (i, layer) in layers.enumerated() {
            let name = names[i], from = inputs(of: i)
            if let bad = from.first(where: { !(-1..<i).contains($0) }) {
                throw ModelError.badSpec("\(name) reads layer \(bad), which does not come before it")
            }
            if case .merge(let kind) = layer {
                guard from.count >= 2, kind != .multiply || from.count == 2 else {
                    throw ModelError.badSpec(
                        "\(name): \(layer) takes \(kind == .multiply ? "two inputs" : "two inputs or more"), "
                            + "got \(from.count)")
                }
                switch mergedShape(kind, from.map { $0 < 0 ? inputShape : out[$0] }) {
                case .success(let shape): out.append(shape)
                case .failure(let e): throw ModelError.badSpec("\(name): \(e)")
                }
                continue
            }
            guard from.count == 1 else {
                throw ModelError.badSpec("\(name): \(layer) takes one input, got \(from.count)")
            }
            var shape = from[0] < 0 ? inputShape : out[from[0]]
            func window(_ k: Int, _ s: Int, _ p: Int, channels: Int) throws -> [Int] {
                guard shape.count == 3 else {
                    throw ModelError.badSpec("\(name): \(layer) needs (C,H,W) input, got \(shapeText(shape))")
                }
                let l = Self.limits
                guard (1...l.size).contains(k), (1...l.stride).contains(s), (0...l.pad).contains(p) else {
                    throw ModelError.badSpec(
                        "\(name): \(layer) needs size 1...\(l.size), stride 1...\(l.stride), pad 0...\(l.pad)")
                }
                let (h, w) = (shape[1] + 2 * p - k, shape[2] + 2 * p - k)
                guard h >= 0, w >= 0 else {
                    throw ModelError.badSpec(
                        "\(name): window \(k) does not fit input \(shapeText(shape)) with pad \(p)")
                }
                return [channels, h / s + 1, w / s + 1]
            }
            switch layer {
            case .convolution(let c):
                guard (1...Self.limits.filters).contains(c.filters) else {
                    throw ModelError.badSpec(
                        "\(name): a convolution needs 1...\(Self.limits.filters) filters, got \(c.filters)")
                }
                if c.isPlain {
                    shape = try window(c.kernel[0], c.strides[0], c.pads[0], channels: c.filters)
                    break
                }
                guard shape.count == 3 else {
                    throw ModelError.badSpec("\(name): \(layer) needs (C,H,W) input, got \(shapeText(shape))")
                }
                let l = Self.limits
                guard c.kernel.allSatisfy({ (1...l.size).contains($0) }),
                    c.strides.allSatisfy({ (1...l.stride).contains($0) }),
                    c.pads.allSatisfy({ (0...l.pad).contains($0) }),
                    c.dilations.allSatisfy({ (1...l.size).contains($0) })
                else {
                    throw ModelError.badSpec(
                        "\(name): \(layer) needs sizes and dilations 1...\(l.size), strides 1...\(l.stride), "
                            + "pads 0...\(l.pad)")
                }
                guard (1...c.filters).contains(c.groups), shape[0] % c.groups == 0, c.filters % c.groups == 0 else {
                    throw ModelError.badSpec(
                        "\(name): \(c.groups) groups must divide both the \(shape[0]) input channels and the "
                            + "\(c.filters) filters")
                }
                guard let (h, w) = c.outputSize(shape[1], shape[2]) else {
                    throw ModelError.badSpec(
                        "\(name): the kernel does not fit input \(shapeText(shape)) with its padding")
                }
                shape = [c.filters, h, w]
            case let .maxPooling(k, s, p), let .averagePooling(k, s, p):
                let pooled = try window(k, s, p, channels: shape[0])
                guard p < k else {
                    throw ModelError.badSpec("\(name): pooling pad \(p) must be smaller than its size \(k)")
                }
                shape = pooled
            case let .affine(u):
                guard (1...Self.limits.units).contains(u) else {
                    throw ModelError.badSpec("\(name): affine needs 1...\(Self.limits.units) units, got \(u)")
                }
                // The input's size is at most about 2^46 here, so this product cannot overflow unnoticed.
                let (weights, overflow) = shape.reduce(1, *).multipliedReportingOverflow(by: u)
                guard !overflow, weights <= 1 << 40 else {
                    throw ModelError.badSpec(
                        "\(name): \(shape.reduce(1, *)) inputs times \(u) units is too many weights")
                }
                shape = [u]
            case let .dropout(r):
                guard r >= 0, r < 1, r.isFinite else {
                    throw ModelError.badSpec("\(name): dropout ratio must be in [0, 1), got \(r)")
                }
            case .activation(let f):
                if let problem = f.problem { throw ModelError.badSpec("\(name): \(problem)") }
            case .globalAveragePooling:
                guard shape.count == 3 else {
                    throw ModelError.badSpec("\(name): gap needs (C,H,W) input, got \(shapeText(shape))")
                }
                shape = [shape[0], 1, 1]
            case .inputNormalization:
                guard from == [-1] else { throw ModelError.badSpec("\(name): normalize must read the input") }
            case .relu, .batchNormalization, .merge: break
            }
            out.append(shape)
        }
        if !partial, let unused = consumers.dropLast().firstIndex(of: 0) {
            throw ModelError.badSpec("\(names[unused])'s output is not used by any later layer")
        }
        return out
    }

    /// The number of classes (the last layer's output size).
    public var classes: Int { (try? shapes().last?.first) ?? 0 }

    /// Every layer as built: its input and output shapes and the tensors it owns; throws when a
    /// layer does not fit.
    public func geometry() throws -> [LayerGeometry] {
        let shapes = try shapes()
        return zip(layerNames, layers).enumerated().map { i, named in
            LayerGeometry(
                index: i, name: named.0, spec: named.1,
                inputShapes: inputs(of: i).map { $0 < 0 ? inputShape : shapes[$0] }, outputShape: shapes[i])
        }
    }

    /// Every tensor the model owns, in layer order: its key (`00_conv1/W`) and shape.
    public func tensorShapes() throws -> [(name: String, shape: [Int])] {
        try geometry().flatMap { g in g.tensors.map { (g.key($0.name), $0.shape) } }
    }

    /// The number of values in every tensor the model owns.
    public func parameterCount() throws -> Int {
        try geometry().reduce(0) { try checkedSum($0, $1.parameterCount, "the parameter count") }
    }

    /// About how many bytes running the model takes in float32 at `batch` images: the weights
    /// (four copies when training: values, gradients and Adam's two moments) and every layer's
    /// output (three copies when training: output, cache and gradient; two in inference).
    /// Throws when the count overflows.
    public func memoryBytes(batch: Int, training: Bool) throws -> Int {
        let outputs = try shapes().reduce(inputShape.reduce(1, *)) { sum, shape in
            try checkedSum(sum, try checkedProduct(shape, "a layer's output size"), "the activation count")
        }
        let weights = try checkedProduct([try parameterCount(), 4, training ? 4 : 1], "the weights' bytes")
        let activations = try checkedProduct([outputs, batch, 4, training ? 3 : 2], "the activations' bytes")
        return try checkedSum(weights, activations, "the memory estimate")
    }

    /// Throws when running the model at `batch` images needs more than `available` bytes (the
    /// machine's memory by default), naming both sizes.
    public func checkMemory(
        batch: Int, training: Bool,
        available: Int = Int(clamping: ProcessInfo.processInfo.physicalMemory)
    ) throws {
        let needed = try memoryBytes(batch: batch, training: training)
        guard needed <= available else {
            let gib = { (x: Int) in String(format: "%.1f GiB", Double(x) / Double(1 << 30)) }
            throw ModelError.badSpec(
                "the model needs about \(gib(needed)) to \(training ? "train" : "run") at batch \(batch), "
                    + "more than the \(gib(available)) of memory here")
        }
    }
}

/// `a + b`, or an error naming `what` when it overflows.
func checkedSum(_ a: Int, _ b: Int, _ what: String) throws -> Int {
    let (r, overflow) = a.addingReportingOverflow(b)
    guard !overflow else { throw ModelError.badSpec("\(what) overflows") }
    return r
}

/// The product of `xs`, or an error naming `what` when it overflows.
func checkedProduct(_ xs: [Int], _ what: String) throws -> Int {
    try xs.reduce(1) { p, x in
        let (r, overflow) = p.multipliedReportingOverflow(by: x)
        guard !overflow else { throw ModelError.badSpec("\(what) overflows") }
        return r
    }
}

/// The key of a layer's tensor, `LAYER/NAME` (`00_conv1/W`): the name in a network's tensor
/// dictionary and, under `/model/layers`, the tensor's HDF5 path.
public func tensorKey(_ layer: String, _ name: String) -> String { layer + "/" + name }

/// What a tensor does in its layer.
public enum TensorRole: String, Sendable {
    /// Multiplied with the input: a convolution's filters, an affine layer's matrix.
    case weight
    /// Added to each output channel.
    case bias
    /// Batch normalization's learned scale and shift.
    case scale, shift
    /// Batch normalization's running statistics (not learned).
    case runningMean, runningVariance
    /// An input normalization's mean and standard deviation per channel (not learned).
    case inputMean, inputStd
}

/// A tensor a layer owns.
public struct TensorSpec: Equatable, Sendable {
    /// Its name inside the layer (`W`, `b`, `gamma`, ...).
    public let name: String
    public let shape: [Int]
    /// Inputs that feed one output (weights only; 0 otherwise).
    public let fanIn: Int
    public let role: TensorRole
}

/// One layer of a model as built: where it sits, what goes in and out, and what it owns.
public struct LayerGeometry: Equatable, Sendable {
    public let index: Int
    /// `NN_kindK`, as in `ModelSpec.layerNames`.
    public let name: String
    public let spec: LayerSpec
    /// `(C, H, W)` or `(features)` of each input and of the output, without the batch axis.
    public let inputShapes: [[Int]], outputShape: [Int]
    /// The shape of the first input (the only one but for merges).
    public var inputShape: [Int] { inputShapes[0] }

    /// The key of tensor `name` of this layer.
    public func key(_ name: String) -> String { tensorKey(self.name, name) }

    /// The tensors the layer owns, in order. Every kind is listed, so a new layer kind does not
    /// compile until it says what it owns.
    public var tensors: [TensorSpec] {
        switch spec {
        case .convolution(let c):
            let channels = inputShape[0] / c.groups, fanIn = channels * c.kernel[0] * c.kernel[1]
            return [
                TensorSpec(name: "W", shape: [c.filters, channels] + c.kernel, fanIn: fanIn, role: .weight),
                TensorSpec(name: "b", shape: [c.filters], fanIn: 0, role: .bias),
            ]
        case let .affine(u):
            let fanIn = inputShape.reduce(1, *)
            return [
                TensorSpec(name: "W", shape: [fanIn, u], fanIn: fanIn, role: .weight),
                TensorSpec(name: "b", shape: [u], fanIn: 0, role: .bias),
            ]
        case .batchNormalization:
            let c = [inputShape[0]]
            return [
                TensorSpec(name: "gamma", shape: c, fanIn: 0, role: .scale),
                TensorSpec(name: "beta", shape: c, fanIn: 0, role: .shift),
                TensorSpec(name: "running_mean", shape: c, fanIn: 0, role: .runningMean),
                TensorSpec(name: "running_var", shape: c, fanIn: 0, role: .runningVariance),
            ]
        case .inputNormalization:
            let c = [inputShape[0]]
            return [
                TensorSpec(name: "mean", shape: c, fanIn: 0, role: .inputMean),
                TensorSpec(name: "std", shape: c, fanIn: 0, role: .inputStd),
            ]
        case .maxPooling, .averagePooling, .relu, .dropout, .activation, .globalAveragePooling, .merge:
            return []
        }
    }

    /// The layer's GEMM, for a layer with weights.
    public var gemm: GEMMRole? {
        switch spec {
        case .convolution(let c):
            return GEMMRole(
                channels: c.filters, length: inputShape[0] / c.groups * c.kernel[0] * c.kernel[1], layout: .rows)
        case let .affine(u): return GEMMRole(channels: u, length: inputShape.reduce(1, *), layout: .columns)
        case .maxPooling, .averagePooling, .relu, .dropout, .batchNormalization, .inputNormalization, .activation,
            .globalAveragePooling, .merge:
            return nil
        }
    }

    /// The window a plain convolution or a pooling layer slides over one image, `(1, C, H, W)`.
    public var window: Window? {
        switch spec {
        case .convolution(let c):
            return c.isPlain
                ? Window(
                    input: [1] + inputShape, fh: c.kernel[0], fw: c.kernel[0], stride: c.strides[0], pad: c.pads[0])
                : nil
        case let .maxPooling(k, s, p), let .averagePooling(k, s, p):
            return Window(input: [1] + inputShape, fh: k, fw: k, stride: s, pad: p)
        case .affine, .relu, .dropout, .batchNormalization, .inputNormalization, .activation, .globalAveragePooling,
            .merge:
            return nil
        }
    }

    /// The tensor of `role`, if the layer owns one.
    public func tensor(_ role: TensorRole) -> TensorSpec? { tensors.first { $0.role == role } }

    /// Values in all its tensors (the spec's limits keep this from overflowing).
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.shape.reduce(1, *) } }
}

extension LayerSpec: Codable {
    private enum Key: String, CodingKey {
        case kind, filters, size, stride, pad, units, ratio, min, max, alpha, beta, groups
        case kernelH = "kernel_h", kernelW = "kernel_w", strideH = "stride_h", strideW = "stride_w"
        case padTop = "pad_top", padLeft = "pad_left", padBottom = "pad_bottom", padRight = "pad_right"
        case dilationH = "dilation_h", dilationW = "dilation_w"
    }

    /// The arguments stored as numbers with a fraction; the others are whole numbers.
    public static let fractional: Set<String> = ["ratio", "min", "max", "alpha", "beta"]

    /// Whether quantization maps the layer to an integer GEMM (convolutions and affine layers).
    public var isQuantizable: Bool {
        switch self {
        case .convolution, .affine: return true
        case .maxPooling, .averagePooling, .relu, .dropout, .batchNormalization, .inputNormalization, .activation,
            .globalAveragePooling, .merge:
            return false
        }
    }

    /// The layer's kind as the weight file names it (`Convolution`, `MaxPooling`, ...).
    public var kind: String {
        switch self {
        case .convolution: return "Convolution"
        case .maxPooling: return "MaxPooling"
        case .averagePooling: return "AveragePooling"
        case .affine: return "Affine"
        case .relu: return "ReLU"
        case .dropout: return "Dropout"
        case .batchNormalization: return "BatchNormalization"
        case .inputNormalization: return "InputNormalization"
        case .activation(let f): return f.kind
        case .globalAveragePooling: return "GlobalAveragePooling"
        case .merge(.add): return "Add"
        case .merge(.concat): return "Concat"
        case .merge(.multiply): return "Multiply"
        }
    }

    /// The layer's arguments by name (`filters`, `size`, `stride`, `pad`, `units`, `ratio`).
    public var arguments: [(String, Double)] {
        switch self {
        case .convolution(let c) where c.isPlain:
            return [("filters", c.filters), ("size", c.kernel[0]), ("stride", c.strides[0]), ("pad", c.pads[0])].map {
                ($0.0, Double($0.1))
            }
        case .convolution(let c):
            let values = [c.filters] + c.kernel + c.strides + c.pads + c.dilations + [c.groups]
            let names = [
                "filters", "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom",
                "pad_right", "dilation_h", "dilation_w", "groups",
            ]
            return zip(names, values.map(Double.init)).map { ($0, $1) }
        case let .maxPooling(k, s, p), let .averagePooling(k, s, p):
            return [("size", Double(k)), ("stride", Double(s)), ("pad", Double(p))]
        case let .affine(u): return [("units", Double(u))]
        case let .dropout(r): return [("ratio", r)]
        case .activation(let f): return f.arguments
        case .relu, .batchNormalization, .inputNormalization, .globalAveragePooling, .merge: return []
        }
    }

    /// `{"kind": "Convolution", "filters": 16, "size": 3, "stride": 1, "pad": 1}` and so on.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(kind, forKey: .kind)
        for (name, value) in arguments {
            if Self.fractional.contains(name) {
                try c.encode(value, forKey: Key(rawValue: name)!)
            } else {
                try c.encode(Int(value), forKey: Key(rawValue: name)!)
            }
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        func int(_ k: Key) throws -> Int { try c.decode(Int.self, forKey: k) }
        func number(_ k: Key) throws -> Double { try c.decode(Double.self, forKey: k) }
        switch try c.decode(String.self, forKey: .kind) {
        case "Convolution" where c.contains(.size):
            self = .convolution(
                filters: try int(.filters), size: try int(.size), stride: try int(.stride), pad: try int(.pad))
        case "Convolution":
            self = .convolution(
                ConvolutionSpec(
                    filters: try int(.filters), kernel: [try int(.kernelH), try int(.kernelW)],
                    strides: [try int(.strideH), try int(.strideW)],
                    pads: [try int(.padTop), try int(.padLeft), try int(.padBottom), try int(.padRight)],
                    dilations: [try int(.dilationH), try int(.dilationW)], groups: try int(.groups)))
        case "MaxPooling": self = .maxPooling(size: try int(.size), stride: try int(.stride), pad: try int(.pad))
        case "AveragePooling":
            self = .averagePooling(size: try int(.size), stride: try int(.stride), pad: try int(.pad))
        case "Affine": self = .affine(units: try int(.units))
        case "ReLU": self = .relu
        case "Dropout": self = .dropout(ratio: try c.decode(Double.self, forKey: .ratio))
        case "BatchNormalization": self = .batchNormalization
        case "InputNormalization": self = .inputNormalization
        case "Clip": self = .activation(.clip(min: try number(.min), max: try number(.max)))
        case "LeakyReLU": self = .activation(.leakyReLU(alpha: try number(.alpha)))
        case "Sigmoid": self = .activation(.sigmoid)
        case "HardSigmoid": self = .activation(.hardSigmoid(alpha: try number(.alpha), beta: try number(.beta)))
        case "HardSwish": self = .activation(.hardSwish)
        case "GlobalAveragePooling": self = .globalAveragePooling
        case "Add": self = .merge(.add)
        case "Concat": self = .merge(.concat)
        case "Multiply": self = .merge(.multiply)
        case let other: throw ModelError.badSpec("unknown layer kind '\(other)'")
        }
    }
}

extension LayerSpec {
    /// Parses a chain of layers such as `conv(16,3,pad=1) relu maxpool(2) affine(10)` (see
    /// `parseGraph`); throws on text that wires a graph.
    public static func parseList(_ text: String) throws -> [LayerSpec] {
        let (layers, wiring) = try parseGraph(text)
        guard wiring.isEmpty else { throw ModelError.badSpec("'\(text)': a chain of layers is needed here") }
        return layers
    }

    /// Parses a whitespace-separated list of layers, each reading the one before it, such as
    /// `conv(16,3,pad=1) relu maxpool(2) affine(10)`, into layers and `ModelSpec.wiring`.
    /// Arguments: `conv(filters, size, stride=1, pad=0)`, `maxpool|avgpool(size, stride=size, pad=0)`,
    /// `affine(units)`, `dropout(ratio=0.5)`, `relu`, `batchnorm`, `normalize` (the input, first), and the
    /// activations.
    /// A graph is written with names: `:NAME` names the output of the layer before it, `@NAME` makes
    /// the next layer read NAME instead, and `add(NAME...)`, `concat(NAME...)` and `mul(NAME)` merge:
    /// with one name, the layer before and NAME; with more, the names in order. A name is one given
    /// with `:`, a layer name (`05_relu3`) or `input`. A residual block:
    /// `conv(16,3,pad=1) relu :a conv(16,3,pad=1) relu conv(16,3,pad=1) add(a) relu`.
    public static func parseGraph(_ text: String) throws -> (layers: [LayerSpec], wiring: [Int: [Int]]) {
        var layers: [LayerSpec] = [], wiring: [Int: [Int]] = [:], labels: [String: Int] = ["input": -1]
        var next: Int? = nil
        func source(_ name: String, in item: String) throws -> Int {
            if let j = labels[name] { return j }
            let names = ModelSpec(name: "", layers: layers, weightInit: .he).layerNames
            guard let j = names.firstIndex(of: name) else {
                throw ModelError.badSpec("'\(item)': no layer is named '\(name)' before it")
            }
            return j
        }
        for item in try tokens(text) {
            if item.hasPrefix(":") {
                let name = String(item.dropFirst())
                guard !layers.isEmpty, next == nil else { throw ModelError.badSpec("'\(item)' names no layer") }
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw ModelError.badSpec("'\(item)': a name is letters, digits and '_'")
                }
                guard labels[name] == nil else { throw ModelError.badSpec("'\(item)': the name is taken") }
                labels[name] = layers.count - 1
                continue
            }
            if item.hasPrefix("@") {
                guard next == nil else { throw ModelError.badSpec("'\(item)' follows another '@'") }
                next = try source(String(item.dropFirst()), in: item)
                continue
            }
            let previous = next ?? layers.count - 1
            let name = item.prefix { $0 != "(" }.lowercased()
            if let kind = ["add": MergeKind.add, "concat": .concat, "mul": .multiply][name] {
                guard item.hasSuffix(")"), item.count > name.count + 2 else {
                    throw ModelError.badSpec("'\(item)': \(name) needs the names of its inputs, e.g. \(name)(a)")
                }
                let names = item.dropFirst(name.count + 1).dropLast().split(
                    separator: ",", omittingEmptySubsequences: false)
                let from = try names.map { try source($0.trimmingCharacters(in: .whitespaces), in: item) }
                wiring[layers.count] = from.count == 1 ? [previous] + from : from
                layers.append(.merge(kind))
            } else {
                wiring[layers.count] = [previous]
                layers.append(try parse(item))
            }
            next = nil
        }
        guard next == nil else { throw ModelError.badSpec("'\(text)' ends with '@' before any layer") }
        guard !layers.isEmpty else { throw ModelError.badSpec("empty model description") }
        return (layers, wiring.filter { $0.value != [$0.key - 1] })
    }

    /// The items of a layer list: split at whitespace outside parentheses.
    private static func tokens(_ text: String) throws -> [String] {
        var items: [String] = [], current = "", depth = 0
        for ch in text {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            guard depth >= 0 && depth <= 1 else { throw ModelError.badSpec("'\(text)': unbalanced parentheses") }
            if depth == 0 && ch.isWhitespace {
                if !current.isEmpty { items.append(current) }
                current = ""
            } else {
                current.append(ch)
            }
        }
        guard depth == 0 else { throw ModelError.badSpec("'\(current)': missing ')'") }
        if !current.isEmpty { items.append(current) }
        return items
    }

    /// Parses one layer, e.g. `conv(16,3,pad=1)`.
    public static func parse(_ item: String) throws -> LayerSpec {
        let name: String, argText: String
        if let open = item.firstIndex(of: "(") {
            guard item.hasSuffix(")") else { throw ModelError.badSpec("'\(item)': missing ')'") }
            name = String(item[..<open])
            argText = String(item[item.index(after: open)..<item.index(before: item.endIndex)])
        } else {
            (name, argText) = (item, "")
        }
        // Arguments: positional ones first, then named ones; spaces only around an argument.
        var positional: [String] = [], named: [String: String] = [:]
        let args =
            argText.trimmingCharacters(in: .whitespaces).isEmpty
            ? []
            : argText.split(
                separator: ",", omittingEmptySubsequences: false)
        for raw in args {
            let a = raw.trimmingCharacters(in: .whitespaces)
            guard !a.isEmpty else { throw ModelError.badSpec("'\(item)': an empty argument") }
            guard !a.contains(where: \.isWhitespace) else {
                throw ModelError.badSpec("'\(item)': a space inside the argument '\(a)'")
            }
            let kv = a.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            if kv.count == 2 {
                guard !kv[0].isEmpty, !kv[1].isEmpty else {
                    throw ModelError.badSpec("'\(item)': an empty argument in '\(a)'")
                }
                guard named[kv[0]] == nil else { throw ModelError.badSpec("'\(item)': '\(kv[0])' is given twice") }
                named[kv[0]] = kv[1]
            } else {
                guard named.isEmpty else {
                    throw ModelError.badSpec("'\(item)': the positional argument '\(a)' follows a named one")
                }
                positional.append(a)
            }
        }
        func int(_ i: Int, _ key: String, _ fallback: Int?) throws -> Int {
            if i < positional.count && named[key] != nil {
                throw ModelError.badSpec("'\(item)': '\(key)' is given twice (by position and by name)")
            }
            let text = i < positional.count ? positional[i] : named[key]
            guard let text else {
                if let fallback { return fallback }
                throw ModelError.badSpec("'\(item)': \(name) needs \(key)")
            }
            guard let v = Int(text) else {
                throw ModelError.badSpec("'\(item)': \(key) must be a whole number, got '\(text)'")
            }
            return v
        }
        func number(_ i: Int, _ key: String, _ fallback: Double) throws -> Double {
            if i < positional.count && named[key] != nil {
                throw ModelError.badSpec("'\(item)': '\(key)' is given twice (by position and by name)")
            }
            guard let text = i < positional.count ? positional[i] : named[key] else { return fallback }
            guard let v = Double(text) else {
                throw ModelError.badSpec("'\(item)': \(key) must be a number, got '\(text)'")
            }
            return v
        }
        let known: Set<String>
        let spec: LayerSpec
        switch name.lowercased() {
        case "conv", "convolution":
            known = ["filters", "size", "stride", "pad", "dilation", "groups"]
            // Sizes, strides and dilations are `N` or `HxW`; pads `P`, `HxW` or `TOPxLEFTxBOTTOMxRIGHT`.
            func ints(_ i: Int, _ key: String, _ fallback: Int?, counts: [Int]) throws -> [Int] {
                if i < positional.count && named[key] != nil {
                    throw ModelError.badSpec("'\(item)': '\(key)' is given twice (by position and by name)")
                }
                guard let text = i < positional.count ? positional[i] : named[key] else {
                    if let fallback { return [fallback] }
                    throw ModelError.badSpec("'\(item)': \(name) needs \(key)")
                }
                let parts = text.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
                guard counts.contains(parts.count), parts.allSatisfy({ $0 != nil }) else {
                    let forms = counts.map { Array(repeating: "N", count: $0).joined(separator: "x") }
                    throw ModelError.badSpec(
                        "'\(item)': \(key) must be \(forms.joined(separator: " or ")) in whole numbers, got '\(text)'")
                }
                return parts.map { $0! }
            }
            let pair = { (v: [Int]) in v.count == 1 ? v + v : v }
            let pad = try ints(3, "pad", 0, counts: [1, 2, 4])
            spec = .convolution(
                ConvolutionSpec(
                    filters: try int(0, "filters", nil), kernel: pair(try ints(1, "size", nil, counts: [1, 2])),
                    strides: pair(try ints(2, "stride", 1, counts: [1, 2])),
                    pads: pad.count == 4 ? pad : pair(pad) + pair(pad),
                    dilations: pair(try ints(4, "dilation", 1, counts: [1, 2])), groups: try int(5, "groups", 1)))
        case "maxpool", "avgpool", "pool":
            known = ["size", "stride", "pad"]
            let k = try int(0, "size", nil), s = try int(1, "stride", k), p = try int(2, "pad", 0)
            spec =
                name.lowercased() == "avgpool"
                ? .averagePooling(size: k, stride: s, pad: p) : .maxPooling(size: k, stride: s, pad: p)
        case "affine", "dense", "linear":
            known = ["units"]
            spec = .affine(units: try int(0, "units", nil))
        case "relu":
            known = []
            spec = .relu
        case "batchnorm", "bn":
            known = []
            spec = .batchNormalization
        case "normalize":
            known = []
            spec = .inputNormalization
        case "dropout":
            known = ["ratio"]
            spec = .dropout(ratio: try number(0, "ratio", 0.5))
        case "relu6":
            known = []
            spec = .activation(.clip(min: 0, max: 6))
        case "clip":
            known = ["min", "max"]
            spec = .activation(.clip(min: try number(0, "min", 0), max: try number(1, "max", 6)))
        case "leakyrelu":
            known = ["alpha"]
            spec = .activation(.leakyReLU(alpha: try number(0, "alpha", 0.01)))
        case "sigmoid":
            known = []
            spec = .activation(.sigmoid)
        case "hardsigmoid":
            known = ["alpha", "beta"]
            spec = .activation(.hardSigmoid(alpha: try number(0, "alpha", 1.0 / 6), beta: try number(1, "beta", 0.5)))
        case "hardswish":
            known = []
            spec = .activation(.hardSwish)
        case "gap", "globalavgpool":
            known = []
            spec = .globalAveragePooling
        default:
            throw ModelError.badSpec(
                "unknown layer '\(name)' (conv, maxpool, avgpool, gap, affine, relu, relu6, clip, leakyrelu, "
                    + "sigmoid, hardsigmoid, hardswish, dropout, batchnorm, normalize, add, concat, mul)")
        }
        if let bad = named.keys.first(where: { !known.contains($0) }) {
            throw ModelError.badSpec("'\(item)': unknown argument '\(bad)'")
        }
        if positional.count > known.count {
            throw ModelError.badSpec("'\(item)': too many arguments")
        }
        return spec
    }
}
