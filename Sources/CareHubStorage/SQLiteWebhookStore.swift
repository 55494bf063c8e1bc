import CareHubCore
import Foundation
import GRDB

/// ``WebhookStore`` on the hub's SQLite database: one row per subscription in `webhooks`, each
/// change committed with its audit events on the same chain as every other. No secret is stored.
public struct SQLiteWebhookStore: WebhookStore {
    private let database: CareHubDatabase
    private let audit: SQLiteAuditLog?

    /// Creates the store; changes append their audit events to `audit`'s chain in the same
    /// transaction (without it, changes are refused).
    public init(database: CareHubDatabase, audit: SQLiteAuditLog? = nil) {
        self.database = database
        self.audit = audit
    }

    public func create(_ webhook: Webhook, limit: Int, recording events: [AuditEvent]) async throws -> Bool {
        guard let audit else { throw StorageError.auditKeyMissing }
        return try await database.pool.write { db in
            let held = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhooks WHERE org = ?", arguments: [webhook.org.rawValue]) ?? 0
            guard held < limit else { return false }
            try db.execute(
                sql: "INSERT INTO webhooks (id, org, integration, url, events, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    webhook.id, webhook.org.rawValue, webhook.integration, webhook.url,
                    webhook.events.map(\.rawValue).joined(separator: ","), webhook.createdAt.timeIntervalSince1970,
                ])
            try audit.append(events, within: db)
            return true
        }
    }

    public func list(org: OrgID) async throws -> [Webhook] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM webhooks WHERE org = ? ORDER BY created_at, id", arguments: [org.rawValue]).map(Self.webhook)
        }
    }

    public func webhook(_ id: String, org: OrgID) async throws -> Webhook? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM webhooks WHERE id = ? AND org = ?", arguments: [id, org.rawValue]).map(Self.webhook)
        }
    }

    public func delete(_ id: String, org: OrgID, recording events: [AuditEvent]) async throws -> Bool {
        guard let audit else { throw StorageError.auditKeyMissing }
        return try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM webhooks WHERE id = ? AND org = ?", arguments: [id, org.rawValue])
            guard db.changesCount == 1 else { return false }
            // What was queued for it goes nowhere now.
            try db.execute(
                sql: "UPDATE webhook_deliveries SET state = 'refused', last_error = 'subscription deleted' WHERE webhook = ? AND state = 'pending'",
                arguments: [id])
            try audit.append(events, within: db)
            return true
        }
    }

    public func subscribers(org: OrgID, to kind: WebhookEventKind) async throws -> [Webhook] {
        try await list(org: org).filter { $0.events.contains(kind) }
    }

    static func webhook(_ row: Row) -> Webhook {
        let events: String = row["events"]
        return Webhook(
            id: row["id"], org: OrgID(row["org"]), integration: row["integration"], url: row["url"],
            events: events.split(separator: ",").compactMap { WebhookEventKind(rawValue: String($0)) },
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }
}
