import CareHubCore
import CareHubStorage
import Foundation
import Logging
import Synchronization

/// Sends due notifications from the durable outbox, each rendered when it goes out under the
/// organisation's settings in force then, to integrations that may receive them then.
///
/// It runs in a task it owns (``start()``/``stop()``): once a second it takes up to
/// ``batchSize`` due items and sends them, in order for each integration and at most
/// ``concurrency`` integrations at a time. A failed send is retried on
/// ``retryDelay(afterAttempts:)`` and given up after ``attempts`` tries.
final class NotificationDispatcher: Sendable {
    /// Sends one rendered notification through an integration.
    typealias Send = @Sendable (NotificationTemplate.Rendered, Integration) async throws -> Void

    /// Attempts before a notification is given up (about 4 hours of back-off).
    static let attempts = 20
    /// Items taken from the outbox per round.
    static let batchSize = 50
    /// Integrations served at once. One for now: two webhook clients with different CA files
    /// opening their first TLS connections at the same moment make the first one fail (a
    /// libwebsockets client or OpenSSL problem not found yet), which reorders an integration's
    /// notices through its retry. Raise it once that is fixed.
    static let concurrency = 1

    private let outbox: SQLiteOutbox
    private let config: @Sendable () -> HubConfig
    private let publicURL: String?
    private let send: Send
    private let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(outbox: SQLiteOutbox, config: @escaping @Sendable () -> HubConfig, publicURL: String?, logger: Logger, send: @escaping Send) {
        self.outbox = outbox
        self.config = config
        self.publicURL = publicURL
        self.logger = logger
        self.send = send
    }

    /// How long to wait before the next attempt after `attempts` failures: 5 s doubling, at most 15 min.
    static func retryDelay(afterAttempts attempts: Int) -> TimeInterval {
        min(5 * pow(2, Double(max(attempts, 1) - 1)), 15 * 60)
    }

    /// Starts the once-a-second rounds.
    func start() {
        task.withLock { task in
            task = Task { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    guard !Task.isCancelled else { break }
                    await dispatch(at: Date())
                }
            }
        }
    }

    /// Stops the rounds and waits for the one under way: nothing is sent after it returns.
    func stop() async {
        let running = task.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            task?.cancel()
            return task
        }
        await running?.value
    }

    /// One round: every due item. Each organisation's integration gets its items one after the
    /// other, in the order they were queued (a pager sees "1 unread" before "2 unread"); up to
    /// ``concurrency`` integrations are served at once.
    func dispatch(at now: Date) async {
        guard let due = try? await outbox.due(at: now, limit: Self.batchSize) else { return }
        var lanes: [[SQLiteOutbox.Item]] = []
        var lane: [String: Int] = [:]
        for item in due {
            let key = "\(item.notification.org.rawValue)|\(item.integration)"
            if let index = lane[key] {
                lanes[index].append(item)
            } else {
                lane[key] = lanes.count
                lanes.append([item])
            }
        }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for items in lanes {
                if running == Self.concurrency {
                    await group.next()
                    running -= 1
                }
                group.addTask { [self] in
                    for item in items { await deliver(item, at: now) }
                }
                running += 1
            }
        }
    }

    private func deliver(_ item: SQLiteOutbox.Item, at now: Date) async {
        let notification = item.notification
        guard let org = config().org(notification.org)?.settings else {
            try? await outbox.markRefused(item.id, reason: "organisation no longer configured", at: now)
            return
        }
        guard let integration = org.integration(item.integration) else {
            try? await outbox.markRefused(item.id, reason: "integration '\(item.integration)' no longer configured", at: now)
            return
        }
        if let refusal = integration.refusal(for: org) {
            try? await outbox.markRefused(item.id, reason: refusal, at: now)
            logger.warning("notification refused", metadata: ["org.id": "\(org.id)", "integration": "\(integration.name)", "reason": "\(refusal)"])
            return
        }
        let link = (publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? "") + "/staff.html#room=\(notification.conversation.rawValue)"
        let rendered = NotificationTemplate.render(notification, org: org, link: link)
        do {
            try await send(rendered, integration)
            try? await outbox.markSent(item.id, at: Date())
        } catch {
            let attempts = item.attempts + 1
            let reason = "\(error)"
            if attempts >= Self.attempts {
                try? await outbox.markFailed(item.id, reason: reason, at: Date())
                logger.error("notification given up", metadata: ["org.id": "\(org.id)", "integration": "\(integration.name)", "attempts": "\(attempts)"])
            } else {
                try? await outbox.retry(item.id, attempts: attempts, next: Date().addingTimeInterval(Self.retryDelay(afterAttempts: attempts)), reason: reason)
                logger.warning("notification failed; will retry", metadata: [
                    "org.id": "\(org.id)", "integration": "\(integration.name)", "attempts": "\(attempts)", "error": "\(reason)",
                ])
            }
        }
    }
}
