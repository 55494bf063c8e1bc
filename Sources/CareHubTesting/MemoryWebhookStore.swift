import CareHubCore
import Foundation
import Synchronization

/// Webhook subscriptions in memory, held to the SQLite store's contract (WebhookStoreContractTests):
/// a change and its audit events both or neither, at most `limit` per organisation. Raised events
/// are kept in ``raised`` (it is a ``WebhookEvents`` too).
public final class MemoryWebhookStore: WebhookStore, WebhookEvents {
    private let rows = Mutex<[Webhook]>([])
    private let events = Mutex<[(webhook: String, event: WebhookEvent)]>([])
    private let audit: RecordingAuditLog

    /// Changes record their events in `audit` (a failing log refuses the change).
    public init(audit: RecordingAuditLog) { self.audit = audit }

    public func create(_ webhook: Webhook, limit: Int, recording events: [AuditEvent]) async throws -> Bool {
        try rows.withLock { rows in
            guard rows.filter({ $0.org == webhook.org }).count < limit else { return false }
            try audit.recordAll(events)
            rows.append(webhook)
            return true
        }
    }

    public func list(org: OrgID) async throws -> [Webhook] {
        rows.withLock { rows in rows.filter { $0.org == org } }
    }

    public func webhook(_ id: String, org: OrgID) async throws -> Webhook? {
        rows.withLock { rows in rows.first { $0.id == id && $0.org == org } }
    }

    public func delete(_ id: String, org: OrgID, recording events: [AuditEvent]) async throws -> Bool {
        try rows.withLock { rows in
            guard let index = rows.firstIndex(where: { $0.id == id && $0.org == org }) else { return false }
            try audit.recordAll(events)
            rows.remove(at: index)
            return true
        }
    }

    public func subscribers(org: OrgID, to kind: WebhookEventKind) async throws -> [Webhook] {
        try await list(org: org).filter { $0.events.contains(kind) }
    }

    public func raise(_ event: WebhookEvent) async throws {
        let targets = try await subscribers(org: event.org, to: event.kind)
        events.withLock { events in events += targets.map { ($0.id, event) } }
    }

    /// The events raised, with the subscription each was queued for, in order.
    public var raised: [(webhook: String, event: WebhookEvent)] { events.withLock { $0 } }
}
