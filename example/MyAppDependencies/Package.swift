// swift-tools-version: 5.9
// The example "dependencies package": one target that depends on every framework the app wants.
import PackageDescription

let package = Package(
    name: "MyAppDependencies",
    platforms: [
        .iOS(.v15),
        .macOS(.v13),
    ],
    products: [],
    dependencies: [
        .package(url: "https://github.com/onevcat/APNGKit.git", exact: "2.3.0"),
        .package(url: "https://github.com/onevcat/Kingfisher.git", exact: "8.1.3"),
        .package(url: "https://github.com/apple/swift-collections.git", exact: "1.1.4"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.6.2"),
    ],
    targets: [
        .target(
            name: "MyAppDependencies",
            dependencies: [
                .product(name: "APNGKit", package: "APNGKit"),
                .product(name: "Kingfisher", package: "Kingfisher"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
