import Foundation
import PrecisCore

/// Reads a Keras model saved in the legacy HDF5 format (`model.save("x.h5")`): the `model_config`
/// JSON on `/` and the weights under `/model_weights/<layer>/`. A Sequential model of Conv2D (groups
/// 1, no dilation, `valid` padding or `same` with stride 1 and an odd kernel), MaxPooling2D and
/// AveragePooling2D (`valid`), Flatten, Dense, Dropout (skipped: the identity at inference),
/// BatchNormalization, ReLU and Activation layers (`relu`; a final `softmax` is dropped, Precis
/// reports logits), and the activations `relu`, `linear` and a final `softmax` inside layers.
/// Keras is channels-last by default: convolution kernels `(KH, KW, C, F)` become `(F, C, KH, KW)`,
/// and the rows of the first Dense layer after a Flatten are reordered from `(H, W, C)` to
/// `(C, H, W)`, the order Precis flattens in. Anything else is refused with the layer's name.
public func importKeras(_ path: String) throws -> ImportedNetwork {
    func fail(_ problem: String) -> DataError { DataError(file: path, problem: problem) }
    let root = try HDF5File.open(path).root
    guard case .string(let text)? = try root.attribute("model_config") else {
        throw fail("is not a Keras HDF5 model (no model_config attribute on /)")
    }
    guard let config = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
        let modelClass = config["class_name"] as? String,
        let body = config["config"] as? [String: Any], let layerList = body["layers"] as? [[String: Any]]
    else { throw fail("model_config is not a Keras model description") }
    guard modelClass == "Sequential" else { throw fail("a \(modelClass) model: only Sequential models are read") }
    guard root.contains("model_weights") else { throw fail("holds no model_weights group") }
    let weightsGroup = try root.group("model_weights")
    var version = "Keras"
    if case .string(let v)? = try root.attribute("keras_version") { version += " \(v)" }
    if case .string(let b)? = try root.attribute("backend") { version += " (\(b) backend)" }

    var layers: [ImportedLayer] = [], notes: [String] = []
    var inputShape: [Int]?, channelsLast = true, flattenedFrom: [Int]?
    /// The shape after the layers so far, `(C, H, W)` or `(features)`.
    func currentShape(_ label: String) throws -> [Int] {
        guard let inputShape else { throw fail("\(label) comes before the input's shape is known") }
        let spec = ModelSpec(name: "keras", inputShape: inputShape, layers: layers.map(\.spec), weightInit: .he)
        if layers.isEmpty { return inputShape }
        do { return try spec.layerShapes().last ?? inputShape } catch { throw fail("\(label): \(error)") }
    }
    for (k, entry) in layerList.enumerated() {
        let kind = entry["class_name"] as? String ?? "?", c = entry["config"] as? [String: Any] ?? [:]
        let name = c["name"] as? String ?? "layer \(k)", label = "layer \(name) (\(kind))"
        let last = k == layerList.count - 1
        /// An integer list (a null, such as an unknown batch size, as -1).
        func ints(_ key: String) -> [Int]? { (c[key] as? [Any])?.map { ($0 as? NSNumber)?.intValue ?? -1 } }
        func string(_ key: String, _ fallback: String) -> String { c[key] as? String ?? fallback }
        /// The layer's weights by their last path component (`kernel`, `bias`, `gamma`, ...).
        func weights() throws -> [String: Tensor<Double>] {
            guard weightsGroup.contains(name) else { throw fail("\(label): no weights under /model_weights/\(name)") }
            let g = try weightsGroup.group(name)
            var out: [String: Tensor<Double>] = [:]
            for p in try g.datasetPaths() {
                let info = try g.datasetInfo(p)
                let values: [Double]
                switch info.type {
                case .float32: values = try g.read(p, as: Float.self).values.map(Double.init)
                case .float64: values = try g.read(p, as: Double.self).values
                default: throw fail("\(label): weight \(p) has element type \(info.typeName)")
                }
                out[String(p.split(separator: "/").last ?? "")] = Tensor(shape: info.shape, data: values)
            }
            return out
        }
        func activation(_ value: String) throws {
            switch value {
            case "linear": break
            case "relu": layers.append(ImportedLayer(.relu, label: label))
            case "relu6": layers.append(ImportedLayer(.activation(.clip(min: 0, max: 6)), label: label))
            case "leaky_relu": layers.append(ImportedLayer(.activation(.leakyReLU(alpha: 0.2)), label: label))
            case "sigmoid": layers.append(ImportedLayer(.activation(.sigmoid), label: label))
            // Keras 3's: relu6(x + 3) / 6.
            case "hard_sigmoid":
                layers.append(ImportedLayer(.activation(.hardSigmoid(alpha: 1.0 / 6, beta: 0.5)), label: label))
            case "hard_silu", "hard_swish": layers.append(ImportedLayer(.activation(.hardSwish), label: label))
            case "softmax" where last: notes.append("\(label): the final softmax dropped (Precis reports logits)")
            default: throw fail("\(label): activation \(value) is not supported")
            }
        }
        if let format = c["data_format"] as? String { channelsLast = format == "channels_last" }
        // Keras 2 gives the input's shape on the first layer rather than an InputLayer.
        if inputShape == nil, kind != "InputLayer", let shape = ints("batch_input_shape"), shape.count == 4 {
            inputShape = channelsLast ? [shape[3], shape[1], shape[2]] : Array(shape.dropFirst())
        }
        switch kind {
        case "InputLayer":
            guard let shape = ints("batch_shape") ?? ints("batch_input_shape"), shape.count == 4,
                shape.dropFirst().allSatisfy({ $0 > 0 && $0 <= 4096 })
            else { throw fail("\(label): the input must be images of known size (batch, H, W, C)") }
            inputShape = channelsLast ? [shape[3], shape[1], shape[2]] : Array(shape.dropFirst())
        case "Conv2D":
            let t = try weights()
            guard let kernel = t["kernel"], kernel.shape.count == 4, let size = ints("kernel_size"), size.count == 2,
                size[0] == size[1]
            else { throw fail("\(label): only square 2-D kernels are supported") }
            let stride = ints("strides") ?? [1, 1]
            guard stride.count == 2, stride[0] == stride[1], (ints("dilation_rate") ?? [1, 1]) == [1, 1],
                (c["groups"] as? Int ?? 1) == 1
            else { throw fail("\(label): only equal strides, no dilation and groups 1 are supported") }
            let pad: Int
            switch string("padding", "valid") {
            case "valid": pad = 0
            case "same" where stride[0] == 1 && size[0] % 2 == 1: pad = size[0] / 2
            case let p:
                throw fail("\(label): padding \(p) with stride \(stride[0]) and kernel \(size[0]) is not supported")
            }
            // (KH, KW, C, F) to (F, C, KH, KW).
            let (kh, kw, ci, f) = (kernel.shape[0], kernel.shape[1], kernel.shape[2], kernel.shape[3])
            let w = Tensor(
                shape: [f, ci, kh, kw],
                data: (0..<(f * ci * kh * kw)).map { i in
                    let (o, rest) = (i / (ci * kh * kw), i % (ci * kh * kw))
                    let (ch, y, x) = (rest / (kh * kw), rest % (kh * kw) / kw, rest % kw)
                    return kernel.data[((y * kw + x) * ci + ch) * f + o]
                })
            layers.append(
                ImportedLayer(
                    .convolution(filters: f, size: size[0], stride: stride[0], pad: pad),
                    ["W": w, "b": t["bias"] ?? Tensor(zeros: [f])], label: label))
            try activation(string("activation", "linear"))
        case "MaxPooling2D", "AveragePooling2D":
            guard let size = ints("pool_size"), size.count == 2, size[0] == size[1] else {
                throw fail("\(label): only square pools are supported")
            }
            let stride = ints("strides") ?? size
            guard stride.count == 2, stride[0] == stride[1], string("padding", "valid") == "valid" else {
                throw fail("\(label): only equal strides and valid padding are supported")
            }
            layers.append(
                ImportedLayer(
                    kind == "MaxPooling2D"
                        ? .maxPooling(size: size[0], stride: stride[0], pad: 0)
                        : .averagePooling(size: size[0], stride: stride[0], pad: 0), label: label))
        case "Flatten":
            let shape = try currentShape(label)
            flattenedFrom = shape.count == 3 && channelsLast ? shape : nil
        case "Dense":
            let t = try weights()
            guard var kernel = t["kernel"], kernel.shape.count == 2 else { throw fail("\(label): no 2-D kernel") }
            let units = kernel.shape[1]
            if let from = flattenedFrom {
                // Keras flattened (H, W, C); Precis flattens (C, H, W): row (c, h, w) is Keras's (h, w, c).
                let (ch, h, w) = (from[0], from[1], from[2])
                guard kernel.shape[0] == ch * h * w else {
                    throw fail("\(label): kernel has \(kernel.shape[0]) rows, the flattened input \(ch * h * w)")
                }
                let source = kernel.data
                kernel.data = (0..<(ch * h * w * units)).map { i in
                    let (row, u) = (i / units, i % units)
                    let (cc, y, x) = (row / (h * w), row % (h * w) / w, row % w)
                    return source[((y * w + x) * ch + cc) * units + u]
                }
                flattenedFrom = nil
            }
            layers.append(
                ImportedLayer(
                    .affine(units: units), ["W": kernel, "b": t["bias"] ?? Tensor(zeros: [units])], label: label))
            try activation(string("activation", "linear"))
        case "Dropout":
            notes.append("\(label) skipped: it is the identity at inference")
        case "ReLU":
            let most = c["max_value"] as? Double, slope = c["negative_slope"] as? Double ?? 0
            guard (c["threshold"] as? Double ?? 0) == 0, slope == 0 || most == nil, most.map({ $0 > 0 }) ?? true else {
                throw fail("\(label): only a ReLU with a positive max_value or a negative_slope is supported")
            }
            let layer: LayerSpec =
                if let most { .activation(.clip(min: 0, max: most)) } else if slope != 0 {
                    .activation(.leakyReLU(alpha: slope))
                } else { .relu }
            layers.append(ImportedLayer(layer, label: label))
        case "LeakyReLU":
            let slope = c["negative_slope"] as? Double ?? c["alpha"] as? Double ?? 0.3
            layers.append(ImportedLayer(.activation(.leakyReLU(alpha: slope)), label: label))
        case "GlobalAveragePooling2D":
            guard try currentShape(label).count == 3, (c["keepdims"] as? Bool ?? false) == false else {
                throw fail("\(label): only images pooled to one value a channel (keepdims false) are supported")
            }
            layers.append(ImportedLayer(.globalAveragePooling, label: label))
        case "Activation":
            try activation(string("activation", "linear"))
        case "BatchNormalization":
            let t = try weights(), shape = try currentShape(label)
            let axis = c["axis"] as? Int ?? -1, channels = shape[0]
            guard shape.count == 1 ? [-1, 1].contains(axis) : (channelsLast ? [-1, 3] : [1]).contains(axis) else {
                throw fail("\(label): axis \(axis) is not the channel axis")
            }
            guard let mean = t["moving_mean"], let variance = t["moving_variance"] else {
                throw fail("\(label): no moving mean and variance")
            }
            let epsilon = c["epsilon"] as? Double ?? 1e-3
            if epsilon != 1e-5 {
                notes.append("\(label): epsilon \(epsilon) folded into the moving variance (Precis adds 1e-5)")
            }
            layers.append(
                ImportedLayer(
                    .batchNormalization,
                    [
                        "gamma": t["gamma"] ?? Tensor(shape: [channels], data: Array(repeating: 1, count: channels)),
                        "beta": t["beta"] ?? Tensor(zeros: [channels]), "running_mean": mean,
                        "running_var": Tensor(shape: variance.shape, data: variance.data.map { $0 + epsilon - 1e-5 }),
                    ], label: label))
        default:
            throw fail("\(label) is not supported")
        }
    }
    guard let inputShape else { throw fail("the model has no InputLayer with the input's shape") }
    return try ImportedNetwork(
        name: "keras", inputShape: inputShape, layers: layers, producer: version, notes: notes, file: path)
}
