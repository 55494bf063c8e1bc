import Foundation

/// The port through which the hub keeps webhook subscriptions, each change audited in the same
/// commit as the change. No secret is stored: the hub derives it from the subscription's id.
///
/// Implementations must guarantee:
/// - ``create(_:limit:recording:)`` stores the subscription and its audit events together, or
///   neither, and stores nothing (returning false) when the organisation already holds `limit`;
/// - ``delete(_:org:recording:)`` removes only a subscription of `org`, with its audit events,
///   and returns false (recording nothing) when there is none;
/// - ``subscribers(org:to:)`` returns only subscriptions of `org` that asked for `kind`.
///
/// ```swift
/// guard try await webhooks.create(hook, limit: Webhook.limitPerOrg, recording: [created]) else { … }
/// let targets = try await webhooks.subscribers(org: org, to: .messageCreated)
/// ```
public protocol WebhookStore: Sendable {
    /// Stores a new subscription unless the organisation holds `limit` already.
    func create(_ webhook: Webhook, limit: Int, recording events: [AuditEvent]) async throws -> Bool
    /// The organisation's subscriptions, oldest first.
    func list(org: OrgID) async throws -> [Webhook]
    /// The subscription `id` of `org`, or nil.
    func webhook(_ id: String, org: OrgID) async throws -> Webhook?
    /// Removes the subscription `id` of `org`.
    func delete(_ id: String, org: OrgID, recording events: [AuditEvent]) async throws -> Bool
    /// The organisation's subscriptions that asked for `kind`.
    func subscribers(org: OrgID, to kind: WebhookEventKind) async throws -> [Webhook]
}

/// The port through which the fan-out stage raises webhook events.
///
/// Implementations must keep each event durably, once per subscription that asked for it, until
/// it is delivered or given up; an event no subscription asked for is dropped.
public protocol WebhookEvents: Sendable {
    /// Queues `event` for the organisation's subscriptions to it.
    func raise(_ event: WebhookEvent) async throws
}

/// No webhooks: events are dropped (the default of ``StageEnvironment``).
public struct NoWebhookEvents: WebhookEvents {
    /// Creates it.
    public init() {}
    public func raise(_ event: WebhookEvent) async throws {}
}
