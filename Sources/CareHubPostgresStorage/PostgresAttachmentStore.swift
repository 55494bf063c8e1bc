import CareHubCore
import CareHubPostgres
import Foundation

/// ``AttachmentStore`` on PostgreSQL, beside the messages that carry the files, with the rows of
/// ``CareHubStorage/SQLiteAttachmentStore``: a record in `attachments` (the name stored as message
/// bodies are: plain, or sealed with its key id) and the bytes in `attachment_chunks`, one row per
/// 64 KiB chunk.
///
/// ``begin(_:)`` and each ``appendChunk(_:index:_:)`` are short transactions of their own, so a
/// slow upload never holds a connection; an append locks the attachment's row, so two appends to
/// one file (from any node) take turns and chunks are taken in order only.
/// ``finish(_:state:size:contentType:message:recording:)`` writes the record's new state, the
/// message row (``PostgresMessageStore/insert(_:_:)``) and the audit events (the same chain,
/// through ``PostgresAuditLog/append(_:in:)``, last) in one transaction.
///
/// Erasing deletes the rows, then vacuums both tables (outside a transaction) so that their space
/// is reclaimed promptly. PostgreSQL has no `secure_delete`: the old rows stay in the WAL and in
/// backups as long as those are kept, so the erasure that counts is the data key's (a HIPAA
/// organisation's names and chunks are sealed under the conversation's key); see
/// ``PostgresMessageStore/purge(_:)``.
public struct PostgresAttachmentStore: AttachmentStore {
    private let client: PostgresClient
    private let audit: PostgresAuditLog?

    /// Creates the store; ``finish(_:state:size:contentType:message:recording:)`` appends its
    /// events to `audit`'s chain in the same transaction (without it, finishing with events is refused).
    public init(database: PostgresDatabase, audit: PostgresAuditLog? = nil) {
        self.client = database.client
        self.audit = audit
    }

    public func begin(_ attachment: Attachment) async throws {
        if case .unreadable = attachment.name { throw PostgresStorageError.attachment("an unreadable name cannot be stored") }
        guard attachment.state == .receiving else { throw PostgresStorageError.attachment("an attachment begins as receiving") }
        let name = Self.stored(attachment.name)
        try await client.execute(
            """
            INSERT INTO attachments (id, org, conversation, sender, name_key_id, name, content_type, size, state, at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 'receiving', $8)
            """,
            [
                .text(attachment.id.rawValue), .text(attachment.org.rawValue), .text(attachment.conversation.rawValue), .text(attachment.sender),
                name.keyID.map { .text($0) } ?? .null, .bytea(name.bytes), .text(attachment.contentType), .double(attachment.at.timeIntervalSince1970),
            ])
    }

    public func appendChunk(_ id: AttachmentID, index: Int, _ chunk: AttachmentChunk) async throws {
        let (keyID, bytes) = Self.stored(chunk)
        try await client.transaction { tx in
            guard try Self.state(of: id, tx, locking: true) == .receiving else { throw PostgresStorageError.attachment("\(id) is not being received") }
            let next = try Self.chunkCount(of: id, tx)
            guard index == next else { throw PostgresStorageError.attachment("\(id) expects chunk \(next), not \(index)") }
            try tx.execute(
                "INSERT INTO attachment_chunks (attachment, idx, key_id, bytes) VALUES ($1, $2, $3, $4)",
                [.text(id.rawValue), .int(Int64(index)), keyID.map { .text($0) } ?? .null, .bytea(bytes)])
        }
    }

    public func finish(
        _ id: AttachmentID, state: AttachmentState, size: Int, contentType: String,
        message: StoredMessage, recording events: [AuditEvent]
    ) async throws {
        guard state != .receiving else { throw PostgresStorageError.attachment("an attachment finishes held or ready") }
        guard message.attachment == id else { throw PostgresStorageError.attachment("the message does not carry \(id)") }
        if !events.isEmpty && audit == nil { throw PostgresStorageError.auditKeyMissing }
        try await client.transaction { [audit] tx in
            guard let row = try tx.query("SELECT conversation, state FROM attachments WHERE id = $1 FOR UPDATE", [.text(id.rawValue)]).first
            else { throw PostgresStorageError.attachment("\(id) is not stored") }
            guard try row.string("state") == AttachmentState.receiving.rawValue else { throw PostgresStorageError.attachment("\(id) is finished already") }
            guard try row.string("conversation") == message.conversation.rawValue else {
                throw PostgresStorageError.attachment("\(id) belongs to another conversation")
            }
            let chunks = try Self.chunkCount(of: id, tx)
            guard chunks == Attachment.chunkCount(forSize: size) else {
                throw PostgresStorageError.attachment("\(id) has \(chunks) chunks, \(size) bytes take \(Attachment.chunkCount(forSize: size))")
            }
            try tx.execute(
                "UPDATE attachments SET state = $1, size = $2, content_type = $3, seq = $4 WHERE id = $5",
                [.text(state.rawValue), .int(Int64(size)), .text(contentType), .int(Int64(clamping: message.seq)), .text(id.rawValue)])
            try PostgresMessageStore.insert([message], tx)
            try audit?.append(events, in: tx)
        }
    }

    public func discard(_ id: AttachmentID) async throws {
        _ = try await erase(where: "id = $1", id.rawValue)
    }

    public func attachment(_ id: AttachmentID) async throws -> Attachment? {
        try await client.query("SELECT * FROM attachments WHERE id = $1", [.text(id.rawValue)]).first.map(Self.attachment)
    }

    public func chunk(_ id: AttachmentID, index: Int) async throws -> AttachmentChunk? {
        guard let row = try await client.query(
            """
            SELECT c.key_id, c.bytes FROM attachment_chunks c JOIN attachments a ON a.id = c.attachment
            WHERE c.attachment = $1 AND c.idx = $2 AND a.state IN ('held', 'ready')
            """,
            [.text(id.rawValue), .int(Int64(index))]
        ).first else { return nil }
        let bytes = try row.bytes("bytes")
        return try row.isNull("key_id") ? .plain(bytes) : .sealed(SealedText(keyID: try row.string("key_id"), bytes: bytes))
    }

    public func setState(_ id: AttachmentID, _ state: AttachmentState) async throws {
        guard state != .receiving else { throw PostgresStorageError.attachment("a stored attachment cannot be receiving again") }
        let changed = try await client.execute(
            "UPDATE attachments SET state = $1 WHERE id = $2 AND state IN ('held', 'ready')", [.text(state.rawValue), .text(id.rawValue)])
        guard changed == 1 else { throw PostgresStorageError.attachment("\(id) is not a stored attachment") }
    }

    public func held(org: OrgID, limit: Int) async throws -> [Attachment] {
        try await client.query(
            "SELECT * FROM attachments WHERE org = $1 AND state = 'held' ORDER BY at, rowid LIMIT $2", [.text(org.rawValue), .int(Int64(limit))]
        ).map(Self.attachment)
    }

    public func attachments(of conversation: ConversationID) async throws -> [Attachment] {
        try await client.query("SELECT * FROM attachments WHERE conversation = $1 ORDER BY at, rowid", [.text(conversation.rawValue)])
            .map(Self.attachment)
    }

    public func purge(_ conversation: ConversationID) async throws -> Int {
        try await erase(where: "conversation = $1", conversation.rawValue)
    }

    public func abandoned(before date: Date, limit: Int) async throws -> [AttachmentID] {
        try await client.query(
            "SELECT id FROM attachments WHERE state = 'receiving' AND at < $1 ORDER BY at, rowid LIMIT $2",
            [.double(date.timeIntervalSince1970), .int(Int64(limit))]
        ).map { AttachmentID(try $0.string("id")) }
    }

    public func plainAttachments(of conversation: ConversationID) async throws -> [Attachment] {
        try await client.query(
            """
            SELECT * FROM attachments a WHERE a.conversation = $1 AND a.state IN ('held', 'ready')
            AND (a.name_key_id IS NULL OR EXISTS (SELECT 1 FROM attachment_chunks c WHERE c.attachment = a.id AND c.key_id IS NULL))
            ORDER BY a.at, a.rowid
            """,
            [.text(conversation.rawValue)]
        ).map(Self.attachment)
    }

    /// Seals the name in place (a sealed name is kept), then vacuums the table so that the plain
    /// row's space is reclaimed promptly.
    public func sealName(_ id: AttachmentID, _ name: SealedText) async throws {
        try await client.transaction { tx in
            guard let state = try Self.state(of: id, tx, locking: true), state != .receiving else {
                throw PostgresStorageError.attachment("\(id) is not a stored attachment")
            }
            try tx.execute(
                "UPDATE attachments SET name_key_id = $1, name = $2 WHERE id = $3 AND name_key_id IS NULL",
                [.text(name.keyID), .bytea(name.bytes), .text(id.rawValue)])
        }
        _ = try? await client.execute("VACUUM attachments")
    }

    /// Seals the chunks given in place (a sealed chunk is kept), in one commit, then vacuums.
    public func sealChunks(_ id: AttachmentID, _ chunks: [(index: Int, sealed: SealedText)]) async throws {
        let updates = chunks.map { (index: Int64($0.index), keyID: $0.sealed.keyID, bytes: $0.sealed.bytes) }
        try await client.transaction { tx in
            guard let state = try Self.state(of: id, tx, locking: true), state != .receiving else {
                throw PostgresStorageError.attachment("\(id) is not a stored attachment")
            }
            for update in updates {
                try tx.execute(
                    "UPDATE attachment_chunks SET key_id = $1, bytes = $2 WHERE attachment = $3 AND idx = $4 AND key_id IS NULL",
                    [.text(update.keyID), .bytea(update.bytes), .text(id.rawValue), .int(update.index)])
            }
        }
        _ = try? await client.execute("VACUUM attachment_chunks")
    }

    /// Deletes the attachments `condition` selects with their chunks, in one transaction, then
    /// vacuums both tables (a vacuum that cannot run now is finished by autovacuum).
    private func erase(where condition: String, _ argument: String) async throws -> Int {
        let erased = try await client.transaction { tx -> Int in
            try tx.execute(
                "DELETE FROM attachment_chunks WHERE attachment IN (SELECT id FROM attachments WHERE \(condition))", [.text(argument)])
            return try tx.execute("DELETE FROM attachments WHERE \(condition)", [.text(argument)])
        }
        guard erased > 0 else { return 0 }
        _ = try? await client.execute("VACUUM attachments, attachment_chunks")
        return erased
    }

    private static func state(of id: AttachmentID, _ tx: PostgresTransaction, locking: Bool) throws -> AttachmentState? {
        try tx.query("SELECT state FROM attachments WHERE id = $1" + (locking ? " FOR UPDATE" : ""), [.text(id.rawValue)]).first
            .flatMap { AttachmentState(rawValue: try $0.string("state")) }
    }

    private static func chunkCount(of id: AttachmentID, _ tx: PostgresTransaction) throws -> Int {
        Int(try tx.query("SELECT COUNT(*) AS n FROM attachment_chunks WHERE attachment = $1", [.text(id.rawValue)]).first?.int("n") ?? 0)
    }

    private static func stored(_ name: MessageBody) -> (keyID: String?, bytes: [UInt8]) {
        switch name {
        case .plain(let text): return (nil, Array(text.utf8))
        case .sealed(let sealed): return (sealed.keyID, sealed.bytes)
        case .unreadable: return (nil, [])
        }
    }

    private static func stored(_ chunk: AttachmentChunk) -> (keyID: String?, bytes: [UInt8]) {
        switch chunk {
        case .plain(let bytes): return (nil, bytes)
        case .sealed(let sealed): return (sealed.keyID, sealed.bytes)
        }
    }

    private static func attachment(_ row: PostgresRow) throws -> Attachment {
        let bytes = try row.bytes("name")
        let name: MessageBody = try row.isNull("name_key_id")
            ? .plain(String(decoding: bytes, as: UTF8.self))
            : .sealed(SealedText(keyID: try row.string("name_key_id"), bytes: bytes))
        return Attachment(
            id: AttachmentID(try row.string("id")), org: OrgID(try row.string("org")), conversation: ConversationID(try row.string("conversation")),
            sender: try row.string("sender"), name: name, contentType: try row.string("content_type"), size: Int(try row.int("size")),
            state: AttachmentState(rawValue: try row.string("state")) ?? .held, at: Date(timeIntervalSince1970: try row.double("at")),
            seq: try row.isNull("seq") ? nil : UInt64(try row.int("seq")))
    }
}
