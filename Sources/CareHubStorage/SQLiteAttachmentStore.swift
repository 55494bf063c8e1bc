import CareHubCore
import Foundation
import GRDB

/// ``AttachmentStore`` on the hub's SQLite database, beside the messages that carry the files.
///
/// A record in `attachments` (the name stored as message bodies are: plain, or sealed with its key
/// id) and the bytes in `attachment_chunks`, one row per 64 KiB chunk. ``begin(_:)`` and each
/// ``appendChunk(_:index:_:)`` are short transactions of their own, so that a slow upload never
/// holds the writer; ``finish(_:state:size:contentType:message:recording:)`` writes the record's
/// new state, the message row (the same insert as ``SQLiteMessageStore``'s group commit) and the
/// audit events (the same chain, so `carehub audit verify` covers them) in one transaction.
/// Erasing relies on `secure_delete` (freed cells and pages are zeroed) and then truncates the
/// WAL, which still holds the old page images, as a message purge does.
///
/// The files live in the database rather than in files of their own: one commit then covers a
/// file, its message and its delivery record; a purge, a backup and the data directory's
/// permissions treat them like the text; and no second place can keep a copy the purge misses.
public struct SQLiteAttachmentStore: AttachmentStore {
    private let database: CareHubDatabase
    private let audit: SQLiteAuditLog?

    /// Creates the store; ``finish(_:state:size:contentType:message:recording:)`` appends its
    /// events to `audit`'s chain in the same transaction (without it, finishing with events is refused).
    public init(database: CareHubDatabase, audit: SQLiteAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    public func begin(_ attachment: Attachment) async throws {
        if case .unreadable = attachment.name { throw StorageError.attachment("an unreadable name cannot be stored") }
        guard attachment.state == .receiving else { throw StorageError.attachment("an attachment begins as receiving") }
        let name = Self.stored(attachment.name)
        try await database.pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO attachments (id, org, conversation, sender, name_key_id, name, content_type, size, state, at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'receiving', ?)
                    """,
                arguments: [
                    attachment.id.rawValue, attachment.org.rawValue, attachment.conversation.rawValue, attachment.sender,
                    name.keyID, Data(name.bytes), attachment.contentType, attachment.at.timeIntervalSince1970,
                ])
        }
        database.committed()
    }

    public func appendChunk(_ id: AttachmentID, index: Int, _ chunk: AttachmentChunk) async throws {
        let (keyID, bytes) = Self.stored(chunk)
        try await database.pool.write { db in
            guard try Self.state(of: id, db) == .receiving else { throw StorageError.attachment("\(id) is not being received") }
            let next = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attachment_chunks WHERE attachment = ?", arguments: [id.rawValue]) ?? 0
            guard index == next else { throw StorageError.attachment("\(id) expects chunk \(next), not \(index)") }
            try db.execute(
                sql: "INSERT INTO attachment_chunks (attachment, idx, key_id, bytes) VALUES (?, ?, ?, ?)",
                arguments: [id.rawValue, index, keyID, Data(bytes)])
        }
        database.committed()
    }

    public func finish(
        _ id: AttachmentID, state: AttachmentState, size: Int, contentType: String,
        message: StoredMessage, recording events: [AuditEvent]
    ) async throws {
        guard state != .receiving else { throw StorageError.attachment("an attachment finishes held or ready") }
        guard message.attachment == id else { throw StorageError.attachment("the message does not carry \(id)") }
        if !events.isEmpty && audit == nil { throw StorageError.auditKeyMissing }
        try await database.pool.write { [audit] db in
            guard let row = try Row.fetchOne(
                db, sql: "SELECT conversation, state FROM attachments WHERE id = ?", arguments: [id.rawValue])
            else { throw StorageError.attachment("\(id) is not stored") }
            guard row["state"] as String == AttachmentState.receiving.rawValue else { throw StorageError.attachment("\(id) is finished already") }
            guard row["conversation"] as String == message.conversation.rawValue else {
                throw StorageError.attachment("\(id) belongs to another conversation")
            }
            let chunks = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attachment_chunks WHERE attachment = ?", arguments: [id.rawValue]) ?? 0
            guard chunks == Attachment.chunkCount(forSize: size) else {
                throw StorageError.attachment("\(id) has \(chunks) chunks, \(size) bytes take \(Attachment.chunkCount(forSize: size))")
            }
            try db.execute(
                sql: "UPDATE attachments SET state = ?, size = ?, content_type = ?, seq = ? WHERE id = ?",
                arguments: [state.rawValue, size, contentType, Int64(message.seq), id.rawValue])
            try SQLiteMessageStore.insert(message, db)
            try audit?.append(events, within: db)
        }
        database.committed()
    }

    public func discard(_ id: AttachmentID) async throws {
        try await erase(where: "id = ?", id.rawValue)
    }

    public func attachment(_ id: AttachmentID) async throws -> Attachment? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM attachments WHERE id = ?", arguments: [id.rawValue]).map(Self.attachment)
        }
    }

    public func chunk(_ id: AttachmentID, index: Int) async throws -> AttachmentChunk? {
        try await database.pool.read { db in
            guard let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT c.key_id, c.bytes FROM attachment_chunks c JOIN attachments a ON a.id = c.attachment
                    WHERE c.attachment = ? AND c.idx = ? AND a.state IN ('held', 'ready')
                    """,
                arguments: [id.rawValue, index])
            else { return nil }
            let keyID: String? = row["key_id"]
            let bytes = Array(row["bytes"] as Data)
            return keyID.map { .sealed(SealedText(keyID: $0, bytes: bytes)) } ?? .plain(bytes)
        }
    }

    public func setState(_ id: AttachmentID, _ state: AttachmentState) async throws {
        guard state != .receiving else { throw StorageError.attachment("a stored attachment cannot be receiving again") }
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE attachments SET state = ? WHERE id = ? AND state IN ('held', 'ready')", arguments: [state.rawValue, id.rawValue])
            guard db.changesCount == 1 else { throw StorageError.attachment("\(id) is not a stored attachment") }
        }
        database.committed()
    }

    public func held(org: OrgID, limit: Int) async throws -> [Attachment] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM attachments WHERE org = ? AND state = 'held' ORDER BY at, rowid LIMIT ?",
                arguments: [org.rawValue, limit]
            ).map(Self.attachment)
        }
    }

    public func attachments(of conversation: ConversationID) async throws -> [Attachment] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM attachments WHERE conversation = ? ORDER BY at, rowid", arguments: [conversation.rawValue]
            ).map(Self.attachment)
        }
    }

    public func purge(_ conversation: ConversationID) async throws -> Int {
        try await erase(where: "conversation = ?", conversation.rawValue)
    }

    public func abandoned(before date: Date, limit: Int) async throws -> [AttachmentID] {
        try await database.pool.read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM attachments WHERE state = 'receiving' AND at < ? ORDER BY at, rowid LIMIT ?",
                arguments: [date.timeIntervalSince1970, limit]
            ).map(AttachmentID.init)
        }
    }

    public func plainAttachments(of conversation: ConversationID) async throws -> [Attachment] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM attachments a WHERE a.conversation = ? AND a.state IN ('held', 'ready')
                    AND (a.name_key_id IS NULL OR EXISTS (SELECT 1 FROM attachment_chunks c WHERE c.attachment = a.id AND c.key_id IS NULL))
                    ORDER BY a.at, a.rowid
                    """,
                arguments: [conversation.rawValue]
            ).map(Self.attachment)
        }
    }

    public func sealName(_ id: AttachmentID, _ name: SealedText) async throws {
        try await database.pool.write { db in
            guard let state = try Self.state(of: id, db), state != .receiving else { throw StorageError.attachment("\(id) is not a stored attachment") }
            try db.execute(
                sql: "UPDATE attachments SET name_key_id = ?, name = ? WHERE id = ? AND name_key_id IS NULL",
                arguments: [name.keyID, Data(name.bytes), id.rawValue])
        }
        database.committed()
        try await database.truncateLog()
    }

    /// For both: `secure_delete` zeroes the cells the plain bytes leave, and a truncating
    /// checkpoint moves the new pages into the file and empties the WAL that still held the old ones.
    public func sealChunks(_ id: AttachmentID, _ chunks: [(index: Int, sealed: SealedText)]) async throws {
        try await database.pool.write { db in
            guard let state = try Self.state(of: id, db), state != .receiving else { throw StorageError.attachment("\(id) is not a stored attachment") }
            for (index, sealed) in chunks {
                try db.execute(
                    sql: "UPDATE attachment_chunks SET key_id = ?, bytes = ? WHERE attachment = ? AND idx = ? AND key_id IS NULL",
                    arguments: [sealed.keyID, Data(sealed.bytes), id.rawValue, index])
            }
        }
        database.committed()
        try await database.truncateLog()
    }

    /// Deletes the attachments `condition` selects with their chunks, then empties the WAL that
    /// still holds the deleted pages. `secure_delete` zeroes what the rows leave in the file.
    private func erase(where condition: String, _ argument: String) async throws -> Int {
        let erased = try await database.pool.write { db -> Int in
            try db.execute(
                sql: "DELETE FROM attachment_chunks WHERE attachment IN (SELECT id FROM attachments WHERE \(condition))", arguments: [argument])
            try db.execute(sql: "DELETE FROM attachments WHERE \(condition)", arguments: [argument])
            return db.changesCount
        }
        guard erased > 0 else { return 0 }
        // Readers may hold the log for a moment: retried; a later checkpoint finishes the job otherwise.
        try? await database.truncateLog()
        return erased
    }

    private static func state(of id: AttachmentID, _ db: Database) throws -> AttachmentState? {
        try String.fetchOne(db, sql: "SELECT state FROM attachments WHERE id = ?", arguments: [id.rawValue]).flatMap(AttachmentState.init)
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

    private static func attachment(_ row: Row) -> Attachment {
        let seq: Int64? = row["seq"]
        return Attachment(
            id: AttachmentID(row["id"]), org: OrgID(row["org"]), conversation: ConversationID(row["conversation"]), sender: row["sender"],
            name: SQLiteMessageStore.body(keyID: row["name_key_id"], bytes: row["name"]),
            contentType: row["content_type"], size: row["size"], state: AttachmentState(rawValue: row["state"]) ?? .held,
            at: Date(timeIntervalSince1970: row["at"]), seq: seq.map(UInt64.init))
    }
}
