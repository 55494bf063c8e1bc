import CareHubCore
import CareHubStorage
import Foundation
import Logging
import Synchronization

/// Sends due notifications from the durable outbox, each rendered when it goes out under the
/// organisation's settings in force then, to integrations that may receive them then.
///
/// Notifications travel in lanes, one per organisation's integration: a lane sends one
/// notification at a time, in the order they were queued (a pager sees "1 unread" before
/// "2 unread"), and up to ``concurrency`` lanes send at once, each in a child task of the task the
/// dispatcher owns (``start()``/``stop()``). Once a second it takes up to ``batchSize`` due items
/// of the lanes that are not sending and starts those lanes, as many as there is room for; a lane
/// still busy from an earlier round keeps its items and goes on. So an endpoint that accepts and
/// never answers holds only its own lane, for at most the HTTP client's timeout per attempt,
/// while the other organisations' notifications go out. A failed send is retried on
/// ``retryDelay(afterAttempts:)`` and given up after ``attempts`` tries.
final class NotificationDispatcher: Sendable {
    /// Sends one rendered notification through an integration.
    typealias Send = @Sendable (NotificationTemplate.Rendered, Integration) async throws -> Void

    /// Attempts before a notification is given up (about 4 hours of back-off).
    static let attempts = 20
    /// Items taken from the outbox per round.
    static let batchSize = 50
    /// Lanes sending at once. A lane over the bound waits for a free one in a later round; its
    /// items stay in the outbox, due.
    static let concurrency = 4

    private let outbox: SQLiteOutbox
    private let config: @Sendable () -> HubConfig
    private let publicURL: String?
    private let send: Send
    private let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)
    /// Set by ``stop()``: no round starts after it, and no lane takes its next item.
    private let stopping = Mutex(false)

    /// Whether ``stop()`` has been called.
    var isStopping: Bool { stopping.withLock { $0 } }
    /// The lanes sending now.
    private let sending = Mutex<Set<SQLiteOutbox.Lane>>([])

    /// A lane's due items, in queue order, as a round found them at `at`.
    private struct LaneWork: Sendable {
        let lane: SQLiteOutbox.Lane
        var items: [SQLiteOutbox.Item]
        let at: Date
    }

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

    /// Stops the rounds (within a second) and waits for the sends under way, one per lane, whose
    /// outcomes are recorded: nothing is sent after it returns. The tasks are not cancelled, so that a send
    /// that went out is marked sent rather than sent again after a restart.
    func stop() async {
        stopping.withLock { $0 = true }
        let running = task.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        await running?.value
    }

    /// One round on its own: starts every lane there is room for and waits for them to finish.
    func dispatch(at now: Date) async {
        let lanes = await lanesToStart(at: now)
        await withDiscardingTaskGroup { group in
            for lane in lanes { group.addTask { [self] in await run(lane) } }
        }
    }

    /// The due items of lanes that are not sending, grouped by lane in queue order, for as many
    /// lanes as may start now; those lanes are marked as sending.
    private func lanesToStart(at now: Date) async -> [LaneWork] {
        let busy = sending.withLock { $0 }
        guard busy.count < Self.concurrency,
              let due = try? await outbox.due(at: now, limit: Self.batchSize, excluding: busy) else { return [] }
        var lanes: [LaneWork] = []
        var index: [SQLiteOutbox.Lane: Int] = [:]
        for item in due {
            if let position = index[item.lane] {
                lanes[position].items.append(item)
            } else {
                index[item.lane] = lanes.count
                lanes.append(LaneWork(lane: item.lane, items: [item], at: now))
            }
        }
        return sending.withLock { sending in
            let room = max(Self.concurrency - sending.count, 0)
            let starting = Array(lanes.prefix(room))
            for lane in starting { sending.insert(lane.lane) }
            return starting
        }
    }

    /// Sends a lane's items one after the other, then frees the lane.
    /// Once the dispatcher is stopping, the lane finishes the send under way and leaves the rest
    /// in the outbox, due: shutdown waits for one send per lane, not for a dead endpoint's backlog.
    private func run(_ lane: LaneWork) async {
        for item in lane.items {
            guard !stopping.withLock({ $0 }) else { break }
            await deliver(item, at: lane.at)
        }
        _ = sending.withLock { $0.remove(lane.lane) }
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
