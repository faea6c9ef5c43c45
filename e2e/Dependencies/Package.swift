// swift-tools-version: 5.9
// The end-to-end test's dependencies package (.github/workflows/e2e-macos.yml): three small pure-Swift packages
// that Scipio turns into three XCFrameworks in a few minutes. Every dependency is pinned with `exact:`, so that
// the pins in Package.resolved are what SwiftPM resolves; scripts/e2e/e2e.mjs bumps swift-log in both files.
import PackageDescription

let package = Package(
    name: "E2EDependencies",
    platforms: [
        .iOS(.v15),
        .macOS(.v12),
    ],
    products: [],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.6.1"),
        .package(url: "https://github.com/onevcat/Delegate.git", exact: "1.3.0"),
        .package(url: "https://github.com/giginet/scipio-testing.git", exact: "2.0.0"),
    ],
    targets: [
        .target(
            name: "E2EDependencies",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Delegate", package: "Delegate"),
                .product(name: "ScipioTesting", package: "scipio-testing"),
            ]
        ),
    ]
)
