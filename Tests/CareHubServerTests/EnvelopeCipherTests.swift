import CareHubCore
import CareHubCrypto
import CareHubServer
import CareHubStorage
import Foundation
import Testing

/// A database in a fresh temporary directory, with an envelope cipher over it.
final class KeyFixture {
    let path = NSTemporaryDirectory() + "carehub-keys-\(UUID().uuidString)"
    let database: CareHubDatabase
    let store: SQLiteKeyStore
    let master = SymmetricKey(randomByteCount: 32)

    init() throws {
        database = try CareHubDatabase(directory: path)
        store = SQLiteKeyStore(database: database)
    }

    func cipher() -> EnvelopeCipher { EnvelopeCipher(master: master, store: store) }

    deinit {
        try? database.close()
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite("envelope encryption on real SQLite and OpenSSL")
struct EnvelopeCipherTests {
    let org = OrgID("clinic")
    let room = ConversationID("c_1")
    var scope: KeyScope { .conversation(org, room) }

    @Test func aPreparedKeyIsTheOneTheFirstSealUses() async throws {
        let fixture = try KeyFixture()
        let cipher = fixture.cipher()
        try await cipher.prepare(scope)
        try await cipher.prepare(scope)
        #expect(try fixture.database.rawRead("SELECT count(*) FROM data_keys") == 1)
        let sealed = try await cipher.seal(Array("first words".utf8), scope: scope, associatedData: [2])
        #expect(try fixture.database.rawRead("SELECT count(*) FROM data_keys") == 1)
        // Another hub process opens it with the stored key.
        #expect(try await fixture.cipher().open(sealed, scope: scope, associatedData: [2]) == Array("first words".utf8))
    }

    @Test func sealsUnderAPerConversationKeyThatIsStoredOnlyWrapped() async throws {
        let fixture = try KeyFixture()
        let cipher = fixture.cipher()
        let sealed = try await cipher.seal(Array("chest pain".utf8), scope: scope, associatedData: [1])
        #expect(sealed.keyID == "d1")
        #expect(try await cipher.open(sealed, scope: scope, associatedData: [1]) == Array("chest pain".utf8))
        // A second hub process (fresh cipher, same master and database) opens it too.
        #expect(try await fixture.cipher().open(sealed, scope: scope, associatedData: [1]) == Array("chest pain".utf8))
        let record = try #require(try await fixture.store.dataKey(scope: scope.description))
        #expect(record.kekVersion == 1 && record.wrapped.count == 12 + 32 + 16)
        // Another conversation gets another key: its sealed text does not open under this one.
        let other = KeyScope.conversation(org, ConversationID("c_2"))
        let elsewhere = try await cipher.seal(Array("x".utf8), scope: other, associatedData: [1])
        await #expect(throws: (any Error).self) { try await cipher.open(elsewhere, scope: scope, associatedData: [1]) }
        // Without the master key nothing opens.
        let stranger = EnvelopeCipher(master: SymmetricKey(randomByteCount: 32), store: fixture.store)
        await #expect(throws: (any Error).self) { try await stranger.open(sealed, scope: scope, associatedData: [1]) }
    }

    @Test func shreddingMakesTheConversationUnreadableForGood() async throws {
        let fixture = try KeyFixture()
        let cipher = fixture.cipher()
        let sealed = try await cipher.seal(Array("secret".utf8), scope: scope, associatedData: [])
        try await cipher.shred(scope)
        #expect(try await fixture.store.dataKey(scope: scope.description) == nil)
        await #expect(throws: HubError.keyShredded(scope.description)) { try await cipher.open(sealed, scope: scope, associatedData: []) }
        await #expect(throws: HubError.keyShredded(scope.description)) { try await fixture.cipher().open(sealed, scope: scope, associatedData: []) }
    }

    @Test func aStoredSealedAttachmentChunkDoesNotOpenOnceTheConversationKeyIsShredded() async throws {
        let fixture = try KeyFixture()
        let cipher = fixture.cipher()
        let room = try await SQLiteConversationStore(database: fixture.database).create(org: org, tokenDigest: [1], at: Date()).id
        let scope = KeyScope.conversation(org, room)
        let store = SQLiteAttachmentStore(database: fixture.database)
        let id = AttachmentID.random()
        let aad = Attachment.chunkAssociatedData(id, index: 0, last: true)
        try await store.begin(Attachment(id: id, org: org, conversation: room, sender: "visitor", name: .plain("x"), contentType: "", at: Date()))
        try await store.appendChunk(id, index: 0, .sealed(try await cipher.seal(Array("scan of a mole".utf8), scope: scope, associatedData: aad)))
        try await store.finish(
            id, state: .ready, size: 14, contentType: "image/png",
            message: StoredMessage(conversation: room, seq: 1, sender: "visitor", at: Date(), body: .plain(""), attachment: id), recording: [])
        // The chunk as the database (or a backup of it) holds it.
        var stored: SealedText?
        if case .sealed(let box)? = try await store.chunk(id, index: 0) { stored = box }
        let sealed = try #require(stored, "the chunk is stored sealed")
        #expect(try await cipher.open(sealed, scope: scope, associatedData: aad) == Array("scan of a mole".utf8))
        try await cipher.shred(scope)
        await #expect(throws: HubError.keyShredded(scope.description)) { try await cipher.open(sealed, scope: scope, associatedData: aad) }
        await #expect(throws: HubError.keyShredded(scope.description)) { try await fixture.cipher().open(sealed, scope: scope, associatedData: aad) }
    }

    @Test func rotationRewrapsWithoutReencryptingAndErasesTheOldKey() async throws {
        let fixture = try KeyFixture()
        let cipher = fixture.cipher()
        var sealed: [(KeyScope, SealedText)] = []
        for index in 0..<25 {
            let scope = KeyScope.conversation(org, ConversationID("c_\(index)"))
            sealed.append((scope, try await cipher.seal(Array("message \(index)".utf8), scope: scope, associatedData: [])))
        }
        let before = try await fixture.store.dataKey(scope: sealed[0].0.description)
        let report = try await fixture.cipher().rotate(org: org, batchSize: 10)
        #expect(report.newVersion == 2 && report.rewrapped == 25 && report.retiredVersions == [1])
        let keks = try await fixture.store.keks(org: org)
        #expect(keks.map(\.state) == [.retired, .active])
        #expect(keks[0].wrapped == nil)
        let after = try await fixture.store.dataKey(scope: sealed[0].0.description)
        #expect(after?.kekVersion == 2 && after?.wrapped != before?.wrapped)
        // The stored messages are untouched and open with a fresh cipher (no cached keys).
        let fresh = fixture.cipher()
        for (index, (scope, text)) in sealed.enumerated() {
            #expect(try await fresh.open(text, scope: scope, associatedData: []) == Array("message \(index)".utf8))
        }
        // New conversations get keys under the new version.
        let later = KeyScope.conversation(org, ConversationID("c_new"))
        _ = try await fresh.seal([1], scope: later, associatedData: [])
        #expect(try await fixture.store.dataKey(scope: later.description)?.kekVersion == 2)
    }

    @Test func anInterruptedRotationResumes() async throws {
        let fixture = try KeyFixture()
        let cipher = fixture.cipher()
        for index in 0..<5 {
            _ = try await cipher.seal([UInt8(index)], scope: .conversation(org, ConversationID("c_\(index)")), associatedData: [])
        }
        // A run that stopped after starting: version 2 exists as 'rotating', nothing rewrapped.
        let store = fixture.store
        let master = fixture.master
        let org = self.org
        let started = try await store.beginRotation(org: org) { version in
            try AES256GCM.seal(SecureRandom.bytes(32), using: master, authenticating: Array("carehub.kek.v1|\(org.rawValue)|\(version)".utf8)).combined
        }
        #expect(started.to.version == 2 && started.to.state == .rotating)
        await #expect(throws: StorageError.rotationIncomplete(org: "clinic", remaining: 5)) { try await store.finishRotation(org: org, version: 2) }
        // Meanwhile the hub keeps creating keys: they go under the rotating version.
        _ = try await cipher.seal([9], scope: .conversation(org, ConversationID("c_during")), associatedData: [])
        #expect(try await fixture.store.dataKey(scope: "conversation:c_during")?.kekVersion == 2)
        let report = try await fixture.cipher().rotate(org: org)
        #expect(report.newVersion == 2 && report.rewrapped == 5)
        #expect(try await fixture.store.keks(org: org).map(\.state) == [.retired, .active])
        for index in 0..<5 {
            let scope = KeyScope.conversation(org, ConversationID("c_\(index)"))
            #expect(try await fixture.store.dataKey(scope: scope.description)?.kekVersion == 2)
        }
    }
}

@Suite("tamper-evident audit log")
struct AuditChainTests {
    let org = OrgID("clinic")

    func fixture(events: Int) async throws -> (KeyFixture, SQLiteAuditLog, SymmetricKey) {
        let fixture = try KeyFixture()
        let key = try MasterKey.auditKey(from: fixture.master)
        let log = SQLiteAuditLog(database: fixture.database, checkpointKey: key)
        for index in 1...events {
            try await log.record(AuditEvent(at: Date(timeIntervalSince1970: 1_800_000_000 + Double(index)), org: org, actor: "joy", address: "10.0.0.\(index)", action: "login.success", target: "", detail: "n=\(index)"))
        }
        return (fixture, log, key)
    }

    func execute(_ fixture: KeyFixture, _ sql: String) throws {
        // Direct tampering, as someone with file access would do it.
        try fixture.database.rawWrite(sql)
    }

    @Test func anUntouchedChainHolds() async throws {
        let (fixture, log, key) = try await fixture(events: 10)
        #expect(try await log.verify(checkpointKey: key) == .holds(events: 10, checkpoints: 10))
        withExtendedLifetime(fixture) {}
    }

    @Test func editingARowIsFound() async throws {
        let (fixture, log, key) = try await fixture(events: 10)
        try execute(fixture, "UPDATE audit_events SET actor = 'mallory' WHERE id = 6")
        #expect(try await log.verify(checkpointKey: key) == .broken(eventID: 6, reason: "its contents or position were altered (edited, swapped or reordered)"))
    }

    @Test func deletingARowIsFound() async throws {
        let (fixture, log, key) = try await fixture(events: 10)
        try execute(fixture, "DELETE FROM audit_events WHERE id = 3")
        #expect(try await log.verify(checkpointKey: key) == .broken(eventID: 3, reason: "event 3 is missing (deleted)"))
    }

    @Test func reorderingRowsIsFound() async throws {
        let (fixture, log, key) = try await fixture(events: 10)
        // Swap the contents of rows 4 and 5, hashes included.
        try execute(fixture, """
            UPDATE audit_events SET id = -4 WHERE id = 4; UPDATE audit_events SET id = 4 WHERE id = 5; UPDATE audit_events SET id = 5 WHERE id = -4;
            """)
        guard case .broken(let id, _) = try await log.verify(checkpointKey: key) else {
            Issue.record("reordering not detected")
            return
        }
        #expect(id == 4)
    }

    @Test func deletingTheNewestRowsIsCaughtByASignedHead() async throws {
        let (fixture, log, key) = try await fixture(events: 10)
        try execute(fixture, "DELETE FROM audit_events WHERE id > 6")
        #expect(try await log.verify(checkpointKey: key) == .broken(eventID: 7, reason: "a signed head covers event 7, which is gone (events were deleted from the end)"))
    }

    @Test func eventsCommittedWithMessagesJoinTheChainAndItsCheckpoints() async throws {
        let (fixture, log, key) = try await fixture(events: 2)
        let messages = SQLiteMessageStore(database: fixture.database, audit: log)
        let room = try await SQLiteConversationStore(database: fixture.database).create(org: org, tokenDigest: [1], at: Date()).id
        // Concurrent appends share commits; each message's event lands in the chain with it,
        // interleaved with events the audit writer commits meanwhile.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 1...20 {
                group.addTask {
                    let seq = try await messages.reserveSequence(in: room)
                    let delivered = AuditEvent(at: Date(), org: org, actor: "visitor", address: "10.0.0.1", action: "phi.delivered", target: room.rawValue, detail: "seq=\(seq) readers=joy")
                    try await messages.append(StoredMessage(conversation: room, seq: seq, sender: "visitor", at: Date(), body: .plain("m")), recording: [delivered])
                    if index % 5 == 0 { try await log.record(AuditEvent(at: Date(), org: org, actor: "joy", address: "10.0.0.2", action: "login.success")) }
                }
            }
            try await group.waitForAll()
        }
        let entries = try log.entries(org: org)
        #expect(entries.filter { $0.event.action == "phi.delivered" }.map(\.event.detail).sorted() == (1...20).map { "seq=\($0) readers=joy" }.sorted())
        #expect(entries.count == 26)
        guard case .holds(26, let checkpoints) = try await log.verify(checkpointKey: key) else {
            Issue.record("chain does not hold")
            return
        }
        #expect(checkpoints >= 1)
    }

    @Test func aMessageWhoseRowFailsTakesItsEventWithIt() async throws {
        let (fixture, log, key) = try await fixture(events: 3)
        let messages = SQLiteMessageStore(database: fixture.database, audit: log)
        let room = try await SQLiteConversationStore(database: fixture.database).create(org: org, tokenDigest: [2], at: Date()).id
        let event = { (seq: Int) in AuditEvent(at: Date(), org: org, actor: "visitor", address: "local", action: "phi.delivered", target: room.rawValue, detail: "seq=\(seq) readers=joy") }
        try await messages.append(StoredMessage(conversation: room, seq: 1, sender: "visitor", at: Date(), body: .plain("one")), recording: [event(1)])
        await #expect(throws: (any Error).self) {
            try await messages.append(StoredMessage(conversation: room, seq: 1, sender: "visitor", at: Date(), body: .plain("again")), recording: [event(99)])
        }
        #expect(try log.entries(org: org).map(\.event.detail) == ["n=1", "n=2", "n=3", "seq=1 readers=joy"])
        // Every commit of events is signed, the message store's included.
        #expect(try await log.verify(checkpointKey: key) == .holds(events: 4, checkpoints: 4))
    }

    @Test func aRecomputedChainStillFailsTheSignature() async throws {
        let (fixture, log, key) = try await fixture(events: 8)
        // A forger without the audit key can neither chain a row nor sign its head.
        let forger = SQLiteAuditLog(database: fixture.database, checkpointKey: SymmetricKey(randomByteCount: 32))
        try await forger.record(AuditEvent(at: Date(), org: org, actor: "mallory", address: "10.6.6.6", action: "login.success"))
        let verdict = try await log.verify(checkpointKey: key)
        #expect(verdict == .broken(eventID: 9, reason: "the signed head at event 9 has an invalid signature"))
    }
}
