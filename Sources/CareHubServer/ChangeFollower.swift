import CareHubCore
import CareHubStages
import Foundation
import Logging
import Synchronization

/// Applies, about once a second, the changes other processes recorded in the ``ChangeJournal``
/// (`carehub user disable`, `carehub conversations assign`, …), as the hub applies its own at
/// once: the account's sessions end, an assignment drops the readers who lost the room and tells
/// the new assignee. Changes this process made are skipped. Entries older than
/// ``retention`` are forgotten, once a minute.
///
/// The checks that existed before the journal stay as a backstop: a session is revalidated
/// against its account every few seconds, and a conversation record is re-read after a second.
final class ChangeFollower: Sendable {
    /// How long journal entries are kept.
    static let retention: TimeInterval = 3600
    /// Most changes applied in one round; the rest follow in the next.
    static let batch = 500

    private struct State {
        var cursor: Int64?
        var loop: Task<Void, Never>?
        var lastPrune = Date.distantPast
    }

    private let journal: any ChangeJournal
    private let origin: String
    private let revoker: SessionRevoker
    private let cache: ConversationCache
    private let environment: StageEnvironment
    private let orgs: @Sendable () -> HubConfig
    private let logger: Logger
    private let state = Mutex(State())

    init(
        journal: any ChangeJournal, origin: String, revoker: SessionRevoker, cache: ConversationCache, environment: StageEnvironment,
        config: @escaping @Sendable () -> HubConfig, logger: Logger
    ) {
        self.journal = journal
        self.origin = origin
        self.revoker = revoker
        self.cache = cache
        self.environment = environment
        self.orgs = config
        self.logger = logger
    }

    /// Follows from the newest entry: what was recorded before the start is already in the state
    /// the hub reads.
    func begin() async throws {
        let newest = try await journal.newest()
        state.withLock { $0.cursor = newest }
    }

    /// Starts following, once a second.
    func start() {
        let loop = Task { [self] in
            if state.withLock({ $0.cursor == nil }) { try? await begin() }
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                guard !Task.isCancelled else { break }
                await round(at: Date())
            }
        }
        state.withLock { $0.loop = loop }
    }

    /// Stops following and waits for a round under way.
    func stop() async {
        let loop = state.withLock { state -> Task<Void, Never>? in
            defer { state.loop = nil }
            state.loop?.cancel()
            return state.loop
        }
        await loop?.value
    }

    /// One round: applies the changes recorded since the last, then forgets old ones if due.
    func round(at now: Date) async {
        do {
            try await apply()
            let prune = state.withLock { state -> Bool in
                guard now.timeIntervalSince(state.lastPrune) >= 60 else { return false }
                state.lastPrune = now
                return true
            }
            if prune { try await journal.forget(before: now.addingTimeInterval(-Self.retention)) }
        } catch {
            logger.error("the change journal could not be read", metadata: ["error": "\(error)"])
        }
    }

    /// Applies the changes after the cursor, in order, and moves the cursor past them.
    func apply() async throws {
        guard let cursor = state.withLock({ $0.cursor }) else {
            try await begin()
            return
        }
        let changes = try await journal.changes(after: cursor, limit: Self.batch)
        for change in changes where change.origin != origin {
            await apply(change)
        }
        if let last = changes.last { state.withLock { $0.cursor = last.id } }
    }

    private func apply(_ change: Change) async {
        switch change.kind {
        case .sessionsRevoked(let user, let reason):
            await revoker.revoke(user, in: change.org, reason: reason)
        case .assigned(let room, _, let previous):
            cache.forget(room)
            guard let org = orgs().org(change.org)?.settings,
                  let after = try? await environment.conversations.conversation(room), after.org == change.org
            else { return }
            var before = after
            before.assignedTo = previous
            await environment.assignmentChanged(room, before: before, after: after, org: org, excluding: nil)
        }
    }
}
