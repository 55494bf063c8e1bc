import CareHubAudit
import CareHubCore
import CareHubCrypto
@testable import CareHubStorage
import Foundation
import Testing

/// The hub's record of a file, not swift-testing's attachment.
typealias Attachment = CareHubCore.Attachment

/// A fresh data directory under the system's temporary directory, removed afterwards.
final class DataDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "carehub-storage-\(UUID().uuidString)"
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Every byte of the database's files (main, WAL, shared memory).
    func allBytes() throws -> Data {
        var bytes = Data()
        for name in try FileManager.default.contentsOfDirectory(atPath: path) where name.hasPrefix(CareHubDatabase.fileName) {
            bytes.append(try Data(contentsOf: URL(fileURLWithPath: path + "/" + name)))
        }
        return bytes
    }
}

/// Polls `condition` until it holds; gives up after ten seconds (a hang guard, never a timing
/// assertion) with an issue naming `what`.
func waitUntil(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool) async throws {
    for _ in 0..<10_000 where !condition() {
        try await Task.sleep(for: .milliseconds(1))
    }
    try #require(condition(), "never happened: \(what)", sourceLocation: sourceLocation)
}

@Suite("SQLite storage")
struct StorageTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func opensInWALModeSyncingEveryCommitWithVersionedMigrationsAndOwnerOnlyFiles() throws {
        let directory = try DataDirectory()
        let database = try CareHubDatabase(directory: directory.path)
        #expect(try database.journalMode() == "wal")
        // FULL on the committing connection too: an acknowledged message survives power loss.
        let synchronous = try database.synchronousLevels()
        #expect(synchronous.writer == 2 && synchronous.reader == 2)
        #expect(try database.appliedMigrations() == ["v1-conversations-messages-users-outbox", "v2-second-factor-lockout-audit", "v3-envelope-keys-audit-chain", "v4-visitor-profile",
            "v5-end-of-chat-hook-outbox-assignment", "v6-baa-attestations",
            "v7-keyed-audit-chain-signed-heads", "v8-staff-display-name", "v9-canned-replies", "v10-front-desk", "v11-change-journal",
            "v12-attachments", "v13-api-tokens", "v14-webhooks", "v15-health",
        ])
        let mode = try FileManager.default.attributesOfItem(atPath: database.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let directoryMode = try FileManager.default.attributesOfItem(atPath: directory.path)[.posixPermissions] as? Int
        #expect(directoryMode == 0o700)
        try database.close()
        // Reopening applies nothing twice.
        #expect(try CareHubDatabase(directory: directory.path).appliedMigrations().count == 15)
    }

    @Test func aFileWhereTheDataDirectoryShouldBeIsAClearError() throws {
        let directory = try DataDirectory()
        #expect(FileManager.default.createFile(atPath: directory.path, contents: Data("x".utf8)))
        #expect {
            _ = try CareHubDatabase(directory: directory.path)
        } throws: { error in
            "\(error)".contains(directory.path) && "\(error)".contains("not a directory")
        }
    }

    @Test func messagesSurviveAReopenInOrderWithSequences() async throws {
        let directory = try DataDirectory()
        let room: ConversationID
        do {
            let database = try CareHubDatabase(directory: directory.path)
            let conversations = SQLiteConversationStore(database: database)
            let messages = SQLiteMessageStore(database: database)
            room = try await conversations.create(org: org, tokenDigest: [1, 2, 3], at: at).id
            for text in ["first", "second", "third"] {
                let seq = try await messages.reserveSequence(in: room)
                try await messages.append(StoredMessage(conversation: room, seq: seq, sender: "visitor", at: at, body: .plain(text)))
            }
            let sealed = SealedText(keyID: "v1", bytes: [9, 8, 7])
            try await messages.append(StoredMessage(conversation: room, seq: try await messages.reserveSequence(in: room), sender: "joy", at: at, body: .sealed(sealed)))
            try database.close()
        }
        let database = try CareHubDatabase(directory: directory.path)
        let messages = SQLiteMessageStore(database: database)
        let history = try await messages.history(of: room, limit: 10)
        #expect(history.map(\.seq) == [1, 2, 3, 4])
        #expect(history.map(\.body) == [.plain("first"), .plain("second"), .plain("third"), .sealed(SealedText(keyID: "v1", bytes: [9, 8, 7]))])
        #expect(try await messages.history(of: room, limit: 2).map(\.seq) == [3, 4])
        // Sequences continue after a restart instead of starting over.
        #expect(try await messages.reserveSequence(in: room) == 5)
    }

    @Test func concurrentAppendsAreAllCommittedInOrder() async throws {
        let directory = try DataDirectory()
        let database = try CareHubDatabase(directory: directory.path)
        let conversations = SQLiteConversationStore(database: database)
        let messages = SQLiteMessageStore(database: database)
        let room = try await conversations.create(org: org, tokenDigest: [4], at: at).id
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    let seq = try await messages.reserveSequence(in: room)
                    try await messages.append(StoredMessage(conversation: room, seq: seq, sender: "v", at: at, body: .plain("m\(seq)")))
                }
            }
            try await group.waitForAll()
        }
        let history = try await messages.history(of: room, limit: 500)
        #expect(history.map(\.seq) == Array(1...200))
        #expect(messages.statistics.messages == 200)
    }

    @Test func appendsArrivingDuringACommitAreCommittedTogetherInTheNextTransaction() async throws {
        let directory = try DataDirectory()
        let database = try CareHubDatabase(directory: directory.path)
        let conversations = SQLiteConversationStore(database: database)
        let audit = SQLiteAuditLog(database: database, checkpointKey: SymmetricKey(randomByteCount: 32))
        let messages = SQLiteMessageStore(database: database, audit: audit)
        let room = try await conversations.create(org: org, tokenDigest: [4], at: at).id
        let count = 50
        let append: @Sendable (Int) async throws -> Void = { [org, at] seq in
            let event = AuditEvent(at: at, org: org, actor: "visitor", address: "local", action: "phi.delivered", target: room.rawValue, detail: "seq=\(seq)")
            try await messages.append(StoredMessage(conversation: room, seq: UInt64(seq), sender: "visitor", at: at, body: .plain("m\(seq)")), recording: [event])
        }

        // Hold the database's only writer, as a slow commit (a long fsync) would.
        let release = DispatchSemaphore(value: 0)
        await withCheckedContinuation { (held: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                try? database.pool.write { _ in
                    held.resume()
                    release.wait()
                }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // The first append starts a transaction of its own, which waits for the database.
            group.addTask { try await append(1) }
            try await waitUntil("the writer takes the first append") { messages.queueDepth == (accepted: 1, waiting: 0) }
            // Everything appended meanwhile queues up behind it.
            for seq in 2...count { group.addTask { try await append(seq) } }
            try await waitUntil("every append is queued") { messages.queueDepth == (accepted: count, waiting: count - 1) }
            release.signal()
            try await group.waitForAll()
        }

        let statistics = messages.statistics
        #expect(statistics.commits == 2)
        #expect(statistics.largestBatch == count - 1)
        #expect(statistics.messages == count)
        #expect(try await messages.history(of: room, limit: 500).map(\.seq) == (1...count).map(UInt64.init))
        // Each message's record once; the queued appends were started concurrently, so in no set order.
        let records = try audit.entries(org: org, action: "phi.delivered").map(\.event.detail)
        #expect(records.first == "seq=1")
        #expect(records.sorted() == (1...count).map { "seq=\($0)" }.sorted())
    }

    @Test func theHubsDatabaseCopiesCommittedMessagesIntoTheMainFileInTheBackground() async throws {
        let directory = try DataDirectory()
        let database = try CareHubDatabase(directory: directory.path, backgroundCheckpoints: true)
        let messages = SQLiteMessageStore(database: database)
        let room = try await SQLiteConversationStore(database: database).create(org: org, tokenDigest: [8], at: at).id
        // Far below the 1,000 WAL pages at which the committing writer would checkpoint itself.
        for seq in 1...20 {
            try await messages.append(StoredMessage(conversation: room, seq: UInt64(seq), sender: "v", at: at, body: .plain("BACKFILL-CANARY-\(seq)")))
        }
        let mainFile = URL(fileURLWithPath: database.path)
        let deadline = Date().addingTimeInterval(10)
        while try Data(contentsOf: mainFile).range(of: Data("BACKFILL-CANARY-20".utf8)) == nil && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try Data(contentsOf: mainFile).range(of: Data("BACKFILL-CANARY-20".utf8)) != nil)
        try database.close()
        // Without it, nothing is copied until the WAL reaches 1,000 pages (or the database closes).
        let plain = try DataDirectory()
        let other = try CareHubDatabase(directory: plain.path)
        let otherMessages = SQLiteMessageStore(database: other)
        let otherRoom = try await SQLiteConversationStore(database: other).create(org: org, tokenDigest: [9], at: at).id
        try await otherMessages.append(StoredMessage(conversation: otherRoom, seq: 1, sender: "v", at: at, body: .plain("WAL-ONLY-CANARY")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: other.path)).range(of: Data("WAL-ONLY-CANARY".utf8)) == nil)
        try other.close()
    }

    @Test func aDuplicateSequenceFailsAloneWithoutSinkingItsBatch() async throws {
        let directory = try DataDirectory()
        let database = try CareHubDatabase(directory: directory.path)
        let messages = SQLiteMessageStore(database: database)
        let room = try await SQLiteConversationStore(database: database).create(org: org, tokenDigest: [5], at: at).id
        try await messages.append(StoredMessage(conversation: room, seq: 1, sender: "v", at: at, body: .plain("one")))
        await #expect(throws: (any Error).self) {
            try await messages.append(StoredMessage(conversation: room, seq: 1, sender: "v", at: at, body: .plain("again")))
        }
        try await messages.append(StoredMessage(conversation: room, seq: 2, sender: "v", at: at, body: .plain("two")))
        #expect(try await messages.history(of: room, limit: 10).map(\.body) == [.plain("one"), .plain("two")])
    }

    /// A fresh database with two conversations: one to purge, one to keep.
    func purgeFixture() async throws -> (directory: DataDirectory, database: CareHubDatabase, purged: ConversationID, kept: ConversationID) {
        let directory = try DataDirectory()
        let database = try CareHubDatabase(directory: directory.path)
        let conversations = SQLiteConversationStore(database: database)
        let purged = try await conversations.create(org: org, tokenDigest: [6], at: at).id
        let kept = try await conversations.create(org: org, tokenDigest: [7], at: at).id
        return (directory, database, purged, kept)
    }

    @Test func purgeRemovesTheTextFromEveryFile() async throws {
        let (directory, database, purged, kept) = try await purgeFixture()
        let messages = SQLiteMessageStore(database: database)
        for index in 1...20 {
            try await messages.append(StoredMessage(conversation: purged, seq: UInt64(index), sender: "v", at: at, body: .plain("PURGE-CANARY-\(index)")))
        }
        try await messages.append(StoredMessage(conversation: kept, seq: 1, sender: "v", at: at, body: .plain("KEPT-TEXT")))
        #expect(try directory.allBytes().range(of: Data("PURGE-CANARY".utf8)) != nil)

        #expect(try await messages.purge(purged) == 20)
        #expect(try await messages.history(of: purged, limit: 50).isEmpty)
        // Numbering goes on after the purge, also for a hub started afresh on the same file.
        #expect(try await SQLiteMessageStore(database: database).reserveSequence(in: purged) == 21)
        #expect(try await messages.history(of: kept, limit: 50).count == 1)
        #expect(try directory.allBytes().range(of: Data("PURGE-CANARY".utf8)) == nil)
        #expect(try directory.allBytes().range(of: Data("KEPT-TEXT".utf8)) != nil)
    }

    @Test func erasedAttachmentsLeaveNoneOfTheirBytesOrNamesInAnyFile() async throws {
        let (directory, database, purged, kept) = try await purgeFixture()
        let attachments = SQLiteAttachmentStore(database: database)
        // Chunks big enough for overflow pages, a plain name, one finished and one cut off.
        let canary = Array("ATTACHMENT-CANARY-".utf8)
        let chunk = (0..<Attachment.chunkSize).map { canary[$0 % canary.count] }
        func upload(_ room: ConversationID, name: String, chunks: [[UInt8]], finishAs seq: UInt64?) async throws -> AttachmentID {
            let id = AttachmentID.random()
            try await attachments.begin(Attachment(id: id, org: org, conversation: room, sender: "v", name: .plain(name), contentType: "", at: at))
            for (index, bytes) in chunks.enumerated() { try await attachments.appendChunk(id, index: index, .plain(bytes)) }
            if let seq {
                let size = chunks.map(\.count).reduce(0, +)
                try await attachments.finish(
                    id, state: .ready, size: size, contentType: "image/png",
                    message: StoredMessage(conversation: room, seq: seq, sender: "v", at: at, body: .plain(""), attachment: id), recording: [])
            }
            return id
        }
        let finished = try await upload(purged, name: "NAME-CANARY-1.png", chunks: [chunk, chunk, Array(canary)], finishAs: 1)
        _ = try await upload(purged, name: "NAME-CANARY-2.png", chunks: [chunk], finishAs: nil)
        let refused = try await upload(kept, name: "NAME-CANARY-3.png", chunks: [chunk], finishAs: 1)
        _ = try await upload(kept, name: "KEPT-NAME.png", chunks: [Array("KEPT-BYTES".utf8)], finishAs: 2)
        #expect(try directory.allBytes().range(of: Data(canary)) != nil)
        #expect(try directory.allBytes().range(of: Data("NAME-CANARY".utf8)) != nil)

        try await attachments.discard(refused)
        #expect(try await attachments.purge(purged) == 2)
        #expect(try await attachments.attachment(finished) == nil)
        #expect(try directory.allBytes().range(of: Data(canary)) == nil)
        #expect(try directory.allBytes().range(of: Data("NAME-CANARY".utf8)) == nil)
        #expect(try directory.allBytes().range(of: Data("KEPT-BYTES".utf8)) != nil)
        #expect(try directory.allBytes().range(of: Data("KEPT-NAME".utf8)) != nil)
        // The message that carried a file still names it, and history reads it back.
        #expect(try await SQLiteMessageStore(database: database).history(of: kept, limit: 10).map(\.attachment?.rawValue).count == 2)
    }

    @Test func conversationsAreFoundByTokenDigestAndEndOnce() async throws {
        let directory = try DataDirectory()
        let database = try CareHubDatabase(directory: directory.path)
        let conversations = SQLiteConversationStore(database: database)
        let created = try await conversations.create(org: org, tokenDigest: [1, 1], at: at)
        #expect(created.id.rawValue.hasPrefix("c_"))
        #expect(try await conversations.find(org: org, tokenDigest: [1, 1])?.id == created.id)
        #expect(try await conversations.find(org: OrgID("other"), tokenDigest: [1, 1]) == nil)
        try await conversations.markEnded(created.id, at: at.addingTimeInterval(60))
        try await conversations.markEnded(created.id, at: at.addingTimeInterval(120))
        #expect(try await conversations.conversation(created.id)?.endedAt == at.addingTimeInterval(60))
        #expect(try await conversations.list(org: org, limit: 10).map(\.id) == [created.id])
    }

    @Test func retentionFindsOldUnpurgedConversationsOnly() async throws {
        let directory = try DataDirectory()
        let database = try CareHubDatabase(directory: directory.path)
        let conversations = SQLiteConversationStore(database: database)
        let old = try await conversations.create(org: org, tokenDigest: [1], at: at)
        let purged = try await conversations.create(org: org, tokenDigest: [2], at: at)
        _ = try await conversations.create(org: org, tokenDigest: [3], at: at.addingTimeInterval(3600))
        _ = try await conversations.create(org: OrgID("other"), tokenDigest: [4], at: at)
        try await conversations.markPurged(purged.id, at: at.addingTimeInterval(60))
        let due = try await conversations.unpurged(org: org, startedBefore: at.addingTimeInterval(1800), limit: 10)
        #expect(due.map(\.id) == [old.id])
        #expect(try await conversations.conversation(purged.id)?.endedAt == at.addingTimeInterval(60))
    }

    @Test func anAccountFromBeforeDisplayNamesGainsNoneAndTheSetterAuditsItsChange() async throws {
        let directory = try DataDirectory()
        do {
            // A database as v7 left it: no display_name column, one account.
            let database = try CareHubDatabase(directory: directory.path)
            try await SQLiteUserDirectory(database: database).add(StaffUser(org: org, name: "nurse.joy", role: .staff, passwordHash: "h1"))
            try database.rawWrite("ALTER TABLE users DROP COLUMN display_name")
            try database.rawWrite("DELETE FROM grdb_migrations WHERE identifier = 'v8-staff-display-name'")
            try database.close()
        }
        let database = try CareHubDatabase(directory: directory.path)
        #expect(try database.appliedMigrations().contains("v8-staff-display-name"))
        let audit = SQLiteAuditLog(database: database, checkpointKey: SymmetricKey(randomByteCount: 32))
        let users = SQLiteUserDirectory(database: database, audit: audit)
        let before = try #require(try await users.user(org: org, name: "nurse.joy"))
        #expect(before.displayName == nil && before.shownName == "nurse.joy" && before.passwordHash == "h1")

        let event = AuditEvent(at: at, org: org, actor: "cli:root", address: "local", action: "user.display_name_changed", target: "nurse.joy", detail: "new=\"Joy Rivera\"")
        let old = try await users.setDisplayName(org: org, name: "nurse.joy", displayName: "Joy Rivera", audit: event)
        #expect(old == nil)
        #expect(try await users.user(org: org, name: "nurse.joy")?.displayName == "Joy Rivera")
        #expect(try await users.list(org: org).map(\.shownName) == ["Joy Rivera"])
        let audited = try audit.entries(org: org, action: "user.display_name_changed")
        #expect(audited.map(\.event) == [event])

        // A new account keeps the name it is added with; an unknown one changes nothing and audits nothing.
        try await users.add(StaffUser(org: org, name: "dr.ade", role: .admin, passwordHash: "h2", displayName: "Dr Ade Okafor"))
        #expect(try await users.user(org: org, name: "dr.ade")?.displayName == "Dr Ade Okafor")
        await #expect(throws: StorageError.userNotFound(org: "clinic", user: "nobody")) {
            try await users.setDisplayName(org: org, name: "nobody", displayName: "X", audit: event)
        }
        #expect(try audit.entries(org: org, action: "user.display_name_changed").count == 1)
    }

    @Test func displayNamesAreOneCleanLineOf1To64Characters() {
        #expect(StaffUser.displayName(from: "  Joy\tRivera \u{202E} ") == "Joy Rivera")
        #expect(StaffUser.displayName(from: "Zoë Ñúñez") == "Zoë Ñúñez")
        #expect(StaffUser.displayName(from: "   ") == nil)
        #expect(StaffUser.displayName(from: "\u{1B}\u{7F}") == nil)
        #expect(StaffUser.displayName(from: String(repeating: "é", count: 64)) != nil)
        #expect(StaffUser.displayName(from: String(repeating: "é", count: 65)) == nil)
    }

    /// The chain's encoding is a format: audit trails written by earlier versions must still
    /// verify. The expected value is SHA-256 over the same bytes computed outside Swift.
    @Test func theAuditHashIsTheDocumentedEncoding() {
        let event = AuditEvent(
            at: Date(timeIntervalSince1970: 1_700_000_000.123), org: OrgID("riverside-clinic"), actor: "nurse.joy",
            address: "10.0.0.5", action: "phi.delivered", target: "c_01", detail: "seq=3 é")
        let hash = AuditChain.hash(previous: AuditChain.genesis, id: 7, event: event)
        #expect(hash.map { String(format: "%02x", $0) }.joined() == "5dbc1b8aab17ec9602c4bffe714ee876019e4084676b4855599f87f1b6854d2c")
    }
}
