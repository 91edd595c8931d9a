// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SwiftViT",
    products: [
        .library(
            name: "SwiftViT",
            targets: [
                "ViTTensor", "ViTCore", "ViTImage", "ViTCheckpoint", "ViTVision", "ViTData", "ViTTraining", "ViTText",
                "ViTGenerator", "ViTHub",
            ]),
        .executable(name: "vit", targets: ["vit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .target(name: "CImageCodecs", linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]),
        .target(name: "CZlib", linkerSettings: [.linkedLibrary("z")]),
        // Micro-kernels compiled per function for one instruction set (target attributes).
        .target(name: "CKernels"),
        // ViTTensor calls it after checking that the CPU has AVX-512F.
        .target(name: "ViTProductKernels", dependencies: ["CKernels"]),
        .target(name: "ViTTensor", dependencies: ["CBLAS", "CKernels", "ViTProductKernels"]),
        .target(name: "ViTCore", dependencies: ["ViTTensor"]),
        .target(name: "ViTImage", dependencies: ["CImageCodecs", "ViTTensor"]),
        .target(name: "ViTCheckpoint", dependencies: ["ViTTensor"]),
        // Downloads into the hub cache: networking and hashing kept apart from the parsers.
        .target(
            name: "ViTHub",
            dependencies: ["ViTCheckpoint", "ViTTensor", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "ViTVision", dependencies: ["ViTCore", "ViTTensor", "ViTCheckpoint", "ViTImage"]),
        .target(
            name: "ViTText", dependencies: ["ViTCore", "ViTTensor", "ViTCheckpoint"]),
        .target(name: "ViTData", dependencies: ["CZlib", "ViTImage", "ViTTensor"]),
        .target(
            name: "ViTGenerator", dependencies: ["ViTText", "ViTCheckpoint", "ViTImage", "ViTCore", "ViTTensor"]),
        .target(
            name: "ViTTraining",
            dependencies: [
                "ViTVision", "ViTText", "ViTGenerator", "ViTData", "ViTCheckpoint", "ViTImage", "ViTCore", "ViTTensor",
            ]),
        // Examples/LibraryUse: the library used from a program of its own.
        .executableTarget(
            name: "library-example",
            dependencies: ["ViTTensor", "ViTCore", "ViTImage", "ViTVision", "ViTData", "ViTTraining"],
            path: "Examples/LibraryUse"),
        .executableTarget(
            name: "vit",
            dependencies: [
                "ViTTensor", "ViTCore", "ViTImage", "ViTCheckpoint", "ViTVision", "ViTData", "ViTTraining", "ViTText",
                "ViTGenerator", "ViTHub",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Shared by the test targets: element-wise comparison and paths into the repository.
        .target(name: "ViTTestSupport", dependencies: ["ViTTensor"], path: "Tests/TestSupport"),
        .testTarget(
            name: "ViTTensorTests",
            dependencies: ["ViTTensor", "CKernels", "ViTProductKernels", "ViTCheckpoint", "ViTTestSupport"],
            exclude: ["Golden"]),
        .testTarget(
            name: "ViTImageTests", dependencies: ["ViTImage", "ViTTensor", "ViTTestSupport"],
            exclude: ["Golden"]),
        .testTarget(name: "ViTCheckpointTests", dependencies: ["ViTCheckpoint", "ViTTensor", "ViTTestSupport"]),
        .testTarget(
            name: "ViTVisionTests",
            dependencies: ["ViTVision", "ViTCore", "ViTCheckpoint", "ViTImage", "ViTTestSupport"],
            exclude: ["Golden"]),
        .testTarget(name: "ViTDataTests", dependencies: ["ViTData", "ViTImage", "ViTTensor", "ViTTestSupport"]),
        .testTarget(
            name: "ViTTextTests", dependencies: ["ViTText", "ViTCore", "ViTCheckpoint", "ViTTensor", "ViTTestSupport"],
            exclude: ["Golden"]),
        .testTarget(
            name: "ViTGeneratorTests",
            dependencies: ["ViTGenerator", "ViTCore", "ViTCheckpoint", "ViTData", "ViTTensor", "ViTTestSupport"],
            exclude: ["Golden"]),
        .testTarget(
            name: "ViTTrainingTests",
            dependencies: [
                "ViTTraining", "ViTVision", "ViTData", "ViTCore", "ViTImage", "ViTTensor", "ViTText", "ViTCheckpoint",
                "ViTTestSupport",
            ]),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "vit", "library-example", "ViTImage", "ViTCheckpoint", "ViTData", "ViTGenerator", "ViTText", "ViTCore",
                "ViTTensor", "ViTTestSupport", .product(name: "Crypto", package: "swift-crypto"),
            ]),
    ]
)
