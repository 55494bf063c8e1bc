import CareHubCore
import CareHubPostgres
import Foundation

/// Canned replies in PostgreSQL, one row per organisation and name, as `SQLiteCannedReplies`
/// keeps them. The text is written by admins, not patients, and is stored plain.
///
/// SQLite runs one writer at a time, so its count-then-insert never overshoots the limit; here
/// a save first takes a transaction-level advisory lock on the organisation's replies, so that
/// two nodes saving new names at once take turns and the second counts the first's row.
public struct PostgresCannedReplies: CannedReplyStore {
    private let database: PostgresDatabase

    private let audit: PostgresAuditLog?

    /// Changes append their audit events to `audit`'s chain in the same transaction; without it
    /// only reading works.
    public init(database: PostgresDatabase, audit: PostgresAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    public func list(org: OrgID) async throws -> [CannedReply] {
        // COLLATE "C" on the column: byte order of the UTF-8 text, as SQLite's BINARY collation.
        try await database.client.query("SELECT name, text FROM canned_replies WHERE org = $1 ORDER BY name", [.text(org.rawValue)]).map { row in
            CannedReply(name: try row.string("name"), text: try row.string("text"))
        }
    }

    public func save(_ reply: CannedReply, org: OrgID, by actor: String, at date: Date, limit: Int, recording event: AuditEvent) async throws -> CannedReplySave {
        guard let audit else { throw PostgresStorageError.auditKeyMissing }
        return try await database.client.transaction { tx in
            // Held until the transaction ends; the statements after it see what the previous
            // holder committed (each takes a new snapshot under READ COMMITTED).
            try tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [.text("canned_replies:" + org.rawValue)])
            let exists = try tx.query(
                "SELECT EXISTS (SELECT 1 FROM canned_replies WHERE org = $1 AND name = $2) AS found", [.text(org.rawValue), .text(reply.name)]
            ).first?.bool("found") ?? false
            if !exists {
                let held = try tx.query("SELECT COUNT(*) AS n FROM canned_replies WHERE org = $1", [.text(org.rawValue)]).first?.int("n") ?? 0
                guard held < limit else { return .full }
            }
            try tx.execute(
                """
                INSERT INTO canned_replies (org, name, text, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (org, name) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at, updated_by = excluded.updated_by
                """,
                [.text(org.rawValue), .text(reply.name), .text(reply.text), .double(date.timeIntervalSince1970), .text(actor)])
            try audit.append([event], in: tx)
            return exists ? .replaced : .created
        }
    }

    public func delete(org: OrgID, name: String, recording event: AuditEvent) async throws -> Bool {
        guard let audit else { throw PostgresStorageError.auditKeyMissing }
        return try await database.client.transaction { tx in
            guard try tx.execute("DELETE FROM canned_replies WHERE org = $1 AND name = $2", [.text(org.rawValue), .text(name)]) == 1 else { return false }
            try audit.append([event], in: tx)
            return true
        }
    }

    public func count(org: OrgID) async throws -> Int {
        Int(try await database.client.query("SELECT COUNT(*) AS n FROM canned_replies WHERE org = $1", [.text(org.rawValue)]).first?.int("n") ?? 0)
    }
}
