import CareHubCore
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// The ``KeyStore`` contract, run against the SQLite store and the in-memory double.
@Suite("key store contract")
struct KeyStoreContractTests {
    let org = OrgID("clinic")

    func stores() throws -> [(name: String, store: any KeyStore, keep: Any)] {
        let fixture = try KeyFixture()
        return [("sqlite", SQLiteKeyStore(database: fixture.database), fixture), ("memory", MemoryKeyStore(), ())]
    }

    @Test func theFirstKEKIsMadeOnceEvenWhenAskedForConcurrently() async throws {
        for (name, store, _) in try stores() {
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
        for (name, store, _) in try stores() {
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
        for (name, store, _) in try stores() {
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
}
