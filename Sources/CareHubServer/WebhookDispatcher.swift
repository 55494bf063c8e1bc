import CareHubCore
import CareHubStorage
import Foundation
import Logging
import Synchronization

/// Delivers queued webhook events to their subscriptions, signed, with retries.
///
/// Deliveries travel in lanes, one per subscription: a lane sends one event at a time, in the
/// order they were queued, and up to ``concurrency`` lanes send at once in child tasks of the
/// task the dispatcher owns (``start()``/``stop()``). Once a second it takes up to
/// ``batchSize`` due deliveries of lanes that are not sending. A failed send is retried on
/// ``NotificationDispatcher/retryDelay(afterAttempts:)`` and given up after ``attempts`` tries;
/// a delivery whose subscription or integration is gone, or whose integration may no longer
/// receive from the organisation, is refused.
final class WebhookDispatcher: Sendable {
    /// Sends one signed body: the subscription, the integration it belongs to, the headers.
    typealias Send = @Sendable (_ body: String, _ to: Webhook, _ via: Integration, _ headers: [(name: String, value: String)]) async throws -> Void

    /// Attempts before a delivery is given up.
    static let attempts = NotificationDispatcher.attempts
    /// Deliveries taken per round.
    static let batchSize = 50
    /// Lanes sending at once.
    static let concurrency = 4

    private let outbox: SQLiteWebhookOutbox
    private let store: any WebhookStore
    private let signer: WebhookSigner
    private let config: @Sendable () -> HubConfig
    private let send: Send
    private let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let stopping = Mutex(false)
    private let sending = Mutex<Set<String>>([])

    init(
        outbox: SQLiteWebhookOutbox, store: any WebhookStore, signer: WebhookSigner, config: @escaping @Sendable () -> HubConfig, logger: Logger,
        send: @escaping Send
    ) {
        self.outbox = outbox
        self.store = store
        self.signer = signer
        self.config = config
        self.logger = logger
        self.send = send
    }

    /// Starts the once-a-second rounds.
    func start() {
        stopping.withLock { $0 = false }
        task.withLock { task in
            task = Task { [self] in
                await withDiscardingTaskGroup { group in
                    while true {
                        try? await Task.sleep(for: .seconds(1))
                        guard !stopping.withLock({ $0 }) else { break }
                        for lane in await lanesToStart(at: Date()) {
                            group.addTask { [self] in await run(lane) }
                        }
                    }
                }
            }
        }
    }

    /// Stops the rounds and waits for the sends under way (not cancelled, so that a delivery that
    /// went out is marked sent).
    func stop() async {
        stopping.withLock { $0 = true }
        let running = task.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        await running?.value
    }

    private func lanesToStart(at now: Date) async -> [[SQLiteWebhookOutbox.Item]] {
        let busy = sending.withLock { $0 }
        guard busy.count < Self.concurrency, let due = try? await outbox.due(at: now, limit: Self.batchSize, excluding: busy) else { return [] }
        var lanes: [[SQLiteWebhookOutbox.Item]] = []
        var index: [String: Int] = [:]
        for item in due {
            if let position = index[item.webhook] {
                lanes[position].append(item)
            } else {
                index[item.webhook] = lanes.count
                lanes.append([item])
            }
        }
        return sending.withLock { sending in
            let starting = Array(lanes.prefix(max(Self.concurrency - sending.count, 0)))
            for lane in starting { sending.insert(lane[0].webhook) }
            return starting
        }
    }

    private func run(_ lane: [SQLiteWebhookOutbox.Item]) async {
        for item in lane {
            guard !stopping.withLock({ $0 }) else { break }
            await deliver(item)
        }
        _ = sending.withLock { $0.remove(lane[0].webhook) }
    }

    private func deliver(_ item: SQLiteWebhookOutbox.Item) async {
        let now = Date()
        guard let org = config().org(item.org)?.settings else {
            try? await outbox.markRefused(item.id, reason: "organisation no longer configured", at: now)
            return
        }
        guard let webhook = try? await store.webhook(item.webhook, org: item.org) else {
            try? await outbox.markRefused(item.id, reason: "subscription deleted", at: now)
            return
        }
        guard let integration = org.integration(webhook.integration), integration.kind == .api else {
            try? await outbox.markRefused(item.id, reason: "integration '\(webhook.integration)' no longer configured", at: now)
            return
        }
        if let refusal = integration.refusal(for: org) {
            try? await outbox.markRefused(item.id, reason: refusal, at: now)
            return
        }
        do {
            let timestamp = String(Int64(now.timeIntervalSince1970))
            let secret = try signer.secret(for: webhook.id)
            let headers = [
                (name: "CareHub-Webhook-Id", value: webhook.id),
                (name: "CareHub-Timestamp", value: timestamp),
                (name: "CareHub-Signature", value: WebhookSigner.signature(secret: secret, timestamp: timestamp, body: item.body)),
            ]
            try await send(item.body, webhook, integration, headers)
            try? await outbox.markSent(item.id, at: Date())
        } catch {
            let attempts = item.attempts + 1
            let reason = "\(error)"
            if attempts >= Self.attempts {
                try? await outbox.markFailed(item.id, reason: reason, at: Date())
                logger.error("webhook delivery given up", metadata: ["org.id": "\(org.id)", "webhook.id": "\(webhook.id)", "attempts": "\(attempts)"])
            } else {
                try? await outbox.retry(item.id, attempts: attempts, next: Date().addingTimeInterval(NotificationDispatcher.retryDelay(afterAttempts: attempts)), reason: reason)
                logger.warning("webhook delivery failed; will retry", metadata: [
                    "org.id": "\(org.id)", "webhook.id": "\(webhook.id)", "attempts": "\(attempts)", "error": "\(reason)",
                ])
            }
        }
    }
}
