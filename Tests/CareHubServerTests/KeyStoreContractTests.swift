import CareHubCore
import CareHubPostgresStorage
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// The ``KeyStore`` contract, run against the SQLite store, the PostgreSQL store (a database of its
/// own) and the in-memory double.
@Suite("key store contract")
struct KeyStoreContractTests {
    let org = OrgID("clinic")

    func stores() async throws -> [(name: String, store: any KeyStore, keep: Any)] {
        let fixture = try KeyFixture()
        let postgres = try await PostgresStoreFixture()
        return [
            ("sqlite", SQLiteKeyStore(database: fixture.database), fixture),
            ("postgres", PostgresKeyStore(database: postgres.database), postgres),
            ("memory", MemoryKeyStore(), ()),
        ]
    }

    @Test func theFirstKEKIsMadeOnceEvenWhenAskedForConcurrently() async throws {
        for (name, store, _) in try await stores() {
            let made = try await withThrowingTaskGroup(of: KEKRecord.self) { group in
                for index in 0..<8 { group.addTask { try await store.activeKEK(org: org) { _ in [UInt8(index)] } } }
                return try await group.reduce(into: [KEKRecord]()) { $0.append($1) }
            }
            #expect(Set(made).count == 1, "\(name)")
            #expect(made.first?.version == 1 && made.first?.state == .active, "\(name)")
            #expect(try await store.keks(org: org).count == 1, "\(name)")
            #expect(try await store.keks(org: OrgID("other")).isEmpty, "\(name)")
        }
    }

    @Test func aScopeKeepsTheDataKeyStoredFirstAndLosesItWhenShredded() async throws {
        for (name, store, _) in try await stores() {
            let first = DataKeyRecord(scope: "conversation:a", org: org, kekVersion: 1, wrapped: [1])
            #expect(try await store.insertDataKey(first) == first, "\(name)")
            #expect(try await store.insertDataKey(DataKeyRecord(scope: "conversation:a", org: org, kekVersion: 1, wrapped: [2])) == first, "\(name)")
            #expect(try await store.dataKey(scope: "conversation:a") == first, "\(name)")
            #expect(try await store.deleteDataKey(scope: "conversation:a"), "\(name)")
            #expect(try await store.deleteDataKey(scope: "conversation:a") == false, "\(name)")
            #expect(try await store.dataKey(scope: "conversation:a") == nil, "\(name)")
        }
    }

    @Test func aRotationRewrapsEveryKeyResumesWhenInterruptedAndRetiresTheOldVersion() async throws {
        for (name, store, _) in try await stores() {
            _ = try await store.activeKEK(org: org) { _ in [9] }
            let old = DataKeyRecord(scope: "conversation:a", org: org, kekVersion: 1, wrapped: [1])
            _ = try await store.insertDataKey(old)
            let (from, target) = try await store.beginRotation(org: org) { _ in [8] }
            #expect(from == [1] && target.version == 2 && target.state == .rotating, "\(name)")
            // Interrupted and started again: the same rotation resumes.
            let again = try await store.beginRotation(org: org) { _ in [7] }
            #expect(again.to == target && again.from == [1], "\(name)")
            await #expect(throws: (any Error).self, "\(name)") { try await store.finishRotation(org: org, version: 2) }
            #expect(try await store.dataKeys(org: org, notUnder: 2, limit: 10) == [old], "\(name)")
            // A rewrap of a wrapping that changed meanwhile does nothing.
            try await store.rewrap(scope: old.scope, from: DataKeyRecord(scope: old.scope, org: org, kekVersion: 1, wrapped: [5]), to: 2, wrapped: [6])
            #expect(try await store.dataKey(scope: old.scope) == old, "\(name)")
            try await store.rewrap(scope: old.scope, from: old, to: 2, wrapped: [6])
            #expect(try await store.dataKeys(org: org, notUnder: 2, limit: 10).isEmpty, "\(name)")
            try await store.finishRotation(org: org, version: 2)
            let keks = try await store.keks(org: org)
            #expect(keks.map(\.state) == [.retired, .active], "\(name)")
            #expect(keks.first?.wrapped == nil && keks.last?.wrapped == [8], "\(name)")
            #expect(try await store.activeKEK(org: org) { _ in [0] }.version == 2, "\(name)")
        }
    }

    @Test func twoNodesCreatingTheSameKeysAtOnceEndUpWithTheSameOnes() async throws {
        // Two pools on one database, as two hub nodes have; each asks several times at once.
        let fixture = try await PostgresStoreFixture()
        let nodes = [PostgresKeyStore(database: fixture.database), PostgresKeyStore(database: try await fixture.node())]
        for round in 0..<5 {
            let org = OrgID("clinic-\(round)")
            let scope = "conversation:\(round)"
            let (keks, dataKeys) = try await withThrowingTaskGroup(of: (KEKRecord, DataKeyRecord).self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let store = nodes[index % 2]
                        let kek = try await store.activeKEK(org: org) { _ in [UInt8(index)] }
                        let key = try await store.insertDataKey(DataKeyRecord(scope: scope, org: org, kekVersion: 1, wrapped: [UInt8(index)]))
                        return (kek, key)
                    }
                }
                return try await group.reduce(into: ([KEKRecord](), [DataKeyRecord]())) { $0.0.append($1.0); $0.1.append($1.1) }
            }
            #expect(Set(keks).count == 1 && keks.first?.version == 1, "round \(round): one KEK version 1")
            #expect(Set(dataKeys).count == 1, "round \(round): one data key")
            for node in nodes {
                #expect(try await node.keks(org: org) == [keks[0]], "round \(round)")
                #expect(try await node.dataKey(scope: scope) == dataKeys[0], "round \(round)")
            }
            // Both nodes starting the rotation at once: one new version, which both resume.
            let rotations = try await withThrowingTaskGroup(of: KEKRecord.self) { group in
                for index in 0..<4 { group.addTask { try await nodes[index % 2].beginRotation(org: org) { _ in [UInt8(100 + index)] }.to } }
                return try await group.reduce(into: [KEKRecord]()) { $0.append($1) }
            }
            #expect(Set(rotations).count == 1 && rotations.first?.version == 2, "round \(round): one rotating version 2")
            #expect(try await nodes[0].keks(org: org).map(\.state) == [.active, .rotating], "round \(round)")
        }
    }
}
