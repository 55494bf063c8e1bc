import CareHubCore
import CareHubPostgres
import Foundation

/// ``WebhookStore`` on PostgreSQL, shared by every hub node, with the rows of
/// ``CareHubStorage/SQLiteWebhookStore``: one per subscription in `webhooks`, each change
/// committed with its audit events (``PostgresAuditLog/append(_:in:)``) in one transaction. No
/// secret is stored.
///
/// A creation first takes a transaction-scoped advisory lock on the organisation, so that two
/// nodes creating at once count one after the other and an organisation never holds more than
/// the limit.
public struct PostgresWebhookStore: WebhookStore {
    private let client: PostgresClient
    private let audit: PostgresAuditLog?

    /// Creates the store; changes append their audit events to `audit`'s chain in the same
    /// transaction (without it, changes are refused).
    public init(database: PostgresDatabase, audit: PostgresAuditLog? = nil) {
        self.client = database.client
        self.audit = audit
    }

    public func create(_ webhook: Webhook, limit: Int, recording events: [AuditEvent]) async throws -> Bool {
        guard let audit else { throw PostgresStorageError.auditKeyMissing }
        return try await client.transaction { tx in
            try tx.execute("SELECT pg_advisory_xact_lock(hashtext('webhooks'), hashtext($1))", [.text(webhook.org.rawValue)])
            let held = try tx.query("SELECT COUNT(*) AS n FROM webhooks WHERE org = $1", [.text(webhook.org.rawValue)]).first?.int("n") ?? 0
            guard held < limit else { return false }
            try tx.execute(
                "INSERT INTO webhooks (id, org, integration, url, events, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    .text(webhook.id), .text(webhook.org.rawValue), .text(webhook.integration), .text(webhook.url),
                    .text(webhook.events.map(\.rawValue).joined(separator: ",")), .double(webhook.createdAt.timeIntervalSince1970),
                ])
            try audit.append(events, in: tx)
            return true
        }
    }

    public func list(org: OrgID) async throws -> [Webhook] {
        try await client.query("SELECT * FROM webhooks WHERE org = $1 ORDER BY created_at, id", [.text(org.rawValue)]).map(Self.webhook)
    }

    public func webhook(_ id: String, org: OrgID) async throws -> Webhook? {
        try await client.query("SELECT * FROM webhooks WHERE id = $1 AND org = $2", [.text(id), .text(org.rawValue)]).first.map(Self.webhook)
    }

    /// Deletes the subscription and refuses what was queued for it, in one transaction. An event
    /// being raised for it at the same moment holds its row (``PostgresWebhookOutbox/raise(_:)``
    /// reads subscriptions `FOR SHARE`), so its deliveries are in before they are refused.
    public func delete(_ id: String, org: OrgID, recording events: [AuditEvent]) async throws -> Bool {
        guard let audit else { throw PostgresStorageError.auditKeyMissing }
        return try await client.transaction { tx in
            guard try tx.execute("DELETE FROM webhooks WHERE id = $1 AND org = $2", [.text(id), .text(org.rawValue)]) == 1 else { return false }
            // What was queued for it goes nowhere now.
            try tx.execute(
                "UPDATE webhook_deliveries SET state = 'refused', last_error = 'subscription deleted' WHERE webhook = $1 AND state = 'pending'",
                [.text(id)])
            try audit.append(events, in: tx)
            return true
        }
    }

    public func subscribers(org: OrgID, to kind: WebhookEventKind) async throws -> [Webhook] {
        try await list(org: org).filter { $0.events.contains(kind) }
    }

    static func webhook(_ row: PostgresRow) throws -> Webhook {
        Webhook(
            id: try row.string("id"), org: OrgID(try row.string("org")), integration: try row.string("integration"), url: try row.string("url"),
            events: try row.string("events").split(separator: ",").compactMap { WebhookEventKind(rawValue: String($0)) },
            createdAt: Date(timeIntervalSince1970: try row.double("created_at")))
    }
}
