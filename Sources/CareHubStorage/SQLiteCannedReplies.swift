import CareHubCore
import Foundation
import GRDB

/// Canned replies in SQLite, one row per organisation and name. The text is written by admins,
/// not patients, and is stored plain.
public struct SQLiteCannedReplies: CannedReplyStore {
    private let database: CareHubDatabase

    private let audit: SQLiteAuditLog?

    /// Changes append their audit events to `audit`'s chain in the same transaction; without it
    /// only reading works.
    public init(database: CareHubDatabase, audit: SQLiteAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    public func list(org: OrgID) async throws -> [CannedReply] {
        try await database.pool.read { db in
            // SQLite's BINARY collation compares the bytes of the UTF-8 text.
            try Row.fetchAll(db, sql: "SELECT name, text FROM canned_replies WHERE org = ? ORDER BY name", arguments: [org.rawValue]).map { row in
                CannedReply(name: row["name"], text: row["text"])
            }
        }
    }

    public func save(_ reply: CannedReply, org: OrgID, by actor: String, at date: Date, limit: Int, recording event: AuditEvent) async throws -> CannedReplySave {
        guard let audit else { throw StorageError.auditKeyMissing }
        return try await database.pool.write { db in
            let exists = try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM canned_replies WHERE org = ? AND name = ?)", arguments: [org.rawValue, reply.name]) ?? false
            if !exists {
                let held = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM canned_replies WHERE org = ?", arguments: [org.rawValue]) ?? 0
                guard held < limit else { return .full }
            }
            try db.execute(
                sql: """
                    INSERT INTO canned_replies (org, name, text, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (org, name) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at, updated_by = excluded.updated_by
                    """,
                arguments: [org.rawValue, reply.name, reply.text, date.timeIntervalSince1970, actor])
            try audit.append([event], within: db)
            return exists ? .replaced : .created
        }
    }

    public func delete(org: OrgID, name: String, recording event: AuditEvent) async throws -> Bool {
        guard let audit else { throw StorageError.auditKeyMissing }
        return try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM canned_replies WHERE org = ? AND name = ?", arguments: [org.rawValue, name])
            guard db.changesCount == 1 else { return false }
            try audit.append([event], within: db)
            return true
        }
    }

    public func count(org: OrgID) async throws -> Int {
        try await database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM canned_replies WHERE org = ?", arguments: [org.rawValue]) ?? 0
        }
    }
}
