// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Precis",
    products: [
        .executable(name: "precis", targets: ["precis"]),
        .library(name: "PrecisCore", targets: ["PrecisCore"]),
        .library(name: "PrecisWeights", targets: ["PrecisWeights"]),
        .library(name: "PrecisWorkflows", targets: ["PrecisWorkflows"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(name: "CSystem", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The vector kernels: built for any x86-64 CPU, each choosing AVX-512, AVX2 or portable C at run time.
        .target(name: "CKernels"),
        .target(
            name: "PrecisCore",
            dependencies: ["CSystem", "CKernels", .product(name: "RealModule", package: "swift-numerics")]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial", providers: [.apt(["libhdf5-dev"])]),
        .target(name: "PrecisWeights", dependencies: ["PrecisCore", "CHDF5"]),
        // ONNX import and export; Generated/onnx.pb.swift comes from Tools/gen-onnx-proto.sh.
        .target(
            name: "PrecisONNX",
            dependencies: ["PrecisCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        // What the commands do (evaluate, quantize and store, train, draw, export), as functions with tests.
        .target(name: "PrecisWorkflows", dependencies: ["PrecisCore", "PrecisWeights", "PrecisONNX"]),
        .executableTarget(
            name: "precis",
            dependencies: [
                "PrecisCore", "PrecisWeights", "PrecisONNX", "PrecisWorkflows",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "PrecisCoreTests", dependencies: ["PrecisCore"]),
        .testTarget(name: "PrecisWeightsTests", dependencies: ["PrecisWeights"]),
        .testTarget(name: "PrecisONNXTests", dependencies: ["PrecisONNX"]),
        .testTarget(name: "PrecisWorkflowsTests", dependencies: ["PrecisWorkflows"]),
    ],
    swiftLanguageModes: [.v5]
)
