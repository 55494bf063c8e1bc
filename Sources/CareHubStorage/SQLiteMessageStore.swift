import CareHubCore
import Dispatch
import Foundation
import GRDB
import Synchronization

/// ``MessageStore`` on the hub's SQLite database, with group commit.
///
/// Appends queue up while a transaction is being committed; the next transaction writes them all,
/// with the audit events given with them, and commits once (one fsync), then resumes every waiting
/// caller. No caller returns before its row is committed with `synchronous=FULL`.
public final class SQLiteMessageStore: MessageStore {
    private struct Pending {
        let message: StoredMessage
        let events: [AuditEvent]
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct WriterState {
        var queue: [Pending] = []
        var draining = false
        var accepted = 0
    }

    /// Counters of committed work, for metrics.
    public struct Statistics: Sendable, Hashable {
        /// Transactions committed by the writer.
        public var commits = 0
        /// Messages committed.
        public var messages = 0
        /// The largest batch committed in one transaction.
        public var largestBatch = 0
        /// How long commits took (the transaction, its fsync included): counts per bucket of
        /// ``commitBounds`` (not cumulative), and their sum in seconds.
        public var commitDurations = [UInt64](repeating: 0, count: Statistics.commitBounds.count + 1)
        public var commitSeconds = 0.0

        /// Upper bounds (seconds) of the commit duration buckets; the last bucket is unbounded.
        public static let commitBounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
    }

    private let database: CareHubDatabase
    private let audit: SQLiteAuditLog
    private let writer = Mutex(WriterState())
    private let sequences = Mutex<[ConversationID: UInt64]>([:])
    private let counters = Mutex(Statistics())
    private let writerQueue = DispatchQueue(label: "carehub.storage.messages")

    /// Creates the store; events appended with messages go to `audit`'s chain (and count toward
    /// its signed checkpoints).
    public init(database: CareHubDatabase, audit: SQLiteAuditLog? = nil) {
        self.database = database
        self.audit = audit ?? SQLiteAuditLog(database: database)
    }

    /// What the writer has committed so far.
    public var statistics: Statistics { counters.withLock { $0 } }

    /// Appends taken so far, and those among them not yet picked up by the writer: tests wait on
    /// these instead of on time.
    var queueDepth: (accepted: Int, waiting: Int) { writer.withLock { ($0.accepted, $0.queue.count) } }

    public func reserveSequence(in conversation: ConversationID) async throws -> UInt64 {
        if let next = sequences.withLock({ table -> UInt64? in
            guard let last = table[conversation] else { return nil }
            table[conversation] = last + 1
            return last + 1
        }) {
            return next
        }
        let stored = try await database.pool.read { db in
            try UInt64.fetchOne(
                db,
                sql: "SELECT MAX(c.last_seq, IFNULL((SELECT MAX(seq) FROM messages WHERE conversation = c.id), 0)) FROM conversations c WHERE c.id = ?",
                arguments: [conversation.rawValue])
        }
        guard let stored else { throw StorageError.conversationNotFound(conversation.rawValue) }
        return sequences.withLock { table in
            // Another task may have loaded it meanwhile; take the larger.
            let next = max(table[conversation] ?? 0, stored) + 1
            table[conversation] = next
            return next
        }
    }

    public func append(_ message: StoredMessage, recording events: [AuditEvent]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startDrain = writer.withLock { state -> Bool in
                state.queue.append(Pending(message: message, events: events, continuation: continuation))
                state.accepted += 1
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if startDrain {
                writerQueue.async { self.drain() }
            }
        }
    }

    private func drain() {
        while true {
            let batch = writer.withLock { state -> [Pending] in
                let batch = state.queue
                state.queue.removeAll(keepingCapacity: true)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            let started = ContinuousClock.now
            do {
                try database.pool.write { db in
                    for pending in batch { try Self.insert(pending.message, db) }
                    try audit.append(batch.flatMap(\.events), within: db)
                }
                record(batch.count, since: started)
                for pending in batch { pending.continuation.resume() }
            } catch {
                // One bad row must not fail its neighbours: retry one transaction each.
                for pending in batch {
                    let retried = ContinuousClock.now
                    do {
                        try database.pool.write { db in
                            try Self.insert(pending.message, db)
                            try audit.append(pending.events, within: db)
                        }
                        record(1, since: retried)
                        pending.continuation.resume()
                    } catch {
                        pending.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }

    private func record(_ batchSize: Int, since started: ContinuousClock.Instant) {
        let seconds = (ContinuousClock.now - started).seconds
        counters.withLock { stats in
            stats.commitDurations[Statistics.commitBounds.firstIndex { seconds <= $0 } ?? Statistics.commitBounds.count] += 1
            stats.commitSeconds += seconds
            stats.commits += 1
            stats.messages += batchSize
            stats.largestBatch = max(stats.largestBatch, batchSize)
        }
        database.committed()
    }

    /// Inserts one message row inside the caller's transaction: the group commit's, or an
    /// attachment's ``SQLiteAttachmentStore/finish(_:state:size:contentType:message:recording:)``.
    static func insert(_ message: StoredMessage, _ db: Database) throws {
        if case .unreadable = message.body {
            throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "an unreadable body cannot be stored")
        }
        let statement = try db.cachedStatement(sql: "INSERT INTO messages (conversation, seq, sender, at, key_id, body, attachment) VALUES (?, ?, ?, ?, ?, ?, ?)")
        try HotInsert.run(statement) { row in
            row.text(message.conversation.rawValue)
            row.integer(Int64(message.seq))
            row.text(message.sender)
            row.real(message.at.timeIntervalSince1970)
            switch message.body {
            case .plain(let text):
                row.optionalText(nil)
                row.blob(Array(text.utf8))
            case .sealed(let sealed):
                row.optionalText(sealed.keyID)
                row.blob(sealed.bytes)
            case .unreadable:
                break
            }
            row.optionalText(message.attachment?.rawValue)
        }
    }

    /// A message as a row of `messages` holds it.
    static func message(_ row: Row) -> StoredMessage {
        let attachment: String? = row["attachment"]
        return StoredMessage(
            conversation: ConversationID(row["conversation"]),
            seq: UInt64(row["seq"] as Int64),
            sender: row["sender"],
            at: Date(timeIntervalSince1970: row["at"]),
            body: body(keyID: row["key_id"], bytes: row["body"]),
            attachment: attachment.map(AttachmentID.init))
    }

    /// Text as stored: plain UTF-8 without a key id, else sealed under that key (message bodies,
    /// attachment names).
    static func body(keyID: String?, bytes: Data) -> MessageBody {
        keyID.map { .sealed(SealedText(keyID: $0, bytes: Array(bytes))) } ?? .plain(String(decoding: bytes, as: UTF8.self))
    }

    public func history(of conversation: ConversationID, limit: Int) async throws -> [StoredMessage] {
        try await database.pool.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM messages WHERE conversation = ? ORDER BY seq DESC LIMIT ?",
                arguments: [conversation.rawValue, limit])
            return rows.reversed().map(Self.message)
        }
    }

    public func messages(of conversation: ConversationID, after: UInt64, limit: Int) async throws -> [StoredMessage] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM messages WHERE conversation = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [conversation.rawValue, Int64(clamping: after), limit]
            ).map(Self.message)
        }
    }

    /// Deletes a conversation's messages and scrubs them from the files: `secure_delete`
    /// zeroes the freed cells, and a truncating checkpoint drops the WAL frames that still held
    /// the old pages.
    public func purge(_ conversation: ConversationID) async throws -> Int {
        let deleted = try await database.pool.write { db in
            // The last sequence number outlives the rows, so that numbering never starts over
            // (messages carry it while they exist; only a purge needs it written down).
            try db.execute(
                sql: "UPDATE conversations SET last_seq = MAX(last_seq, IFNULL((SELECT MAX(seq) FROM messages WHERE conversation = ?1), 0)) WHERE id = ?1",
                arguments: [conversation.rawValue])
            try db.execute(sql: "DELETE FROM messages WHERE conversation = ?", arguments: [conversation.rawValue])
            return db.changesCount
        }
        try await database.pool.writeWithoutTransaction { db in
            // Readers may hold old frames for a moment; a later checkpoint finishes the job.
            _ = try? db.checkpoint(.truncate)
        }
        return deleted
    }

    public func plainMessages(of conversation: ConversationID, limit: Int) async throws -> [StoredMessage] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM messages WHERE conversation = ? AND key_id IS NULL ORDER BY seq LIMIT ?",
                arguments: [conversation.rawValue, limit]
            ).map(Self.message)
        }
    }

    /// Rewrites plain bodies as sealed ones: `secure_delete` zeroes the cells the plain text
    /// leaves, and a truncating checkpoint moves the new pages into the file and empties the WAL
    /// that still held the old ones.
    public func seal(_ sealed: [(seq: UInt64, body: SealedText)], in conversation: ConversationID) async throws -> Int {
        let replaced = try await database.pool.write { db -> Int in
            var replaced = 0
            for (seq, body) in sealed {
                try db.execute(
                    sql: "UPDATE messages SET key_id = ?, body = ? WHERE conversation = ? AND seq = ? AND key_id IS NULL",
                    arguments: [body.keyID, Data(body.bytes), conversation.rawValue, Int64(seq)])
                replaced += db.changesCount
            }
            return replaced
        }
        try await database.pool.writeWithoutTransaction { db in
            _ = try? db.checkpoint(.truncate)
        }
        return replaced
    }
}
