// swift-tools-version:6.0
import PackageDescription

// A package that depends on Precis by version, as any other package would. PRECIS_URL names the
// repository (a clone with a version tag, as Tools/example-check.sh makes); without it, the clone
// this folder is in, which then needs a tag of its own.
let precis = Context.environment["PRECIS_URL"] ?? "file://" + Context.packageDirectory + "/../.."

let package = Package(
    name: "PrecisExample",
    dependencies: [.package(url: precis, from: "0.12.0")],
    targets: [
        .executableTarget(
            name: "precis-example",
            dependencies: [
                .product(name: "PrecisCore", package: "precis"),
                .product(name: "PrecisWeights", package: "precis"),
            ])
    ],
    swiftLanguageModes: [.v5]
)
