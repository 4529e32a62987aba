// swift-tools-version:6.0
import PackageDescription

/// Build settings for the numeric code (measured, see README "Build settings"): without a target
/// CPU, every Float16 operation is a library call and SIMD FMAs are split; `-target-cpu native`
/// lets the compiler use F16C, AVX2/AVX-512 and FMA of the machine that builds the package.
let numeric: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "native"])]

let package = Package(
    name: "Precis",
    products: [
        .executable(name: "precis", targets: ["precis"]),
        .library(name: "PrecisCore", targets: ["PrecisCore"]),
        .library(name: "PrecisWeights", targets: ["PrecisWeights"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(name: "CSystem", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(
            name: "PrecisCore",
            dependencies: ["CSystem", "CKernels", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: numeric),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial", providers: [.apt(["libhdf5-dev"])]),
        .target(name: "PrecisWeights", dependencies: ["PrecisCore", "CHDF5"], swiftSettings: numeric),
        // ONNX import and export; Generated/onnx.pb.swift comes from Tools/gen-onnx-proto.sh.
        .target(
            name: "PrecisONNX",
            dependencies: ["PrecisCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: numeric),
        .executableTarget(
            name: "precis",
            dependencies: [
                "PrecisCore", "PrecisWeights", "PrecisONNX",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: numeric),
        .testTarget(name: "PrecisCoreTests", dependencies: ["PrecisCore"], swiftSettings: numeric),
        .testTarget(name: "PrecisWeightsTests", dependencies: ["PrecisWeights"], swiftSettings: numeric),
        .testTarget(name: "PrecisONNXTests", dependencies: ["PrecisONNX"], swiftSettings: numeric),
    ],
    swiftLanguageModes: [.v5]
)
