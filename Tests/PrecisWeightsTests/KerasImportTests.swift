import Foundation
import PrecisCore
import Testing

@testable import PrecisWeights

@Suite struct KerasImportTests {
    /// A layer of a functional model's configuration, reading `inputs` as Keras 3 writes it.
    func layer(_ kind: String, _ name: String, _ config: [String: Any], reads inputs: [String]) -> [String: Any] {
        let tensors = inputs.map { ["class_name": "__keras_tensor__", "config": ["keras_history": [$0, 0, 0]]] }
        let args: [Any] = tensors.count == 1 ? [tensors[0]] : [tensors]
        return [
            "class_name": kind, "name": name, "config": config.merging(["name": name]) { a, _ in a },
            "inbound_nodes": inputs.isEmpty ? [] : [["args": args, "kwargs": [:] as [String: Any]]],
        ]
    }

    /// Writes a legacy Keras HDF5 model of `layers` with `weights` (`layer/name`) to a scratch file.
    func write(_ layers: [[String: Any]], output: String, weights: [String: Tensor<Double>], in dir: String)
        throws -> String
    {
        let config: [String: Any] = [
            "class_name": "Functional", "config": ["layers": layers, "output_layers": [[output, 0, 0]]],
        ]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)
        let path = dir + "/model.h5"
        let root = try HDF5File.create(path).root
        try root.setAttribute("model_config", .string(text))
        let g = try root.createGroup("model_weights")
        for (key, t) in weights {
            let parts = key.split(separator: "/").map(String.init)
            let layer = try g.groupCreatingIfNeeded(parts[0]).groupCreatingIfNeeded(parts[0])
            try layer.write(parts[1] + ":0", shape: t.shape, t.data.map(Float.init))
        }
        return path
    }

    func ramp(_ shape: [Int]) -> Tensor<Double> {
        Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { Double($0 % 17) / 16 - 0.5 })
    }

    @Test func functionalModelsBecomeGraphs() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let same: [String: Any] = ["padding": "same", "data_format": "channels_last"]
        let layers = [
            layer("InputLayer", "in", ["batch_shape": [NSNull(), 6, 6, 2]], reads: []),
            layer(
                "Conv2D", "c",
                same.merging(["kernel_size": [3, 3], "strides": [2, 2], "activation": "relu"]) { a, _ in a },
                reads: ["in"]),
            layer(
                "DepthwiseConv2D", "d", same.merging(["kernel_size": [3, 3], "use_bias": false]) { a, _ in a },
                reads: ["c"]),
            layer("Add", "a", [:], reads: ["c", "d"]),
            layer("Concatenate", "k", ["axis": -1], reads: ["a", "c"]),
            layer("GlobalAveragePooling2D", "g", [:], reads: ["k"]),
            layer("Dense", "o", [:], reads: ["g"]),
        ]
        let (c, d, o) = (ramp([3, 3, 2, 3]), ramp([3, 3, 3, 1]), ramp([6, 2]))
        let path = try write(
            layers, output: "o",
            weights: ["c/kernel": c, "c/bias": ramp([3]), "d/depthwise_kernel": d, "o/kernel": o, "o/bias": ramp([2])],
            in: dir)
        let net = try importKeras(path)
        #expect(net.spec.inputShape == [2, 6, 6])
        // Keras's `same` with stride 2 on 6 pixels pads one, at the bottom and the right.
        let conv = ConvolutionSpec(filters: 3, kernel: [3, 3], strides: [2, 2], pads: [0, 0, 1, 1])
        let depthwise = ConvolutionSpec(filters: 3, kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], groups: 3)
        #expect(
            net.spec.layers == [
                .convolution(conv), .relu, .convolution(depthwise), .merge(.add), .merge(.concat),
                .globalAveragePooling,
                .affine(units: 2),
            ])
        #expect(net.spec.inputs(of: 3) == [1, 2])
        #expect(net.spec.inputs(of: 4) == [3, 1])
        let names = net.spec.layerNames
        let w = try #require(net.tensors["\(names[0])/W"]), dw = try #require(net.tensors["\(names[2])/W"])
        #expect(w.shape == [3, 2, 3, 3] && dw.shape == [3, 1, 3, 3])
        for (o, ch, y, x) in [(0, 0, 0, 0), (2, 1, 1, 2), (1, 0, 2, 1)] {
            #expect(w.data[((o * 2 + ch) * 3 + y) * 3 + x] == Double(Float(c.data[((y * 3 + x) * 2 + ch) * 3 + o])))
            #expect(dw.data[(o * 3 + y) * 3 + x] == Double(Float(d.data[(y * 3 + x) * 3 + o])))
        }
        #expect(net.tensors["\(names[2])/b"]?.data == [0, 0, 0])
        #expect(net.tensors["\(names[6])/W"]?.shape == [6, 2])
    }

    /// A ZeroPadding2D becomes the padding of the convolution that reads it (added to the convolution's
    /// own); anything else reading it is refused.
    @Test func zeroPaddingBecomesTheConvolutionsPadding() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func model(_ reader: [String: Any]) -> [[String: Any]] {
            [
                layer("InputLayer", "in", ["batch_shape": [NSNull(), 6, 6, 2]], reads: []),
                layer("ZeroPadding2D", "z", ["padding": [[0, 1], [2, 1]]], reads: ["in"]),
                reader,
                layer("GlobalAveragePooling2D", "g", [:], reads: ["r"]),
                layer("Dense", "o", [:], reads: ["g"]),
            ]
        }
        let depthwise = layer(
            "DepthwiseConv2D", "r",
            ["kernel_size": [3, 3], "strides": [2, 2], "padding": "valid", "use_bias": false],
            reads: ["z"])
        let path = try write(
            model(depthwise), output: "o",
            weights: ["r/depthwise_kernel": ramp([3, 3, 2, 1]), "o/kernel": ramp([2, 2])],
            in: dir)
        let net = try importKeras(path)
        #expect(
            net.spec.layers.first
                == .convolution(
                    ConvolutionSpec(filters: 2, kernel: [3, 3], strides: [2, 2], pads: [0, 2, 1, 1], groups: 2)))
        #expect(try net.spec.shapes()[0] == [2, 3, 4])
        let pool = layer("MaxPooling2D", "r", ["pool_size": [2, 2]], reads: ["z"])
        try FileManager.default.createDirectory(atPath: dir + "/pool", withIntermediateDirectories: false)
        let refused = try write(model(pool), output: "o", weights: ["o/kernel": ramp([2, 2])], in: dir + "/pool")
        #expect { try importKeras(refused) } throws: {
            "\($0)".contains("layer r (MaxPooling2D) reads a ZeroPadding2D")
        }
    }

    @Test func everyLayerThatCannotBeReadIsNamed() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let layers = [
            layer("InputLayer", "in", ["batch_shape": [NSNull(), 8, 8, 1]], reads: []),
            layer("Conv2D", "c", ["kernel_size": [3, 3]], reads: ["in"]),
            layer("Activation", "t", ["activation": "tanh"], reads: ["c"]),
            layer("Conv2DTranspose", "u", ["kernel_size": [3, 3]], reads: ["t"]),
            layer("Flatten", "f", [:], reads: ["u"]),
            layer("Dense", "o", [:], reads: ["f"]),
        ]
        let path = try write(
            layers, output: "o", weights: ["c/kernel": ramp([3, 3, 1, 2]), "o/kernel": ramp([72, 2])], in: dir)
        #expect {
            try importKeras(path)
        } throws: { error in
            // The Dense layer after the refused ones is not blamed for their shapes.
            guard let e = error as? DataError else { return false }
            return e.problem == "2 layers cannot be imported:"
                && e.details == [
                    "layer t (Activation): activation tanh is not supported",
                    "layer u (Conv2DTranspose) is not supported",
                ]
        }
    }

    @Test func archivedWeightsAreFoundByClassAndOrder() {
        let names = ["Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "LeakyReLU", "GlobalAveragePooling2D"]
        #expect(
            names.map(KerasGraph.snakeCase) == [
                "conv2d", "depthwise_conv2d", "batch_normalization", "re_lu", "leaky_re_lu",
                "global_average_pooling2d",
            ])
    }
}
