import CareHubCore
import CareHubPostgres
import Foundation
import Synchronization

/// ``MessageStore`` on PostgreSQL, shared by every hub node, with group commit.
///
/// Appends queue up while a transaction is being committed; the next transaction writes them all,
/// with the audit events given with them (through ``PostgresAuditLog/append(_:in:)``, last, so
/// the chain's tip is locked only for the end of it), and commits once, then resumes every waiting
/// caller. No caller returns before its row is committed (`synchronous_commit = on`). Sequence
/// numbers come from the conversation's row (`conversations.last_seq`), never from a node's
/// memory, so two nodes never hand out the same one.
public final class PostgresMessageStore: MessageStore {
    private struct Pending {
        let message: StoredMessage
        let events: [AuditEvent]
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct WriterState {
        var queue: [Pending] = []
        var draining = false
    }

    /// Counters of committed work, for metrics.
    public struct Statistics: Sendable, Hashable {
        /// Transactions committed by the writer.
        public var commits = 0
        /// Messages committed.
        public var messages = 0
        /// The largest batch committed in one transaction.
        public var largestBatch = 0
    }

    private let client: PostgresClient
    private let audit: PostgresAuditLog
    private let writer = Mutex(WriterState())
    private let counters = Mutex(Statistics())
    /// Messages per insert statement: 7 parameters a row, well under the protocol's 65535.
    private static let rowsPerInsert = 500

    /// Creates the store; events appended with messages go to `audit`'s chain.
    public init(database: PostgresDatabase, audit: PostgresAuditLog? = nil) {
        self.client = database.client
        self.audit = audit ?? PostgresAuditLog(database: database)
    }

    /// What the writer has committed so far.
    public var statistics: Statistics { counters.withLock { $0 } }

    /// Takes the next number from the conversation's counter, in a transaction of its own: the
    /// row lock makes concurrent reservations on any node wait their turn. The counter never
    /// goes below a message already stored (one copied in, or appended without a reservation).
    /// - Throws: ``PostgresStorageError/conversationNotFound(_:)`` for an unknown conversation.
    public func reserveSequence(in conversation: ConversationID) async throws -> UInt64 {
        let rows = try await client.query(
            """
            UPDATE conversations
            SET last_seq = GREATEST(last_seq, COALESCE((SELECT MAX(seq) FROM messages WHERE conversation = $1), 0)) + 1
            WHERE id = $1 RETURNING last_seq
            """,
            [.text(conversation.rawValue)])
        guard let row = rows.first else { throw PostgresStorageError.conversationNotFound(conversation.rawValue) }
        return UInt64(try row.int("last_seq"))
    }

    public func append(_ message: StoredMessage, recording events: [AuditEvent]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startDrain = writer.withLock { state -> Bool in
                state.queue.append(Pending(message: message, events: events, continuation: continuation))
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if startDrain { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = writer.withLock { state -> [Pending] in
                let batch = state.queue
                state.queue.removeAll(keepingCapacity: true)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            let messages = batch.map(\.message), events = batch.flatMap(\.events)
            do {
                try await client.transaction { [audit] tx in
                    try Self.insert(messages, tx)
                    try audit.append(events, in: tx)
                }
                record(batch.count)
                for pending in batch { pending.continuation.resume() }
            } catch {
                // One bad row must not fail its neighbours: retry one transaction each.
                guard batch.count > 1 else {
                    batch[0].continuation.resume(throwing: error)
                    continue
                }
                for pending in batch {
                    do {
                        try await client.transaction { [audit] tx in
                            try Self.insert([pending.message], tx)
                            try audit.append(pending.events, in: tx)
                        }
                        record(1)
                        pending.continuation.resume()
                    } catch {
                        pending.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }

    private func record(_ batchSize: Int) {
        counters.withLock { stats in
            stats.commits += 1
            stats.messages += batchSize
            stats.largestBatch = max(stats.largestBatch, batchSize)
        }
    }

    /// Inserts message rows inside the caller's transaction.
    /// - Throws: ``PostgresStorageError/unstorableBody(conversation:seq:)`` before writing
    ///   anything when a body is ``MessageBody/unreadable``; a unique violation when a seq is taken.
    public static func insert(_ messages: [StoredMessage], _ tx: PostgresTransaction) throws {
        if let unreadable = messages.first(where: { $0.body == .unreadable }) {
            throw PostgresStorageError.unstorableBody(conversation: unreadable.conversation.rawValue, seq: unreadable.seq)
        }
        var start = messages.startIndex
        while start < messages.endIndex {
            let rows = messages[start..<min(start + rowsPerInsert, messages.endIndex)]
            var sql = "INSERT INTO messages (conversation, seq, sender, at, key_id, body, attachment) VALUES "
            var parameters: [PostgresValue] = []
            parameters.reserveCapacity(rows.count * 7)
            for (index, message) in rows.enumerated() {
                let base = index * 7
                sql += (index == 0 ? "" : ", ") + "(" + (1...7).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
                let (keyID, body): (PostgresValue, [UInt8]) = switch message.body {
                case .plain(let text): (.null, Array(text.utf8))
                case .sealed(let sealed): (.text(sealed.keyID), sealed.bytes)
                case .unreadable: (.null, [])
                }
                parameters += [
                    .text(message.conversation.rawValue), .int(Int64(message.seq)), .text(message.sender),
                    .double(message.at.timeIntervalSince1970), keyID, .bytea(body), message.attachment.map { .text($0.rawValue) } ?? .null,
                ]
            }
            try tx.execute(sql, parameters)
            start = rows.endIndex
        }
    }

    /// A message as a row of `messages` holds it.
    static func message(_ row: PostgresRow) throws -> StoredMessage {
        let bytes = try row.bytes("body")
        let body: MessageBody = try row.isNull("key_id")
            ? .plain(String(decoding: bytes, as: UTF8.self))
            : .sealed(SealedText(keyID: try row.string("key_id"), bytes: bytes))
        return StoredMessage(
            conversation: ConversationID(try row.string("conversation")),
            seq: UInt64(try row.int("seq")),
            sender: try row.string("sender"),
            at: Date(timeIntervalSince1970: try row.double("at")),
            body: body,
            attachment: try row.isNull("attachment") ? nil : AttachmentID(try row.string("attachment")))
    }

    public func history(of conversation: ConversationID, limit: Int) async throws -> [StoredMessage] {
        try await client.query(
            "SELECT * FROM messages WHERE conversation = $1 ORDER BY seq DESC LIMIT $2",
            [.text(conversation.rawValue), .int(Int64(limit))]
        ).reversed().map(Self.message)
    }

    public func messages(of conversation: ConversationID, after: UInt64, limit: Int) async throws -> [StoredMessage] {
        try await client.query(
            "SELECT * FROM messages WHERE conversation = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            [.text(conversation.rawValue), .int(Int64(clamping: after)), .int(Int64(limit))]
        ).map(Self.message)
    }

    /// Deletes a conversation's messages, keeping its counter at least at their highest seq
    /// (numbering never starts over), then vacuums `messages` so that the dead rows' space is
    /// reclaimed promptly. PostgreSQL has no `secure_delete`: the old rows stay in the WAL and in
    /// backups as long as those are kept, so the erasure that counts is the data key's
    /// (HIPAA organisations' text is sealed under the conversation's key).
    public func purge(_ conversation: ConversationID) async throws -> Int {
        let deleted = try await client.transaction { tx in
            try tx.execute(
                "UPDATE conversations SET last_seq = GREATEST(last_seq, COALESCE((SELECT MAX(seq) FROM messages WHERE conversation = $1), 0)) WHERE id = $1",
                [.text(conversation.rawValue)])
            return try tx.execute("DELETE FROM messages WHERE conversation = $1", [.text(conversation.rawValue)])
        }
        // Outside a transaction; a vacuum that cannot run now (a long reader) is finished by autovacuum.
        _ = try? await client.execute("VACUUM messages")
        return deleted
    }

    public func plainMessages(of conversation: ConversationID, limit: Int) async throws -> [StoredMessage] {
        try await client.query(
            "SELECT * FROM messages WHERE conversation = $1 AND key_id IS NULL ORDER BY seq LIMIT $2",
            [.text(conversation.rawValue), .int(Int64(limit))]
        ).map(Self.message)
    }

    /// Rewrites plain bodies as sealed ones in one commit, then vacuums `messages` so that the
    /// plain rows' space is reclaimed promptly (they remain in the WAL and backups for as long as
    /// those are kept; see ``purge(_:)``).
    public func seal(_ sealed: [(seq: UInt64, body: SealedText)], in conversation: ConversationID) async throws -> Int {
        let updates = sealed.map { (seq: Int64(clamping: $0.seq), keyID: $0.body.keyID, bytes: $0.body.bytes) }
        let replaced = try await client.transaction { tx -> Int in
            var replaced = 0
            for update in updates {
                replaced += try tx.execute(
                    "UPDATE messages SET key_id = $1, body = $2 WHERE conversation = $3 AND seq = $4 AND key_id IS NULL",
                    [.text(update.keyID), .bytea(update.bytes), .text(conversation.rawValue), .int(update.seq)])
            }
            return replaced
        }
        _ = try? await client.execute("VACUUM messages")
        return replaced
    }
}
