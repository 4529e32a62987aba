import Dispatch

/// One built layer. A closed set, so the network calls each layer statically and the compiler
/// specializes the whole forward and backward pass for the scalar type.
enum Node<T: NetworkScalar> {
    case convolution(Convolution<T>)
    case generalConvolution(GeneralConvolution<T>)
    case maxPooling(MaxPooling<T>)
    case averagePooling(AveragePooling<T>)
    case affine(Affine<T>)
    case relu(ReLU<T>)
    case dropout(Dropout<T>)
    case batchNormalization(BatchNormalization<T>)
    case inputNormalization(InputNormalization<T>)
    case elementwise(Elementwise<T>)
    case globalAveragePooling(GlobalAveragePooling<T>)
    /// The one kind with several inputs: the network runs it with `Merge.forward` and `backward`.
    case merge(Merge<T>)
    /// A batch normalization folded into the layer before it: its input passes through.
    case identity

    var layer: (any Layer<T>)? {
        switch self {
        case .convolution(let l): return l
        case .generalConvolution(let l): return l
        case .maxPooling(let l): return l
        case .averagePooling(let l): return l
        case .affine(let l): return l
        case .relu(let l): return l
        case .dropout(let l): return l
        case .batchNormalization(let l): return l
        case .inputNormalization(let l): return l
        case .elementwise(let l): return l
        case .globalAveragePooling(let l): return l
        case .merge, .identity: return nil
        }
    }

    func forward(_ x: Tensor<T>, isTraining: Bool) -> Tensor<T> {
        switch self {
        case .convolution(let l): return l.forward(x, isTraining: isTraining)
        case .generalConvolution(let l): return l.forward(x, isTraining: isTraining)
        case .maxPooling(let l): return l.forward(x, isTraining: isTraining)
        case .averagePooling(let l): return l.forward(x, isTraining: isTraining)
        case .affine(let l): return l.forward(x, isTraining: isTraining)
        case .relu(let l): return l.forward(x, isTraining: isTraining)
        case .dropout(let l): return l.forward(x, isTraining: isTraining)
        case .batchNormalization(let l): return l.forward(x, isTraining: isTraining)
        case .inputNormalization(let l): return l.forward(x, isTraining: isTraining)
        case .elementwise(let l): return l.forward(x, isTraining: isTraining)
        case .globalAveragePooling(let l): return l.forward(x, isTraining: isTraining)
        case .identity: return x
        case .merge: preconditionFailure("a merge runs through Network.run, with all its inputs")
        }
    }

    func backward(_ dout: Tensor<T>, inputGradient: Bool = true) -> Tensor<T> {
        switch self {
        case .convolution(let l): return l.backward(dout, inputGradient: inputGradient)
        case .generalConvolution(let l): return l.backward(dout)
        case .maxPooling(let l): return l.backward(dout)
        case .averagePooling(let l): return l.backward(dout)
        case .affine(let l): return l.backward(dout)
        case .relu(let l): return l.backward(dout)
        case .dropout(let l): return l.backward(dout)
        case .batchNormalization(let l): return l.backward(dout)
        case .inputNormalization(let l): return l.backward(dout)
        case .elementwise(let l): return l.backward(dout)
        case .globalAveragePooling(let l): return l.backward(dout)
        case .identity: return dout
        case .merge: preconditionFailure("a merge runs through Network.gradient, with all its inputs")
        }
    }
}

/// A network built from a `ModelSpec`, computing in `T`, with softmax cross-entropy after the
/// last layer; its layers run in order, each on the values it reads. Its tensors are named
/// `LAYER/NAME` (`00_conv1/W`, `03_affine1/b`).
public final class Network<T: NetworkScalar> {
    public let spec: ModelSpec
    /// How values are stored between operations (`native` except in the `-acc32` modes).
    public let storage: StorageFormat
    /// `NN_kindK` per layer, as in `spec.layerNames`.
    public let layerNames: [String]
    let nodes: [Node<T>]
    /// The loss after the last layer.
    public let lossLayer = SoftmaxWithLoss<T>()

    /// A network with fresh weights drawn from `spec.weightInit` by a generator seeded with `seed`
    /// (drawn in Double, then rounded to `T`, so every precision starts from the same weights).
    /// Weights are drawn with the init's deviation for their fan-in, biases and shifts start at 0,
    /// scales and running variances at 1: batch normalization starts as the identity, and so does an
    /// input normalization (mean 0, standard deviation 1) until its statistics are set.
    public convenience init(spec: ModelSpec, seed: UInt64) throws {
        var rng = RandomSource(seed: seed)
        var values: [String: Tensor<Double>] = [:]
        for layer in try spec.geometry() {
            for t in layer.tensors {
                let count = t.shape.reduce(1, *)
                switch t.role {
                case .weight:
                    let std = spec.weightInit.std(fanIn: t.fanIn)
                    values[layer.key(t.name)] = Tensor(
                        shape: t.shape, data: (0..<count).map { _ in std * rng.normal() })
                case .bias, .shift, .runningMean, .inputMean:
                    values[layer.key(t.name)] = Tensor(zeros: t.shape)
                case .scale, .runningVariance, .inputStd:
                    values[layer.key(t.name)] = Tensor(shape: t.shape, data: Array(repeating: 1, count: count))
                }
            }
        }
        try self.init(spec: spec, parameters: values, seed: seed)
    }

    /// A network with the given tensors (`LAYER/NAME` -> value), rounded to `T` and to `storage`.
    /// Every tensor the spec names must be there with its shape; a missing or misshapen one throws.
    /// `inputRoundings` rounds the inputs of convolution and affine layers, by layer index, to a
    /// number format (Float networks only). The batch normalizations in `folded` (by index) pass
    /// their input through: `values` holds them folded into the layer before them
    /// (`ModelSpec.foldingBatchNorms`), and need not hold their own tensors.
    public init(
        spec: ModelSpec, parameters values: [String: Tensor<Double>], seed: UInt64 = 0,
        storage: StorageFormat = .native,
        inputRoundings: [Int: OperandRounding] = [:], folded: Set<Int> = []
    ) throws {
        self.spec = spec
        self.storage = storage
        self.folded = folded
        layerNames = spec.layerNames
        var nodes: [Node<T>] = []
        let foldable = spec.foldableBatchNorms
        for layer in try spec.geometry() {
            if folded.contains(layer.index) {
                guard foldable[layer.index] != nil else {
                    throw ModelError.badSpec("\(layer.name) does not fold into the layer before it")
                }
                nodes.append(.identity)
                continue
            }
            var tensors: [String: Tensor<T>] = [:]
            for t in layer.tensors {
                guard let v = values[layer.key(t.name)] else {
                    throw ModelError.badSpec("missing tensor \(layer.key(t.name))")
                }
                guard v.shape == t.shape else {
                    throw ModelError.badSpec(
                        "\(layer.key(t.name)) has shape \(shapeText(v.shape)), spec expects \(shapeText(t.shape))")
                }
                var x: Tensor<T> = v.converted()
                storage.round(&x.data)
                tensors[t.name] = x
            }
            // Every tensor the geometry lists is in `tensors`.
            func tensor(_ role: TensorRole) -> Tensor<T> { tensors[layer.tensor(role)!.name]! }
            switch layer.spec {
            case .convolution(let c) where c.isPlain:
                nodes.append(
                    .convolution(
                        Convolution(
                            W: tensor(.weight), b: tensor(.bias), stride: c.strides[0], pad: c.pads[0],
                            storage: storage,
                            inputRounding: inputRoundings[layer.index])))
            case .convolution(let c):
                nodes.append(
                    .generalConvolution(
                        GeneralConvolution(
                            W: tensor(.weight), b: tensor(.bias), spec: c, storage: storage,
                            inputRounding: inputRoundings[layer.index])))
            case let .maxPooling(k, s, p):
                nodes.append(.maxPooling(MaxPooling(size: k, stride: s, pad: p)))
            case let .averagePooling(k, s, p):
                nodes.append(.averagePooling(AveragePooling(size: k, stride: s, pad: p)))
            case .affine:
                nodes.append(
                    .affine(
                        Affine(
                            W: tensor(.weight), b: tensor(.bias), storage: storage,
                            inputRounding: inputRoundings[layer.index])))
            case .relu:
                nodes.append(.relu(ReLU()))
            case .activation(let f):
                nodes.append(.elementwise(Elementwise(f)))
            case .globalAveragePooling:
                nodes.append(.globalAveragePooling(GlobalAveragePooling()))
            case .merge(let kind):
                nodes.append(.merge(Merge(kind)))
            case let .dropout(r):
                nodes.append(.dropout(Dropout(ratio: r, seed: seed &+ 0x5EED_0000 &+ UInt64(layer.index))))
            case .batchNormalization:
                let bn = BatchNormalization<T>(channels: layer.inputShape[0])
                for p in bn.parameters {
                    guard let v = tensors[p.name] else {
                        throw ModelError.badSpec("\(layer.name) lists no tensor \(p.name)")
                    }
                    p.value = v
                }
                nodes.append(.batchNormalization(bn))
            case .inputNormalization:
                let n = InputNormalization<T>(channels: layer.inputShape[0])
                (n.mean.value, n.std.value) = (tensor(.inputMean), tensor(.inputStd))
                guard n.std.value.data.allSatisfy({ $0 > 0 && $0.isFinite }), n.mean.value.data.allSatisfy(\.isFinite)
                else {
                    throw ModelError.badSpec(
                        "\(layer.name): the mean must be finite and the std positive and finite in \(T.precisionName)")
                }
                nodes.append(.inputNormalization(n))
            }
        }
        self.nodes = nodes
        let sources = nodes.indices.map(spec.inputs(of:))
        self.sources = sources
        var last = [Int](repeating: -1, count: nodes.count + 1)
        for (i, from) in sources.enumerated() { for j in from { last[j + 1] = i } }
        last[nodes.count] = .max
        lastUse = last
        let consumers = spec.consumers
        chained = nodes.indices.map { $0 > 0 && sources[$0] == [$0 - 1] && consumers[$0 - 1] == 1 }
        trainingSteps = Self.steps(nodes, nodes.indices, pools: false, chained: chained)
    }

    /// The batch normalizations folded into the layer before them, by index.
    public let folded: Set<Int>
    /// The layers each layer reads (-1: the input), as `spec.inputs(of:)` gives them.
    let sources: [[Int]]
    /// Per value (`0` the input, `j + 1` layer j's output): the last layer that reads it (`Int.max`
    /// for the network's output).
    let lastUse: [Int]
    /// Whether layer j reads only layer j − 1, and nothing else reads layer j − 1: the two can run
    /// as one step.
    let chained: [Bool]

    /// The steps a training forward and backward run: a convolution with the ReLU after it as one
    /// (the ReLU applied to each chunk of outputs, its mask to each chunk of gradients), else a layer.
    let trainingSteps: [Range<Int>]

    /// What training does to a layer's inputs besides running it, when set (quantization-aware
    /// training with learned input steps sets it): `forward` replaces each input a layer reads
    /// (`(layer, source, value)`, as `InputTransform`), and `backward` takes the gradient of what it
    /// returned to the gradient of the value it read (`(layer, source, gradient)`).
    public var trainingInputs: (forward: InputTransform, backward: InputTransform)?

    /// `layers` as steps: a convolution with the ReLU after it and, with `pools`, a max pooling
    /// after that, as one step when they are `chained`; every other layer alone.
    static func steps(_ nodes: [Node<T>], _ layers: Range<Int>, pools: Bool, chained: [Bool]) -> [Range<Int>] {
        var steps: [Range<Int>] = [], i = layers.lowerBound
        while i < layers.upperBound {
            var end = i + 1
            if case .convolution = nodes[i], end < layers.upperBound, chained[end], case .relu = nodes[end] {
                end += 1
                if pools, end < layers.upperBound, chained[end], case .maxPooling = nodes[end] { end += 1 }
            }
            steps.append(i..<end)
            i = end
        }
        return steps
    }

    /// The output of `step` (from `steps`) for its input `x`. A fused step gives the values of its
    /// layers run one after the other; in training the ReLU keeps its output for the backward pass.
    private func forward(_ x: Tensor<T>, step: Range<Int>, isTraining: Bool) -> Tensor<T> {
        guard step.count > 1, case let .convolution(conv) = nodes[step.lowerBound],
            case let .relu(relu) = nodes[step.lowerBound + 1]
        else { return nodes[step.lowerBound].forward(x, isTraining: isTraining) }
        var pool: MaxPooling<T>? = nil
        if step.count == 3, case let .maxPooling(p) = nodes[step.lowerBound + 2] { pool = p }
        let y = conv.forward(x, isTraining: isTraining, relu: true, pool: pool)
        if isTraining { relu.output = y.data }
        return y
    }

    /// The input gradient of training step `step` for its output gradient `d`: one per input.
    private func backward(_ d: Tensor<T>, step: Range<Int>, inputGradient: Bool) -> [Tensor<T>] {
        if case .merge(let m) = nodes[step.lowerBound] { return m.backward(d) }
        guard step.count == 2, case let .convolution(conv) = nodes[step.lowerBound],
            case let .relu(relu) = nodes[step.lowerBound + 1]
        else { return [nodes[step.lowerBound].backward(d, inputGradient: inputGradient)] }
        return [conv.backward(d, inputGradient: inputGradient, reluOutput: relu.output)]
    }

    /// What a run does to each input of a layer before the layer reads it (`(layer, source, value)`,
    /// `source` the index of the layer whose output it is, -1 for the network's input), as a
    /// simulation of quantization rounds them.
    public typealias InputTransform = (Int, Int, Tensor<T>) -> Tensor<T>

    /// Runs `step` on `values` (`values[0]` the input, `values[j + 1]` layer j's output): reads its
    /// first layer's inputs (through `transform`) and sets its last layer's output, rounded to the
    /// storage format when `stores`. With `release`, drops the values no later layer reads.
    private func run(
        _ values: inout [Tensor<T>?], step: Range<Int>, isTraining: Bool, stores: Bool, release: Bool,
        transform: InputTransform? = nil
    ) {
        let from = sources[step.lowerBound]
        let xs = from.map { j in transform.map { $0(step.lowerBound, j, values[j + 1]!) } ?? values[j + 1]! }
        let y: Tensor<T>
        if case .merge(let m) = nodes[step.lowerBound] {
            y = m.forward(xs, isTraining: isTraining)
        } else {
            y = forward(xs[0], step: step, isTraining: isTraining)
        }
        values[step.upperBound] = stores ? stored(y) : y
        if release { for j in from where lastUse[j + 1] < step.upperBound { values[j + 1] = nil } }
    }

    /// Values for running `layers` on `x`: `x` where the first of them reads, nil elsewhere. Every
    /// other value the layers read must come from among them.
    private func entry(_ x: Tensor<T>, layers: Range<Int>) -> [Tensor<T>?] {
        let from = sources[layers.lowerBound]
        precondition(
            from.count == 1
                && layers.allSatisfy { sources[$0].allSatisfy { $0 == from[0] || layers.contains($0) } },
            "layers \(layers) do not read one value from outside")
        var values = [Tensor<T>?](repeating: nil, count: nodes.count + 1)
        values[from[0] + 1] = x
        return values
    }

    /// The same network (spec and tensors) computing in another scalar type; values are rounded.
    public func converted<U: NetworkScalar>(to: U.Type = U.self, storage: StorageFormat = .native) -> Network<U> {
        // The tensors match the spec by construction, so this cannot throw.
        try! Network<U>(spec: spec, parameters: tensorValues(), storage: storage, folded: folded)
    }

    /// Every tensor the network owns, in layer order: (`LAYER/NAME`, parameter).
    public var parameters: [(name: String, parameter: Parameter<T>)] {
        zip(layerNames, nodes).flatMap { name, node in
            (node.layer?.parameters ?? []).map { (tensorKey(name, $0.name), $0) }
        }
    }

    /// Sets the input normalization's statistics (rounded to `T` and the storage format) when the
    /// network has one; throws when they are not one per input channel (or one for all) or a
    /// deviation is not positive and finite.
    public func setInputNormalization(_ statistics: ChannelStatistics) throws {
        for case .inputNormalization(let n) in nodes {
            let c = n.mean.value.count, s = try statistics.spread(over: c)
            var m = Tensor(shape: [c], data: s.mean.map { T($0) }), d = Tensor(shape: [c], data: s.std.map { T($0) })
            storage.round(&m.data)
            storage.round(&d.data)
            guard m.data.allSatisfy(\.isFinite), d.data.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw ModelError.badSpec("the means must be finite and the deviations positive and finite")
            }
            (n.mean.value, n.std.value) = (m, d)
        }
    }

    /// The dropout layers' mask generators, in layer order (for a checkpoint).
    public var dropoutGenerators: [RandomSource] {
        get { nodes.compactMap { if case .dropout(let d) = $0 { d.generator } else { nil } } }
        set {
            let layers = nodes.compactMap { if case .dropout(let d) = $0 { d } else { nil } }
            precondition(layers.count == newValue.count, "one generator per dropout layer")
            for (d, g) in zip(layers, newValue) { d.generator = g }
        }
    }

    /// The layers of one input, in order, for inspection and tests (merges are left out).
    public var layers: [any Layer<T>] { nodes.compactMap(\.layer) }

    /// Every tensor's value widened to Double (exact for Float and Float16), keyed by name.
    public func tensorValues() -> [String: Tensor<Double>] {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.parameter.value.converted(to: Double.self)) })
    }

    /// Logits `(N, classes)` for `x: (N, C, H, W)`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    public func predict(_ x: Tensor<T>, isTraining: Bool = false) -> Tensor<T> {
        forward(x, layers: nodes.indices, isTraining: isTraining)
    }

    /// The output of `layers` (a range of layer indices) for `x`, the value the first of them
    /// reads; every other value they read must come from among them. The rest of the network is
    /// not run. Inputs and outputs are rounded to the storage format, as in `predict`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    public func forward(
        _ x: Tensor<T>, layers: Range<Int>, isTraining: Bool = false, transform: InputTransform? = nil
    ) -> Tensor<T> {
        // Inference: a convolution followed by ReLU (and max pooling) runs them on each chunk of
        // images while its outputs are in cache; the values are the same.
        let steps = isTraining ? layers.map { $0..<($0 + 1) } : Self.steps(nodes, layers, pools: true, chained: chained)
        var values = entry(stored(x), layers: layers)
        for step in steps {
            run(&values, step: step, isTraining: isTraining, stores: true, release: true, transform: transform)
        }
        return values[layers.upperBound]!
    }

    /// The output of layer `i` in inference for `xs`, the values it reads (one but for a merge).
    @_specialize(where T == Float)
    public func forward(_ xs: [Tensor<T>], layer i: Int) -> Tensor<T> {
        if case .merge(let m) = nodes[i] { return stored(m.forward(xs.map(stored), isTraining: false)) }
        return forward(xs[0], layers: i..<(i + 1))
    }

    /// The value layer `i` reads (its first input) when the network runs in inference on `x`,
    /// each layer's inputs through `transform`.
    @_specialize(where T == Float)
    public func input(of i: Int, for x: Tensor<T>, transform: InputTransform? = nil) -> Tensor<T> {
        var values = entry(stored(x), layers: nodes.indices)
        for step in Self.steps(nodes, 0..<i, pools: true, chained: chained) {
            run(&values, step: step, isTraining: false, stores: true, release: true, transform: transform)
        }
        return values[sources[i][0] + 1]!
    }

    /// The output of the last of `layers`, run in inference on `values` (the input and every
    /// layer's output, as `forwardAll` gives them), which supplies every value they read from
    /// before them: the rest of the network after a layer's output was replaced.
    @_specialize(where T == Float)
    public func forward(from values: [Tensor<T>], layers: Range<Int>) -> Tensor<T> {
        var v = values.map { Optional($0) }
        for step in Self.steps(nodes, layers, pools: true, chained: chained) {
            run(&v, step: step, isTraining: false, stores: true, release: false)
        }
        return v[layers.upperBound]!
    }

    /// Median seconds of each inference step (`steps` with pools, as `predict` runs them) over
    /// `runs` passes on `x`, after one untimed pass; a layer fused into the one before it gets nil.
    @_specialize(where T == Float)
    public func inferenceProfile(_ x: Tensor<T>, runs: Int) -> [Double?] {
        let steps = Self.steps(nodes, nodes.indices, pools: true, chained: chained)
        var times = [[Double]](repeating: [], count: steps.count)
        for run in 0...runs {
            var values = entry(stored(x), layers: nodes.indices)
            for (i, step) in steps.enumerated() {
                let t = timed { self.run(&values, step: step, isTraining: false, stores: true, release: true) }
                if run > 0 { times[i].append(t) }
            }
        }
        return byLayer(steps, times.map(median))
    }

    /// One value per step of `steps`, spread out to one per layer: at the step's first layer, nil
    /// at the layers fused into it.
    private func byLayer<V>(_ steps: [Range<Int>], _ values: [V]) -> [V?] {
        var out = [V?](repeating: nil, count: nodes.count)
        for (step, v) in zip(steps, values) { out[step.lowerBound] = v }
        return out
    }

    /// `x` rounded to the storage format.
    @inline(__always)
    func stored(_ x: Tensor<T>) -> Tensor<T> {
        var y = x
        storage.round(&y.data)
        return y
    }

    /// The input followed by every layer's output, in order.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    public func forwardAll(_ x: Tensor<T>, isTraining: Bool = false, transform: InputTransform? = nil) -> [Tensor<T>] {
        var values = entry(stored(x), layers: nodes.indices)
        for i in nodes.indices {
            run(&values, step: i..<(i + 1), isTraining: isTraining, stores: true, release: false, transform: transform)
        }
        return values.map { $0! }
    }

    /// The mean softmax cross-entropy loss on `x` against labels `t` (training semantics by default).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func loss(_ x: Tensor<T>, _ t: [Int], isTraining: Bool = true) -> T {
        let steps = isTraining ? trainingSteps : Self.steps(nodes, nodes.indices, pools: true, chained: chained)
        return loss(x, t, steps: steps, isTraining: isTraining, stores: false)
    }

    /// The loss of `steps` run on `x`; with `stores`, `x` and every step's output are rounded to the
    /// storage format.
    func loss(_ x: Tensor<T>, _ t: [Int], steps: [Range<Int>], isTraining: Bool, stores: Bool) -> T {
        var values = entry(stores ? stored(x) : x, layers: nodes.indices)
        let transform = isTraining ? trainingInputs?.forward : nil
        for step in steps {
            run(&values, step: step, isTraining: isTraining, stores: stores, release: true, transform: transform)
        }
        return lossLayer.forward(values[nodes.count]!, t)
    }

    /// Adds the gradient `d` of value `j + 1` (see `run`) to those already in `grads`; a layer that
    /// leaves its input gradient empty adds nothing.
    private func accumulate(_ grads: inout [Tensor<T>?], _ j: Int, _ d: Tensor<T>) {
        guard var g = grads[j + 1], g.count == d.count, d.count > 0 else {
            if grads[j + 1] == nil { grads[j + 1] = d }
            return
        }
        grads[j + 1] = nil
        for k in g.data.indices { g.data[k] += d.data[k] }
        grads[j + 1] = g
    }

    /// Runs the backward pass of training step `step`: takes its output gradient from `grads` and
    /// adds its input gradients to the values it reads, rounded to the storage format when `stores`.
    private func backward(_ grads: inout [Tensor<T>?], step: Range<Int>, inputGradient: Bool, stores: Bool = false) {
        let d = grads[step.upperBound]!
        grads[step.upperBound] = nil
        let from = sources[step.lowerBound]
        let ds = backward(
            d, step: step, inputGradient: inputGradient || trainingInputs != nil || from.contains { $0 >= 0 })
        for (j, dj) in zip(from, ds) {
            accumulate(&grads, j, trainingInputs.map { $0.backward(step.lowerBound, j, dj) } ?? dj)
            if stores { grads[j + 1] = grads[j + 1].map(stored) }
        }
    }

    /// dLoss/dInput for `d` = dLoss/dOutput of the network after a training forward pass over
    /// `steps`: each step's backward in reverse order (see `gradient`).
    func backpropagate(_ d: Tensor<T>, steps: [Range<Int>], inputGradient: Bool, stores: Bool) -> Tensor<T> {
        var grads = [Tensor<T>?](repeating: nil, count: nodes.count + 1)
        grads[nodes.count] = d
        for step in steps.reversed() { backward(&grads, step: step, inputGradient: inputGradient, stores: stores) }
        return grads[0] ?? Tensor(zeros: [0])
    }

    /// Forward (training semantics) and backward on one batch: returns the loss, sets every
    /// parameter's `grad`, and returns dLoss/dInput (left empty by a first convolution layer
    /// unless `inputGradient`; training does not need it). Where several layers read one value,
    /// their gradients add in reverse layer order.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    @discardableResult
    public func gradient(_ x: Tensor<T>, _ t: [Int], inputGradient: Bool = true) -> (loss: T, dx: Tensor<T>) {
        let l = loss(x, t)
        return (
            l, backpropagate(lossLayer.backward(), steps: trainingSteps, inputGradient: inputGradient, stores: false)
        )
    }

    /// Median seconds per training step (`trainingSteps`) of `runs` training steps on `x` against
    /// `t`: one forward and one backward time per step, in layer order (after one untimed warm-up
    /// step); a layer fused into the one before it gets nil.
    @_specialize(where T == Float)
    public func profile(_ x: Tensor<T>, _ t: [Int], runs: Int) -> [(forward: Double, backward: Double)?] {
        var times = [[(forward: Double, backward: Double)]](repeating: [], count: trainingSteps.count)
        for run in 0...runs {
            var values = entry(x, layers: nodes.indices), forward = [Double]()
            var backward = [Double](repeating: 0, count: trainingSteps.count)
            for step in trainingSteps {
                forward.append(timed { self.run(&values, step: step, isTraining: true, stores: false, release: true) })
            }
            _ = lossLayer.forward(values[nodes.count]!, t)
            var grads = [Tensor<T>?](repeating: nil, count: nodes.count + 1)
            grads[nodes.count] = lossLayer.backward()
            for (i, step) in trainingSteps.enumerated().reversed() {
                backward[i] = timed { self.backward(&grads, step: step, inputGradient: false) }
            }
            if run > 0 { for i in trainingSteps.indices { times[i].append((forward[i], backward[i])) } }
        }
        return byLayer(trainingSteps, times.map { ts in (median(ts.map(\.forward)), median(ts.map(\.backward))) })
    }

    /// Logits `(count, classes)`, widened to Double, for `count` images from `images` (row-major
    /// `(count, C, H, W)` Floats, rounded to `T`), computed in batches with inference semantics.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @_specialize(where T == Float16)
    public func logits(_ images: [Float], count: Int, batchSize: Int = 100) -> Tensor<Double> {
        let per = spec.inputShape.reduce(1, *)
        precondition(images.count == count * per, "images hold \(images.count) values, expected \(count)×\(per)")
        var out: [Double] = []
        out.reserveCapacity(count * spec.classes)
        for start in stride(from: 0, to: count, by: batchSize) {
            let n = min(batchSize, count - start)
            let x = Tensor<T>(shape: [n] + spec.inputShape, data: images[start * per..<(start + n) * per].map { T($0) })
            out += predict(x).data.map { Double($0) }
        }
        return Tensor(shape: [count, spec.classes], data: out)
    }

    /// Predicted classes for `count` images (see `logits`).
    public func classify(_ images: [Float], count: Int, batchSize: Int = 100) -> [Int] {
        argmaxRows(logits(images, count: count, batchSize: batchSize))
    }
}

/// The predicted class of each row of logits `(N, K)`: the index of the largest value (the first
/// on ties), or -1, no answer, for a row that holds an infinite or NaN value.
@_specialize(where T == Float)
@_specialize(where T == Double)
@_specialize(where T == Float16)
public func argmaxRows<T: NetworkScalar>(_ x: Tensor<T>) -> [Int] {
    let k = x.shape[1]
    return (0..<x.shape[0]).map { i in
        var best = 0
        for j in 0..<k {
            let v = x.data[i * k + j]
            guard v.isFinite else { return -1 }
            if v > x.data[i * k + best] { best = j }
        }
        return best
    }
}

/// The median of `times` (the upper one of the middle two for an even count); `times` is not empty.
func median(_ times: [Double]) -> Double { times.sorted()[times.count / 2] }

/// Wall seconds taken by `body`.
@inline(__always)
public func timed(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}
