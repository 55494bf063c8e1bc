import CareHubCore
import CareHubCrypto
import CareHubPostgresStorage
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// What every ``CannedReplyStore`` must do, run against the SQLite adapter (a real file in a
/// temporary directory), the PostgreSQL adapter (a database of its own) and the in-memory double
/// alike.
@Suite("Canned reply store contract")
struct CannedReplyStoreContractTests {
    /// An implementation under test with a way to read the audit events it committed.
    struct Subject {
        let store: any CannedReplyStore
        let actions: () async throws -> [String]
        /// Keeps the temporary directory or the PostgreSQL database alive for the test.
        let owner: AnyObject?
    }

    enum Implementation: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres, memory

        var testDescription: String { rawValue }

        func make() async throws -> Subject {
            switch self {
            case .sqlite:
                let fixture = try KeyFixture()
                let audit = SQLiteAuditLog(database: fixture.database, checkpointKey: SymmetricKey(randomByteCount: 32))
                return Subject(
                    store: SQLiteCannedReplies(database: fixture.database, audit: audit),
                    actions: { try audit.entries().map(\.event.action) }, owner: fixture)
            case .postgres:
                let fixture = try await PostgresStoreFixture()
                let audit = PostgresAuditLog(database: fixture.database, checkpointKey: SymmetricKey(randomByteCount: 32))
                return Subject(
                    store: PostgresCannedReplies(database: fixture.database, audit: audit),
                    actions: { try await audit.entries().map(\.event.action) }, owner: fixture)
            case .memory:
                let audit = RecordingAuditLog()
                return Subject(store: MemoryCannedReplies(audit: audit), actions: { audit.events.map(\.action) }, owner: nil)
            }
        }
    }

    let org = OrgID("clinic")
    let other = OrgID("studio")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    private func event(_ action: String, _ org: OrgID) -> AuditEvent {
        AuditEvent(at: at, org: org, actor: "ada", address: "127.0.0.1", action: action)
    }

    private func save(_ name: String, _ text: String, in store: any CannedReplyStore, org: OrgID? = nil, limit: Int = CannedReply.maxPerOrg) async throws -> CannedReplySave {
        let org = org ?? self.org
        return try await store.save(CannedReply(name: name, text: text), org: org, by: "ada", at: at, limit: limit, recording: event("reply.saved", org))
    }

    @Test(arguments: Implementation.allCases)
    func savedRepliesAreListedByNameAndKeptApartPerOrganisation(_ implementation: Implementation) async throws {
        let subject = try await implementation.make()
        let store = subject.store
        #expect(try await store.list(org: org) == [])
        #expect(try await store.count(org: org) == 0)
        #expect(try await save("hours", "We open at 8.", in: store) == .created)
        #expect(try await save("Directions", "Line one\nline two", in: store) == .created)
        #expect(try await save("émail", "Write to us.", in: store) == .created)
        #expect(try await save("hours", "We open at 9.", in: store, org: other) == .created)
        // By the bytes of the name: upper case before lower case, non-ASCII last.
        #expect(try await store.list(org: org) == [
            CannedReply(name: "Directions", text: "Line one\nline two"),
            CannedReply(name: "hours", text: "We open at 8."),
            CannedReply(name: "émail", text: "Write to us."),
        ])
        #expect(try await store.count(org: org) == 3)
        #expect(try await store.list(org: other) == [CannedReply(name: "hours", text: "We open at 9.")])
        #expect(try await subject.actions() == Array(repeating: "reply.saved", count: 4))
    }

    @Test(arguments: Implementation.allCases)
    func savingAnExistingNameReplacesItsText(_ implementation: Implementation) async throws {
        let subject = try await implementation.make()
        let store = subject.store
        #expect(try await save("hours", "We open at 8.", in: store) == .created)
        #expect(try await save("hours", "We open at 9.", in: store) == .replaced)
        #expect(try await save("Hours", "Capitalised is another name.", in: store) == .created)
        #expect(try await store.list(org: org) == [CannedReply(name: "Hours", text: "Capitalised is another name."), CannedReply(name: "hours", text: "We open at 9.")])
        #expect(try await store.count(org: org) == 2)
    }

    @Test(arguments: Implementation.allCases)
    func aNewNameBeyondTheLimitIsRefusedWithoutWritingButExistingOnesMayChange(_ implementation: Implementation) async throws {
        let subject = try await implementation.make()
        let store = subject.store
        for index in 1...3 { #expect(try await save("r\(index)", "text \(index)", in: store, limit: 3) == .created) }
        #expect(try await save("r4", "one too many", in: store, limit: 3) == .full)
        #expect(try await save("r2", "changed", in: store, limit: 3) == .replaced)
        #expect(try await save("r9", "other organisations have their own count", in: store, org: other, limit: 3) == .created)
        #expect(try await store.count(org: org) == 3)
        #expect(try await store.list(org: org).map(\.name) == ["r1", "r2", "r3"])
        #expect(try await store.list(org: org).first { $0.name == "r2" }?.text == "changed")
        // The refused save recorded nothing.
        #expect(try await subject.actions() == Array(repeating: "reply.saved", count: 5))
    }

    @Test(arguments: Implementation.allCases)
    func deleteRemovesOnlyTheNamedReplyAndAnswersFalseWhenThereIsNone(_ implementation: Implementation) async throws {
        let subject = try await implementation.make()
        let store = subject.store
        #expect(try await save("hours", "We open at 8.", in: store) == .created)
        #expect(try await save("parking", "Behind the building.", in: store) == .created)
        #expect(try await save("hours", "Theirs.", in: store, org: other) == .created)
        #expect(try await store.delete(org: org, name: "hours", recording: event("reply.deleted", org)))
        #expect(try await store.list(org: org) == [CannedReply(name: "parking", text: "Behind the building.")])
        #expect(try await store.list(org: other) == [CannedReply(name: "hours", text: "Theirs.")])
        #expect(try await store.delete(org: org, name: "hours", recording: event("reply.deleted", org)) == false)
        #expect(try await store.delete(org: org, name: "Parking", recording: event("reply.deleted", org)) == false)
        #expect(try await store.count(org: org) == 1)
        #expect(try await subject.actions() == ["reply.saved", "reply.saved", "reply.saved", "reply.deleted"])
    }

    @Test func twoNodesSavingNewNamesAtOnceNeverPassTheLimit() async throws {
        let fixture = try await PostgresStoreFixture()
        let key = SymmetricKey(randomByteCount: 32)
        let second = try await fixture.node()
        let nodes = [
            PostgresCannedReplies(database: fixture.database, audit: PostgresAuditLog(database: fixture.database, checkpointKey: key)),
            PostgresCannedReplies(database: second, audit: PostgresAuditLog(database: second, checkpointKey: key)),
        ]
        let results = try await withThrowingTaskGroup(of: CannedReplySave.self) { group in
            for index in 0..<8 {
                group.addTask { try await save("r\(index)", "text", in: nodes[index % 2], limit: 5) }
            }
            return try await group.reduce(into: [CannedReplySave]()) { $0.append($1) }
        }
        #expect(results.filter { $0 == .created }.count == 5)
        #expect(results.filter { $0 == .full }.count == 3)
        #expect(try await nodes[0].count(org: org) == 5)
        #expect(try await PostgresAuditLog(database: fixture.database).entries().count == 5)
    }
}
