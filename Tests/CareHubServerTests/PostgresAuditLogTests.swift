import CareHubAudit
import CareHubCore
import CareHubCrypto
import CareHubPostgres
import CareHubPostgresStorage
import CareHubPostgresTesting
import Foundation
import Testing

@Suite("PostgreSQL audit trail")
struct PostgresAuditLogTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ detail: String, org: OrgID? = nil, action: String = "login.success") -> AuditEvent {
        AuditEvent(at: at, org: org ?? self.org, actor: "joy", address: "10.0.0.1", action: action, target: "joy", detail: detail)
    }

    /// A fresh database, opened by `nodes` clients of their own (as several hub nodes would).
    func nodes(_ count: Int) async throws -> [PostgresDatabase] {
        let url = try TestPostgresServer.shared().createDatabase()
        var nodes: [PostgresDatabase] = []
        for _ in 0..<count { nodes.append(try await PostgresDatabase.open(url: url, connections: 3)) }
        return nodes
    }

    func close(_ nodes: [PostgresDatabase]) async {
        for node in nodes { await node.client.close() }
    }

    @Test func twoNodesWritingAtOnceMakeOneChainThatVerifies() async throws {
        let nodes = try await nodes(2)
        let key = SymmetricKey(randomByteCount: 32)
        let sinks = [HeadCollector(), HeadCollector()]
        let logs = nodes.indices.map { PostgresAuditLog(database: nodes[$0], checkpointKey: key, sink: sinks[$0]) }
        let perNode = 60
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, log) in logs.enumerated() {
                for n in 0..<perNode {
                    group.addTask { try await log.record(self.event("node=\(index) n=\(n)")) }
                }
                // And through transactions of their own, two events each, as other adapters append.
                for n in 0..<10 {
                    group.addTask {
                        try await nodes[index].client.transaction { tx in
                            try log.append([self.event("node=\(index) tx=\(n) a"), self.event("node=\(index) tx=\(n) b")], in: tx)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = 2 * (perNode + 20)
        let reader = PostgresAuditLog(database: nodes[0])
        let entries = try await reader.entries()
        #expect(entries.map(\.id) == Array(1...Int64(total)))
        #expect(Set(entries.map(\.event.detail)).count == total, "every event once")
        // Both nodes' heads, as their anchors kept them: the newest of all covers the whole trail.
        let heads = sinks.flatMap { $0.heads.withLock { $0 } }
        let anchor = try #require(heads.max { $0.seq < $1.seq })
        #expect(anchor.seq == Int64(total))
        #expect(Set(heads.map(\.seq)).count == heads.count, "no two commits signed the same tip")
        let verdict = try await reader.verify(checkpointKey: key, anchor: anchor)
        guard case .holds(let events, let signed) = verdict else {
            Issue.record("\(verdict)")
            return
        }
        #expect(events == total)
        #expect(signed == heads.count)
        for head in heads { #expect(try await reader.verify(checkpointKey: key, anchor: head) == verdict) }
        await close(nodes)
    }

    @Test func aDeliveryRecordCommitsWithItsMessageAndNotWithout() async throws {
        let nodes = try await nodes(1)
        let database = nodes[0]
        let key = SymmetricKey(randomByteCount: 32)
        let sink = HeadCollector()
        let audit = PostgresAuditLog(database: database, checkpointKey: key, sink: sink)
        let store = PostgresMessageStore(database: database, audit: audit)
        let room = try await PostgresTestRows.conversation(database, org: org, at: at)
        let seq = try await store.reserveSequence(in: room)
        let delivered = event("seq=\(seq)", action: "phi.delivered")
        try await store.append(StoredMessage(conversation: room, seq: seq, sender: "visitor", at: at, body: .plain("hi")), recording: [delivered])
        #expect(try await audit.entries().map(\.event) == [delivered])

        // The same seq again: the insert fails, and its delivery record is not written either.
        await #expect(throws: PostgresError.self) {
            try await store.append(
                StoredMessage(conversation: room, seq: seq, sender: "visitor", at: self.at, body: .plain("again")),
                recording: [self.event("seq=\(seq) again", action: "phi.delivered")])
        }
        #expect(try await audit.entries().map(\.event) == [delivered])
        #expect(try await store.history(of: room, limit: 10).map(\.body) == [.plain("hi")])
        let tip = try #require(try await database.client.query("SELECT last_id FROM audit_tip").first)
        #expect(try tip.int("last_id") == 1, "the tip did not move")
        #expect(sink.heads.withLock { $0.map(\.seq) } == [1], "no head published for a rollback")

        // A caller's transaction that fails after appending leaves nothing behind either.
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await database.client.transaction { tx in
                try audit.append([self.event("rolled back")], in: tx)
                throw Refused()
            }
        }
        #expect(try await audit.entries().count == 1)
        #expect(try await audit.verify(checkpointKey: key, anchor: sink.last) == .holds(events: 1, checkpoints: 1))
        await close(nodes)
    }

    @Test func theTipRefusesARowThatDoesNotFollowIt() async throws {
        let nodes = try await nodes(1)
        let database = nodes[0]
        let key = SymmetricKey(randomByteCount: 32)
        let audit = PostgresAuditLog(database: database, checkpointKey: key)
        try await audit.record(event("one"))
        try await audit.record(event("two"))
        // A writer that skips the lock and chains from a stale or guessed tip.
        for id: Int64 in [4, 1, 2] {
            let error = await #expect(throws: PostgresError.self) {
                try await database.client.execute(
                    "INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES ($1, 0, 'clinic', 'mallory', 'local', 'forged', '', '', $2)",
                    [.int(id), .bytea(AuditChain.genesis)])
            }
            // Ids already taken collide on the key first; a gap is refused by the trigger.
            #expect(error?.isSerializationFailure == true || error?.isUniqueViolation == true, "id \(id): \(String(describing: error))")
            if id == 4 { #expect(error?.isSerializationFailure == true, "\(String(describing: error))") }
        }
        try await audit.record(event("three"))
        #expect(try await audit.entries().map(\.id) == [1, 2, 3])
        #expect(try await audit.verify(checkpointKey: key) == .holds(events: 3, checkpoints: 3))
        await close(nodes)
    }

    @Test func anEditedRowOrAForeignHeadBreaksTheChainAndAnOrgSeesOnlyItsOwn() async throws {
        let nodes = try await nodes(1)
        let database = nodes[0]
        let key = SymmetricKey(randomByteCount: 32)
        let audit = PostgresAuditLog(database: database, checkpointKey: key)
        let other = OrgID("other")
        for n in 1...4 { try await audit.record(event("n=\(n)", org: n == 3 ? other : org)) }
        #expect(try await audit.verify(checkpointKey: key, for: org) == AuditOrgVerdict(.holds(events: 4, checkpoints: 4), brokenOrg: nil, for: org, events: 3))
        #expect(try await audit.verify(checkpointKey: SymmetricKey(randomByteCount: 32)) != .holds(events: 4, checkpoints: 4), "another key")

        try await database.client.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = 3")
        let verdict = try await audit.verify(checkpointKey: key)
        guard case .broken(let id, _) = verdict else {
            Issue.record("\(verdict)")
            return
        }
        #expect(id == 3)
        let mine = try await audit.verify(checkpointKey: key, for: org)
        #expect(!mine.holds && mine.brokenAt == nil && mine.events == 3, "\(mine)")
        let theirs = try await audit.verify(checkpointKey: key, for: other)
        #expect(!theirs.holds && theirs.brokenAt == 3 && theirs.events == 1, "\(theirs)")
        await close(nodes)
    }
}
