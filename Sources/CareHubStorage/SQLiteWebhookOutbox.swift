import CareHubCore
import Foundation
import GRDB

/// The durable queue of webhook events (``WebhookEvents``): one row per event and subscription
/// that asked for it, written in one transaction with the lookup of the subscriptions, and kept
/// until the dispatcher has delivered it, refused it, or given up on it. Rows hold the event's
/// JSON, which carries ids and times only.
public struct SQLiteWebhookOutbox: WebhookEvents {
    /// A queued delivery.
    public struct Item: Sendable, Hashable {
        /// The row id.
        public let id: Int64
        /// The subscription it goes to.
        public let webhook: String
        /// The organisation.
        public let org: OrgID
        /// The body to sign and POST.
        public let body: String
        /// Attempts made so far.
        public let attempts: Int
    }

    private let database: CareHubDatabase

    /// Creates the outbox.
    public init(database: CareHubDatabase) { self.database = database }

    public func raise(_ event: WebhookEvent) async throws {
        let body = event.json
        try await database.pool.write { db in
            let subscribers = try Row.fetchAll(db, sql: "SELECT * FROM webhooks WHERE org = ?", arguments: [event.org.rawValue])
                .map(SQLiteWebhookStore.webhook).filter { $0.events.contains(event.kind) }
            for webhook in subscribers {
                try db.execute(
                    sql: "INSERT INTO webhook_deliveries (webhook, org, body, created_at, next_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [webhook.id, event.org.rawValue, body, event.at.timeIntervalSince1970, event.at.timeIntervalSince1970])
            }
        }
    }

    /// Pending deliveries due at `date`, oldest first, leaving out those of the subscriptions in
    /// `excluding` (ones being sent to now).
    public func due(at date: Date, limit: Int, excluding webhooks: Set<String> = []) async throws -> [Item] {
        try await database.pool.read { db in
            var sql = "SELECT * FROM webhook_deliveries WHERE state = 'pending' AND next_at <= ?"
            var arguments: StatementArguments = [date.timeIntervalSince1970]
            for webhook in webhooks.sorted() {
                sql += " AND webhook <> ?"
                arguments += [webhook]
            }
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql + " ORDER BY id LIMIT ?", arguments: arguments).map(Self.item)
        }
    }

    /// Delivered.
    public func markSent(_ id: Int64, at date: Date) async throws { try await finish(id, state: "sent", error: nil, at: date) }

    /// Never to be sent (the subscription or its integration is gone).
    public func markRefused(_ id: Int64, reason: String, at date: Date) async throws { try await finish(id, state: "refused", error: reason, at: date) }

    /// Given up after too many attempts.
    public func markFailed(_ id: Int64, reason: String, at date: Date) async throws { try await finish(id, state: "failed", error: reason, at: date) }

    /// A failed attempt; try again at `next`.
    public func retry(_ id: Int64, attempts: Int, next: Date, reason: String) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE webhook_deliveries SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
                arguments: [attempts, next.timeIntervalSince1970, reason, id])
        }
    }

    private func finish(_ id: Int64, state: String, error: String?, at date: Date) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE webhook_deliveries SET state = ?, last_error = ?, done_at = ?, attempts = attempts + 1 WHERE id = ?",
                arguments: [state, error, date.timeIntervalSince1970, id])
        }
    }

    /// Pending deliveries, oldest first. Synchronous: for tools and tests.
    public func pending(limit: Int = 100) throws -> [Item] {
        try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM webhook_deliveries WHERE state = 'pending' ORDER BY id LIMIT ?", arguments: [limit]).map(Self.item)
        }
    }

    private static func item(_ row: Row) -> Item {
        Item(id: row["id"], webhook: row["webhook"], org: OrgID(row["org"]), body: row["body"], attempts: row["attempts"])
    }
}
