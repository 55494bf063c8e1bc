import CareHubCore
import CareHubPostgres
import Foundation

/// The durable queue of webhook events (``WebhookEvents``) on PostgreSQL, shared by every hub
/// node, with the rows of ``CareHubStorage/SQLiteWebhookOutbox``: one per event and subscription
/// that asked for it, written in one transaction with the lookup of the subscriptions, and kept
/// until a dispatcher has delivered it, refused it, or given up on it. Rows hold the event's JSON,
/// which carries ids and times only.
///
/// Several nodes dispatch from it, claiming rows as ``PostgresOutbox`` does
/// (``claim(at:limit:excluding:lease:)``: `FOR UPDATE SKIP LOCKED`, then a lease on `next_at`), so
/// two nodes never deliver one row at once. Order kept: a claim returns its rows oldest first, so
/// the deliveries of one subscription (a lane) that one claim takes go out in the order they were
/// queued; a node passes the subscriptions it is sending to now as `excluding`. A delivery queued
/// after another node claimed its subscription's earlier ones may be claimed by a second node and
/// arrive before them.
public struct PostgresWebhookOutbox: WebhookEvents {
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

    private let client: PostgresClient

    /// Creates the outbox.
    public init(database: PostgresDatabase) { self.client = database.client }

    /// Queues the event for each of the organisation's subscriptions that asked for its kind. The
    /// subscriptions are read `FOR SHARE`, so a deletion waits for this transaction and then
    /// refuses what it queued.
    public func raise(_ event: WebhookEvent) async throws {
        let body = event.json
        try await client.transaction { tx in
            let subscribers = try tx.query("SELECT * FROM webhooks WHERE org = $1 ORDER BY created_at, id FOR SHARE", [.text(event.org.rawValue)])
                .map(PostgresWebhookStore.webhook).filter { $0.events.contains(event.kind) }
            for webhook in subscribers {
                try tx.execute(
                    "INSERT INTO webhook_deliveries (webhook, org, body, created_at, next_at) VALUES ($1, $2, $3, $4, $5)",
                    [.text(webhook.id), .text(event.org.rawValue), .text(body), .double(event.at.timeIntervalSince1970), .double(event.at.timeIntervalSince1970)])
            }
        }
    }

    /// Pending deliveries due at `date`, oldest first, leaving out those of the subscriptions in
    /// `excluding`. Only looks: a dispatcher takes its work with ``claim(at:limit:excluding:lease:)``.
    public func due(at date: Date, limit: Int, excluding webhooks: Set<String> = []) async throws -> [Item] {
        let (condition, parameters) = Self.dueCondition(at: date, excluding: webhooks)
        return try await client.query(
            "SELECT * FROM webhook_deliveries WHERE \(condition) ORDER BY id LIMIT $\(parameters.count + 1)", parameters + [.int(Int64(limit))]
        ).map(Self.item)
    }

    /// Takes up to `limit` pending deliveries due at `date` for this node, oldest first, leaving
    /// out those of the subscriptions in `excluding` and any row another node holds: each row
    /// taken is due again only at `date + lease` (unless marked before).
    public func claim(
        at date: Date, limit: Int, excluding webhooks: Set<String> = [], lease: TimeInterval = PostgresOutbox.defaultLease
    ) async throws -> [Item] {
        let (condition, parameters) = Self.dueCondition(at: date, excluding: webhooks)
        let rows = try await client.query(
            """
            UPDATE webhook_deliveries SET next_at = $\(parameters.count + 2)
            WHERE id IN (SELECT id FROM webhook_deliveries WHERE \(condition) ORDER BY id LIMIT $\(parameters.count + 1) FOR UPDATE SKIP LOCKED)
            RETURNING *
            """,
            parameters + [.int(Int64(limit)), .double(date.addingTimeInterval(lease).timeIntervalSince1970)])
        return try rows.map(Self.item).sorted { $0.id < $1.id }
    }

    private static func dueCondition(at date: Date, excluding webhooks: Set<String>) -> (String, [PostgresValue]) {
        var sql = "state = 'pending' AND next_at <= $1"
        var parameters: [PostgresValue] = [.double(date.timeIntervalSince1970)]
        for webhook in webhooks.sorted() {
            sql += " AND webhook <> $\(parameters.count + 1)"
            parameters.append(.text(webhook))
        }
        return (sql, parameters)
    }

    /// Delivered.
    public func markSent(_ id: Int64, at date: Date) async throws { try await finish(id, state: "sent", error: nil, at: date) }

    /// Never to be sent (the subscription or its integration is gone).
    public func markRefused(_ id: Int64, reason: String, at date: Date) async throws { try await finish(id, state: "refused", error: reason, at: date) }

    /// Given up after too many attempts.
    public func markFailed(_ id: Int64, reason: String, at date: Date) async throws { try await finish(id, state: "failed", error: reason, at: date) }

    /// A failed attempt; try again at `next` (which also ends this node's claim on it).
    public func retry(_ id: Int64, attempts: Int, next: Date, reason: String) async throws {
        try await client.execute(
            "UPDATE webhook_deliveries SET attempts = $1, next_at = $2, last_error = $3 WHERE id = $4",
            [.int(Int64(attempts)), .double(next.timeIntervalSince1970), .text(reason), .int(id)])
    }

    private func finish(_ id: Int64, state: String, error: String?, at date: Date) async throws {
        try await client.execute(
            "UPDATE webhook_deliveries SET state = $1, last_error = $2, done_at = $3, attempts = attempts + 1 WHERE id = $4",
            [.text(state), error.map { .text($0) } ?? .null, .double(date.timeIntervalSince1970), .int(id)])
    }

    /// Pending deliveries, oldest first, claimed or not (for tools and tests).
    public func pending(limit: Int = 100) async throws -> [Item] {
        try await client.query("SELECT * FROM webhook_deliveries WHERE state = 'pending' ORDER BY id LIMIT $1", [.int(Int64(limit))]).map(Self.item)
    }

    private static func item(_ row: PostgresRow) throws -> Item {
        Item(
            id: try row.int("id"), webhook: try row.string("webhook"), org: OrgID(try row.string("org")), body: try row.string("body"),
            attempts: Int(try row.int("attempts")))
    }
}
