import CareHubCore
import Foundation
import GRDB

/// The audit trail in SQLite: an append-only table (the hub never updates or deletes its rows).
public struct SQLiteAuditLog: AuditLog {
    private let database: CareHubDatabase

    public init(database: CareHubDatabase) { self.database = database }

    public func record(_ event: AuditEvent) async throws {
        try await database.pool.write { db in try Self.insert(event, db) }
    }

    /// Events of an organisation (or all), oldest first.
    public func events(org: OrgID? = nil, since: Date? = nil, limit: Int = 10_000) throws -> [AuditEvent] {
        try database.pool.read { db in
            var sql = "SELECT * FROM audit_events WHERE 1"
            var arguments: StatementArguments = []
            if let org {
                sql += " AND org = ?"
                arguments += [org.rawValue]
            }
            if let since {
                sql += " AND at >= ?"
                arguments += [since.timeIntervalSince1970]
            }
            sql += " ORDER BY id LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                AuditEvent(
                    at: Date(timeIntervalSince1970: row["at"]), org: OrgID(row["org"]), actor: row["actor"],
                    address: row["address"], action: row["action"], target: row["target"], detail: row["detail"])
            }
        }
    }

    static func insert(_ event: AuditEvent, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO audit_events (at, org, actor, address, action, target, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: [event.at.timeIntervalSince1970, event.org.rawValue, event.actor, event.address, event.action, event.target, event.detail])
    }
}
