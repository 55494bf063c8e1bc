// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "CareHub",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "carehub", targets: ["carehub"]),
        .executable(name: "carehub-bench", targets: ["carehub-bench"]),
        .executable(name: "carehub-relay", targets: ["carehub-relay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // Thin C modules: Debian's -dev packages through pkg-config.
        .systemLibrary(
            name: "CLibWebSockets",
            pkgConfig: "libwebsockets",
            providers: [.apt(["libwebsockets-dev", "libev-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),

        // The pipeline core: stage protocol, ports, wire frames, pipeline.conf. No I/O.
        .target(name: "CareHubCore", swiftSettings: strict),
        // The six stages; each reaches the world only through CareHubCore's ports.
        .target(name: "CareHubStages", dependencies: ["CareHubCore"], swiftSettings: strict),

        // Adapters over the C libraries.
        .target(name: "CareHubCrypto", dependencies: ["COpenSSL"], swiftSettings: strict),
        // OpenID Connect without the network: keys, JWS, token validation, PKCE, discovery, requests.
        .target(name: "CareHubOIDC", dependencies: ["CareHubCrypto", "COpenSSL"], swiftSettings: strict),
        // The audit trail's chain, heads and their verification: domain code any store uses.
        .target(name: "CareHubAudit", dependencies: ["CareHubCore", "CareHubCrypto"], swiftSettings: strict),
        .target(
            name: "CareHubStorage",
            dependencies: ["CareHubCore", "CareHubCrypto", "CareHubAudit", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        .target(name: "CareHubTransport", dependencies: ["CLibWebSockets"], swiftSettings: strict),
        // A PostgreSQL client over libpq: a pool, transactions, LISTEN/NOTIFY, migrations, advisory locks.
        .target(name: "CareHubPostgres", dependencies: ["CLibPQ"], swiftSettings: strict),
        // The ports on PostgreSQL, for several hub nodes on one database (CareHubStorage's twins).
        // SQLiteToPostgres reads an SQLite data set (GRDB) to copy it over.
        .target(
            name: "CareHubPostgresStorage",
            dependencies: ["CareHubCore", "CareHubCrypto", "CareHubAudit", "CareHubPostgres", "CareHubStorage", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict),
        // Printing text from elsewhere on a terminal (the console).
        .target(name: "CareHubTerminal", swiftSettings: strict),

        // The hub: wires transport, pipeline and adapters together.
        .target(
            name: "CareHubServer",
            dependencies: [
                "CareHubCore", "CareHubStages", "CareHubCrypto", "CareHubOIDC", "CareHubAudit", "CareHubStorage", "CareHubTransport",
                .product(name: "Logging", package: "swift-log"),
            ],
            // The API's description; a link to docs/openapi.yaml, the one copy.
            resources: [.embedInCode("Resources/openapi.yaml")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "carehub",
            dependencies: [
                "CareHubServer", "CareHubCore", "CareHubCrypto", "CareHubAudit", "CareHubStorage", "CareHubTerminal", "CareHubTransport",
                "CareHubPostgresStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // The benchmark and its baseline: a raw relay on the same transport.
        .executableTarget(
            name: "carehub-bench",
            dependencies: [
                "CareHubCore", "CareHubCrypto", "CareHubStorage", "CareHubTransport",
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "carehub-relay", dependencies: ["CareHubCore", "CareHubTransport"], swiftSettings: strict),

        // Test doubles of the ports, for unit tests; held to the adapters' contract tests.
        .target(name: "CareHubTesting", dependencies: ["CareHubCore"], swiftSettings: strict),
        // A throwaway PostgreSQL server (initdb + pg_ctl) for any test target; no libpq.
        .target(name: "CareHubPostgresTesting", swiftSettings: strict),

        .testTarget(name: "CareHubCoreTests", dependencies: ["CareHubCore", "CareHubStages", "CareHubTesting"], swiftSettings: strict),
        .testTarget(name: "CareHubStagesTests", dependencies: ["CareHubCore", "CareHubStages", "CareHubTesting"], swiftSettings: strict),
        .testTarget(name: "CareHubCryptoTests", dependencies: ["CareHubCrypto"], swiftSettings: strict),
        .testTarget(name: "CareHubOIDCTests", dependencies: ["CareHubOIDC", "CareHubCrypto", "COpenSSL"], swiftSettings: strict),
        .testTarget(name: "CareHubStorageTests", dependencies: ["CareHubStorage", "CareHubCore", "CareHubCrypto", "CareHubAudit", "CareHubTesting"], swiftSettings: strict),
        .testTarget(name: "CareHubTransportTests", dependencies: ["CareHubTransport", "CareHubTesting"], swiftSettings: strict),
        .testTarget(name: "CareHubTerminalTests", dependencies: ["CareHubTerminal"], swiftSettings: strict),
        .testTarget(name: "CareHubPostgresTests", dependencies: ["CareHubPostgres", "CareHubPostgresTesting"], swiftSettings: strict),
        .testTarget(
            name: "CareHubServerTests",
            dependencies: [
                "CareHubServer", "CareHubStorage", "CareHubCrypto", "CareHubAudit", "CareHubCore", "CareHubTesting", "CareHubTransport",
                "CareHubPostgres", "CareHubPostgresStorage", "CareHubPostgresTesting",
                .product(name: "Logging", package: "swift-log"), .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict),
    ]
)
