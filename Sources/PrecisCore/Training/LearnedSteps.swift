/// The derivatives of learned step size quantization (LSQ, Esser et al. 2019). A value `x` is
/// quantized as `x̂ = s·(clamp(⌊x/s⌉ + z, qmin, qmax) − z)` with step `s` and zero point `z`. The
/// rounding's derivative is taken as 1, so `∂x̂/∂x` is 1 inside the range and 0 where `x`
/// saturates, and `∂x̂/∂s` is `⌊x/s⌉ − x/s` inside, `qmin − z` or `qmax − z` where it saturates.
public enum LearnedStep {
    /// `∂x̂/∂s` for `x` quantized with `r`, and whether `x` is inside the range (`∂x̂/∂x` = 1).
    @inline(__always)
    public static func derivative(_ x: Double, _ r: QuantRange) -> (step: Double, passes: Bool) {
        let v = x / r.scale, q = v.rounded(.toNearestOrEven) + Double(r.zeroPoint)
        if q < Double(r.qmin) { return (Double(r.qmin - r.zeroPoint), false) }
        if q > Double(r.qmax) { return (Double(r.qmax - r.zeroPoint), false) }
        return (q - Double(r.zeroPoint) - v, true)
    }

    /// The factor the paper scales a step's gradient by, `1/√(N·Qp)`: `N` the values one step
    /// quantizes (per image for an input), `Qp` the codes above the zero point.
    public static func gradientScale(values: Int, _ r: QuantRange) -> Double {
        1 / (Double(max(values, 1)) * Double(max(r.qmax - r.zeroPoint, 1))).squareRoot()
    }

    /// The gradient of the loss with respect to `r`'s step, with `dx̂` that with respect to the
    /// quantized values of `x`; sets `dx̂` to the gradient with respect to `x` (0 where `x`
    /// saturates). Unscaled: the sum of `dx̂·∂x̂/∂s`.
    public static func backward(_ x: [Float], _ dx: inout [Float], _ r: QuantRange) -> Double {
        var sum = 0.0
        for k in x.indices {
            let (d, passes) = derivative(Double(x[k]), r)
            sum += Double(dx[k]) * d
            if !passes { dx[k] = 0 }
        }
        return sum
    }
}

/// One tensor's or input's learned steps: a parameter the optimizer updates, one step per group,
/// with each group's zero point and codes.
final class StepSet {
    let steps: Parameter<Float>
    let codes: [QuantRange]
    /// The least each step may become: a thousandth of where it started.
    let least: [Float]

    init(_ ranges: [QuantRange]) {
        steps = Parameter("step", Tensor(shape: [ranges.count], data: ranges.map { Float($0.scale) }))
        (codes, least) = (ranges, ranges.map { Float($0.scale) / 1000 })
    }

    /// The ranges the current steps give.
    var ranges: [QuantRange] {
        zip(codes, steps.value.data).map {
            QuantRange(scale: Double($1), zeroPoint: $0.zeroPoint, qmin: $0.qmin, qmax: $0.qmax)
        }
    }

    /// Keeps every step at or above its least.
    func clamp() {
        for g in least.indices { steps.value.data[g] = max(steps.value.data[g], least[g]) }
    }
}

/// Learned step sizes for quantization-aware training (LSQ): the weight scales of every quantized
/// layer (one per tensor, channel or int4 group) and the int8 ranges of their inputs are trained
/// with the network, by the optimizer rule and rate it trains with. Starts from the scales of the
/// post-training form; zero points stay where calibration put them.
public final class LearnedSteps {
    /// Each quantized layer's weight steps, and the group of every weight in its stored order.
    let weights: [Int: (set: StepSet, group: [Int])]
    /// The learned input ranges, by layer index, once the inputs are quantized.
    private(set) var inputs: [Int: StepSet] = [:]
    /// The inputs layers read in the current training pass, by layer index.
    private var seen: [Int: Tensor<Float>] = [:]
    /// The rule that updates the weight steps, and the one for the input steps (which start later).
    let weightOptimizer: Optimizer<Float>, inputOptimizer: Optimizer<Float>

    /// Steps starting from `form`'s weight scales (int8 weights, or int4 weights of a number
    /// format), for `spec`, updated by `rule` at `learningRate`; throws for formats whose scales
    /// follow from the values.
    public init(form: QuantizedForm, spec: ModelSpec, rule: OptimizerKind, learningRate: Double) throws {
        weightOptimizer = Optimizer(rule, learningRate: learningRate)
        inputOptimizer = Optimizer(rule, learningRate: learningRate)
        var weights: [Int: (StepSet, [Int])] = [:]
        switch form {
        case .int8(let model):
            for (i, layer) in model.layers {
                let perChannel = layer.weightScales.count > 1
                weights[i] = (
                    StepSet(layer.weightScales.map { QuantRange(scale: $0, zeroPoint: 0, qmin: -127, qmax: 127) }),
                    layer.weights.indices.map { perChannel ? layer.channel($0) : 0 }
                )
            }
        case .format(let model):
            guard case .int4(let w) = model.mode.weights else {
                throw ModelError.badSpec(
                    "learned step sizes need int8 or int4 weights: \(model.mode.name) takes its scales from the values")
            }
            for layer in try spec.geometry() {
                guard let t = model.weights[layer.index], let gemm = layer.gemm else { continue }
                let ranges = (0..<t.scales.count).map { w.range(block: $0, in: t) }
                let order = gemm.rows((0..<t.codes.count).map(Double.init)).map { Int($0) }
                var group = [Int](repeating: 0, count: order.count)
                for (r, k) in order.enumerated() { group[k] = t.block(of: r) }
                weights[layer.index] = (StepSet(ranges), group)
            }
        }
        self.weights = weights.mapValues { (set: $0.0, group: $0.1) }
    }

    /// Starts learning the int8 input ranges of `calibration` (the others stay fixed).
    func startInputs(_ calibration: [Int: InputCalibration]) {
        for (i, c) in calibration { if case .range(let r) = c { inputs[i] = StepSet([r]) } }
    }

    /// `calibration` with the learned input ranges in place.
    func inputCalibration(_ calibration: [Int: InputCalibration]) -> [Int: InputCalibration] {
        calibration.merging(inputs.mapValues { .range($0.ranges[0]) }) { $1 }
    }

    /// `form` with the learned steps: weights re-encoded from `masters` (by name, for `spec`), int8
    /// biases at the new scales, and the learned input ranges.
    func applied(to form: QuantizedForm, masters: [String: Tensor<Double>], spec: ModelSpec) throws -> QuantizedForm {
        switch form {
        case .int8(let model):
            var layers = model.layers
            for (i, (set, group)) in weights {
                let name = spec.layerNames[i], ranges = set.ranges
                guard var layer = layers[i], let w = masters[tensorKey(name, "W")],
                    let b = masters[tensorKey(name, "b")]
                else { throw ModelError.badSpec("\(name) has no int8 layer, W or b") }
                layer.input = inputs[i]?.ranges[0] ?? layer.input
                layer.weightScales = ranges.map(\.scale)
                layer.weights = w.data.indices.map { Int8(ranges[group[$0]].quantize(w.data[$0])) }
                layer.bias = layer.biasCodes(b.data)
                layers[i] = layer
            }
            return .int8(QuantizedModel(scheme: model.scheme, layers: layers, folded: model.folded))
        case .format(var model):
            guard case .int4(let format) = model.mode.weights else { return form }
            for layer in try spec.geometry() {
                guard var t = model.weights[layer.index], let set = weights[layer.index]?.set, let gemm = layer.gemm,
                    let w = masters[tensorKey(layer.name, "W")]
                else { continue }
                t.scales = set.steps.value.data
                let rows = gemm.rows(w.data.map { Float($0) })
                t.codes = rows.indices.map { format.code(rows[$0], block: t.block(of: $0), in: t) }
                model.weights[layer.index] = t
            }
            model.inputs = inputCalibration(model.inputs)
            return .format(model)
        }
    }

    /// What the network's training pass does to the inputs with learned ranges: rounds them (the
    /// forward), and gives their steps the gradient and stops it where they saturate (the backward).
    var trainingInputs: (forward: Network<Float>.InputTransform, backward: Network<Float>.InputTransform) {
        (
            forward: { [self] i, _, x in
                guard let r = inputs[i]?.ranges[0] else { return x }
                seen[i] = x
                var y = x
                OperandRounding.int8(r)(&y.data, .rows(1, y.count))
                return y
            },
            backward: { [self] i, _, d in
                guard let set = inputs[i], let x = seen[i], x.count == d.count else { return d }
                var dx = d
                let r = set.ranges[0], perImage = x.count / max(x.shape[0], 1)
                let g = LearnedStep.backward(x.data, &dx.data, r) * LearnedStep.gradientScale(values: perImage, r)
                set.steps.grad.data[0] += Float(g)
                return dx
            }
        )
    }

    /// After a training pass with the quantized weights in place: sets each weight step's gradient
    /// from the weights' (`tensors` by name, holding dLoss/dŵ) and `masters` (the float weights, by
    /// name), and stops the weights' gradients where they saturate.
    func backward(_ tensors: [String: Parameter<Float>], masters: [String: Tensor<Float>], spec: ModelSpec) {
        for (i, (set, group)) in weights {
            let key = tensorKey(spec.layerNames[i], "W")
            guard let p = tensors[key], let w = masters[key] else { continue }
            let ranges = set.ranges
            var sums = [Double](repeating: 0, count: ranges.count), counts = [Int](repeating: 0, count: ranges.count)
            for k in w.data.indices {
                let (d, passes) = LearnedStep.derivative(Double(w.data[k]), ranges[group[k]])
                sums[group[k]] += Double(p.grad.data[k]) * d
                counts[group[k]] += 1
                if !passes { p.grad.data[k] = 0 }
            }
            set.steps.grad.data = ranges.indices.map {
                Float(sums[$0] * LearnedStep.gradientScale(values: counts[$0], ranges[$0]))
            }
        }
    }

    /// Clears the input steps' gradients before a training pass adds to them.
    func startPass() {
        for set in inputs.values { set.steps.grad.data = [0] }
    }

    /// One optimizer step on every learned step; forgets the pass's inputs.
    func update() {
        weightOptimizer.update(weights.keys.sorted().map { weights[$0]!.set.steps })
        if !inputs.isEmpty { inputOptimizer.update(inputs.keys.sorted().map { inputs[$0]!.steps }) }
        for set in weights.values.map(\.set) + Array(inputs.values) { set.clamp() }
        seen = [:]
    }
}
