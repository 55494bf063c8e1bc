import CareHubAudit
import CareHubCore
import CareHubCrypto
import CareHubServer
import CareHubStorage
import Foundation
import Synchronization
import Testing

/// Collects the heads an audit log publishes, as the hub's anchor file would.
final class HeadCollector: AuditHeadSink {
    let heads = Mutex<[AuditHead]>([])
    func publish(_ head: AuditHead) { heads.withLock { $0.append(head) } }
    func flush() {}
    var last: AuditHead? { heads.withLock { $0.last } }
}

@Suite("keyed audit chain, signed heads and anchors")
struct AuditTrailTests {
    let org = OrgID("clinic")

    struct Trail {
        let fixture: KeyFixture
        let log: SQLiteAuditLog
        let key: SymmetricKey
        let sink: HeadCollector

        func verify(anchor: AuditHead? = nil) async throws -> SQLiteAuditLog.Verdict {
            try await log.verify(checkpointKey: key, anchor: anchor)
        }

        func tamper(_ sql: String) throws { try fixture.database.rawWrite(sql) }
    }

    func event(_ index: Int, org: OrgID? = nil, actor: String = "joy") -> AuditEvent {
        AuditEvent(
            at: Date(timeIntervalSince1970: 1_800_000_000 + Double(index)), org: org ?? self.org, actor: actor,
            address: "10.0.0.\(index % 250)", action: "login.success", target: "", detail: "n=\(index)")
    }

    func trail(events: Int, fixture: KeyFixture? = nil) async throws -> Trail {
        let fixture = try fixture ?? KeyFixture()
        let key = try MasterKey.auditKey(from: fixture.master)
        let sink = HeadCollector()
        let log = SQLiteAuditLog(database: fixture.database, checkpointKey: key, sink: sink)
        for index in stride(from: 1, through: events, by: 1) { try await log.record(event(index)) }
        return Trail(fixture: fixture, log: log, key: key, sink: sink)
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// Writes `count` events as versions before the keyed chain did: unkeyed SHA-256 rows (their
    /// public encoding) and a checkpoint signed with the audit key every `every` rows.
    func writeOldFormat(_ fixture: KeyFixture, count: Int, checkpointEvery every: Int, from first: Int = 1) throws {
        let key = try MasterKey.auditKey(from: fixture.master)
        var previous = [UInt8](repeating: 0, count: 32)
        if first > 1 {
            // Continue the chain from the stored last hash.
            previous = try #require(try fixture.database.rawReadBlob("SELECT hash FROM audit_events WHERE id = \(first - 1)"))
        }
        for id in first..<(first + count) {
            let e = event(id)
            let hash = SQLiteAuditLog.chainHash(previous: previous, id: Int64(id), event: e)
            try fixture.database.rawWrite("""
                INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES
                (\(id), \(e.at.epochMilliseconds), '\(e.org.rawValue)', '\(e.actor)', '\(e.address)', '\(e.action)', '', '\(e.detail)', X'\(Self.hex(hash))')
                """)
            if id % every == 0 {
                let mac = key.withUnsafeBytes { HMAC.sha256(key: Array($0), message: Array("carehub.audit.checkpoint.v1|\(id)|".utf8) + hash) }
                try fixture.database.rawWrite("INSERT INTO audit_checkpoints (last_event_id, hash, mac, at) VALUES (\(id), X'\(Self.hex(hash))', X'\(Self.hex(mac))', 0)")
            }
            previous = hash
        }
    }

    @Test func anUntouchedTrailHoldsWithAHeadPerCommitAndAgainstItsAnchor() async throws {
        let trail = try await trail(events: 6)
        let messages = SQLiteMessageStore(database: trail.fixture.database, audit: trail.log)
        let room = try await SQLiteConversationStore(database: trail.fixture.database).create(org: org, tokenDigest: [7], at: Date()).id
        let delivered = AuditEvent(at: Date(), org: org, actor: "visitor", address: "local", action: "phi.delivered", target: room.rawValue, detail: "seq=1 readers=joy")
        try await messages.append(StoredMessage(conversation: room, seq: 1, sender: "visitor", at: Date(), body: .plain("m")), recording: [delivered])
        let users = SQLiteUserDirectory(database: trail.fixture.database, audit: trail.log)
        try await users.add(StaffUser(org: org, name: "kim", role: .staff, passwordHash: "h"), audit: event(8))
        #expect(try await trail.verify() == .holds(events: 8, checkpoints: 8))
        let anchor = try #require(trail.sink.last)
        #expect(anchor.seq == 8)
        #expect(try await trail.verify(anchor: anchor) == .holds(events: 8, checkpoints: 8))
        #expect(AuditHead(parsing: "audit head \(anchor)") == anchor)
    }

    @Test func deletingTheLastEventsUnderTheirHeadFails() async throws {
        let trail = try await trail(events: 6)
        try trail.tamper("DELETE FROM audit_events WHERE id > 4")
        #expect(try await trail.verify() == .broken(eventID: 5, reason: "a signed head covers event 5, which is gone (events were deleted from the end)"))
    }

    @Test func anEventAppendedAfterTheLastHeadIsNamed() async throws {
        let trail = try await trail(events: 4)
        // Appended without the key, chained as well as an attacker can (unkeyed): not covered.
        let hash = SQLiteAuditLog.chainHash(previous: try #require(try trail.fixture.database.rawReadBlob("SELECT hash FROM audit_events WHERE id = 4")), id: 5, event: event(5))
        try trail.tamper("INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES (5, 1800000005000, 'clinic', 'joy', '10.0.0.5', 'login.success', '', 'n=5', X'\(Self.hex(hash))')")
        let verdict = try await trail.verify()
        #expect(verdict == .broken(eventID: 5, reason: "it carries an unkeyed hash where the chain is keyed (rewritten, or written after the last signed checkpoint of an older version)"))
        // Even carrying the right value, an event no head covers is refused.
        try trail.tamper("DELETE FROM audit_events WHERE id = 5")
        try await trail.log.record(event(5))
        try trail.tamper("DELETE FROM audit_heads WHERE seq = 5")
        #expect(try await trail.verify() == .broken(eventID: 5, reason: "event 5 and later are not covered by a signed head (appended or rewritten after the last one)"))
    }

    @Test func anEventRechainedWithTheUnkeyedHashAndLaterHeadsDeletedFails() async throws {
        let trail = try await trail(events: 6)
        // Edit event 3 and recompute the chain from there with the old, unkeyed hash.
        try trail.tamper("UPDATE audit_events SET actor = 'mallory' WHERE id = 3")
        var previous = try #require(try trail.fixture.database.rawReadBlob("SELECT hash FROM audit_events WHERE id = 2"))
        for id in 3...6 {
            let hash = SQLiteAuditLog.chainHash(previous: previous, id: Int64(id), event: event(id, actor: id == 3 ? "mallory" : "joy"))
            try trail.tamper("UPDATE audit_events SET hash = X'\(Self.hex(hash))' WHERE id = \(id)")
            previous = hash
        }
        try trail.tamper("DELETE FROM audit_heads WHERE seq >= 3")
        guard case .broken(let id, _) = try await trail.verify() else {
            Issue.record("a re-chained edit was accepted")
            return
        }
        #expect(id == 3)
    }

    @Test func deletingEveryHeadFails() async throws {
        let trail = try await trail(events: 5)
        try trail.tamper("DELETE FROM audit_heads")
        #expect(try await trail.verify() == .broken(eventID: 1, reason: "it is chained under the audit key, but no signed head says so (the heads were deleted)"))
    }

    @Test func aTrailCutBackToAnEarlierHeadFailsOnlyAgainstItsAnchor() async throws {
        let trail = try await trail(events: 6)
        let anchor = try #require(trail.sink.last)
        // A rollback: the last events and their heads, all gone. The rest is a valid trail.
        try trail.tamper("DELETE FROM audit_events WHERE id > 3; DELETE FROM audit_heads WHERE seq > 3")
        #expect(try await trail.verify() == .holds(events: 3, checkpoints: 3))
        #expect(try await trail.verify(anchor: anchor) == .broken(eventID: 4, reason: "the trail ends at event 3, before the anchored head at event 6 (events were removed)"))
        // A head that is not the trail's own (forged, or another database's) is refused too.
        let forged = AuditHead(seq: 3, hash: anchor.hash, signature: anchor.signature)
        #expect(try await trail.verify(anchor: forged) == .broken(eventID: 3, reason: "the trail's head at event 3 differs from the anchored one (the trail was rewritten)"))
    }

    @Test func anOldFormatTrailHoldsAndTheKeyedChainStartsAfterItsLastCheckpoint() async throws {
        let fixture = try KeyFixture()
        try writeOldFormat(fixture, count: 6, checkpointEvery: 3)
        let trail = try await trail(events: 0, fixture: fixture)
        #expect(try await trail.verify() == .holds(events: 6, checkpoints: 2))
        try await trail.log.record(event(7))
        try await trail.log.record(event(8))
        #expect(try await trail.verify() == .holds(events: 8, checkpoints: 4))
        // The old segment is still checked: an edit there breaks the keyed row after it.
        try fixture.database.rawWrite("UPDATE audit_events SET detail = 'n=66' WHERE id = 5")
        guard case .broken(5, _) = try await trail.verify() else {
            Issue.record("an edit of the old segment was accepted")
            return
        }
    }

    @Test func claimingAnUpgradedTrailIsAllOldFormatFails() async throws {
        let fixture = try KeyFixture()
        try writeOldFormat(fixture, count: 3, checkpointEvery: 3)
        let trail = try await trail(events: 0, fixture: fixture)
        for index in 4...6 { try await trail.log.record(event(index)) }
        // Rewrite the keyed rows as unkeyed ones and drop every head: an old-format trail whose
        // last signed checkpoint is at event 3.
        var previous = try #require(try fixture.database.rawReadBlob("SELECT hash FROM audit_events WHERE id = 3"))
        for id in 4...6 {
            let hash = SQLiteAuditLog.chainHash(previous: previous, id: Int64(id), event: event(id))
            try fixture.database.rawWrite("UPDATE audit_events SET hash = X'\(Self.hex(hash))' WHERE id = \(id)")
            previous = hash
        }
        try fixture.database.rawWrite("DELETE FROM audit_heads")
        #expect(try await trail.verify() == .broken(eventID: 4, reason: "event 4 and later are not covered by a signed head (appended or rewritten after the last one)"))
        // Nor does the writer vouch for them: its chain starts after the last signed checkpoint.
        let restarted = try await self.trail(events: 0, fixture: fixture)
        try await restarted.log.record(event(7))
        #expect(try await restarted.verify() == .broken(eventID: 4, reason: "it carries an unkeyed hash where the chain is keyed (rewritten, or written after the last signed checkpoint of an older version)"))
    }

    @Test func anOldFormatTrailWithoutAnyCheckpointIsRefused() async throws {
        let fixture = try KeyFixture()
        try writeOldFormat(fixture, count: 2, checkpointEvery: 100)
        let trail = try await trail(events: 0, fixture: fixture)
        #expect(try await trail.verify() == .broken(eventID: 1, reason: "the trail has 2 events but no signed head (the heads were deleted)"))
    }

    @Test func anAdminSeesOnlyItsOrganisation() async throws {
        let trail = try await trail(events: 3)
        try await trail.log.record(event(4, org: OrgID("other")))
        try await trail.log.record(event(5, org: OrgID("other")))
        let verdict = try await trail.log.verify(checkpointKey: trail.key, for: org)
        #expect(verdict.holds && verdict.events == 3 && verdict.brokenAt == nil && verdict.reason == nil)
        try trail.tamper("UPDATE audit_events SET actor = 'mallory' WHERE id = 4")
        let other = try await trail.log.verify(checkpointKey: trail.key, for: org)
        #expect(!other.holds && other.brokenAt == nil && other.events == 3)
        let own = try await trail.log.verify(checkpointKey: trail.key, for: OrgID("other"))
        #expect(!own.holds && own.brokenAt == 4 && own.events == 2)
    }

    @Test func withoutTheAuditKeyNothingIsAppended() async throws {
        let trail = try await trail(events: 1)
        let users = SQLiteUserDirectory(database: trail.fixture.database)
        await #expect(throws: StorageError.auditKeyMissing) {
            try await users.add(StaffUser(org: org, name: "kim", role: .staff, passwordHash: "h"), audit: event(2))
        }
        #expect(try await users.user(org: org, name: "kim") == nil)
    }

    @Test func thePrecomputedHMACKeyIsHMACSHA256() {
        let key = Array("a key of some length".utf8)
        for message in [[], Array("x".utf8), [UInt8](repeating: 7, count: 200)] {
            #expect(HMACSHA256Key(key).mac(message) == HMAC.sha256(key: key, message: message))
        }
        let long = [UInt8](repeating: 9, count: 100)
        #expect(HMACSHA256Key(long).mac([1, 2]) == HMAC.sha256(key: long, message: [1, 2]))
    }
}
