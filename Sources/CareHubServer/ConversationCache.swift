import CareHubCore
import Foundation
import Synchronization

/// A ``ConversationStore`` that keeps recently read conversation records in memory, so that a
/// frame naming a room (every `send`) does not wait for a database read.
///
/// Every change the hub makes goes through this store and drops the record, so the hub's own
/// changes (an end, an assignment, a purge) are seen by the next frame. A record is re-read at
/// least every `lifetime` seconds, which bounds how long a change made outside the hub
/// (`carehub conversations assign` on the same database) takes to apply; a room list refreshes
/// the records it returns at once.
public final class ConversationCache: ConversationStore {
    private struct Entry {
        let conversation: Conversation
        let readAt: Date
    }

    private let store: any ConversationStore
    private let clock: any WallClock
    private let lifetime: TimeInterval
    private let capacity: Int
    private struct State {
        var entries: [ConversationID: Entry] = [:]
        /// Counts changes, so that a read that overlapped one does not store what it read.
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())

    /// Wraps `store`; records live at most `lifetime` seconds and at most `capacity` are kept.
    public init(_ store: any ConversationStore, clock: any WallClock = SystemClock(), lifetime: TimeInterval = 1, capacity: Int = 50_000) {
        self.store = store
        self.clock = clock
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Records held now.
    public var count: Int { state.withLock { $0.entries.count } }

    public func conversation(_ id: ConversationID) async throws -> Conversation? {
        let now = clock.now
        let (cached, generation) = state.withLock { ($0.entries[id], $0.generation) }
        if let cached, abs(now.timeIntervalSince(cached.readAt)) < lifetime {
            return cached.conversation
        }
        let conversation = try await store.conversation(id)
        remember(conversation.map { [$0] } ?? [], readSince: generation, at: now)
        return conversation
    }

    public func create(org: OrgID, tokenDigest: [UInt8], at: Date, offline: Bool) async throws -> Conversation {
        let generation = state.withLock { $0.generation }
        let conversation = try await store.create(org: org, tokenDigest: tokenDigest, at: at, offline: offline)
        remember([conversation], readSince: generation, at: clock.now)
        return conversation
    }

    public func find(org: OrgID, tokenDigest: [UInt8]) async throws -> Conversation? {
        try await store.find(org: org, tokenDigest: tokenDigest)
    }

    public func page(org: OrgID, filter: ConversationFilter, limit: Int) async throws -> [Conversation] {
        let now = clock.now
        let generation = state.withLock { $0.generation }
        let conversations = try await store.page(org: org, filter: filter, limit: limit)
        remember(conversations, readSince: generation, at: now)
        return conversations
    }

    public func list(org: OrgID, limit: Int) async throws -> [Conversation] {
        let now = clock.now
        let generation = state.withLock { $0.generation }
        let conversations = try await store.list(org: org, limit: limit)
        remember(conversations, readSince: generation, at: now)
        return conversations
    }

    public func profile(of id: ConversationID) async throws -> MessageBody? { try await store.profile(of: id) }

    public func unpurged(org: OrgID, startedBefore date: Date, limit: Int) async throws -> [Conversation] {
        try await store.unpurged(org: org, startedBefore: date, limit: limit)
    }

    public func duePurges(org: OrgID, at date: Date, limit: Int) async throws -> [Conversation] {
        try await store.duePurges(org: org, at: date, limit: limit)
    }

    public func openConversations(org: OrgID, limit: Int) async throws -> [Conversation] {
        try await store.openConversations(org: org, limit: limit)
    }

    // MARK: Changes: each drops the record once it is made.

    public func markEnded(_ id: ConversationID, at: Date) async throws {
        try await changing(id) { try await store.markEnded(id, at: at) }
    }

    public func setProfile(_ id: ConversationID, _ body: MessageBody) async throws {
        try await store.setProfile(id, body)
    }

    public func eraseProfile(_ id: ConversationID) async throws {
        try await store.eraseProfile(id)
    }

    public func markPurged(_ id: ConversationID, at: Date) async throws {
        try await changing(id) { try await store.markPurged(id, at: at) }
    }

    public func deferPurge(_ id: ConversationID, attempts: Int, retryAt: Date, reason: String) async throws {
        try await changing(id) { try await store.deferPurge(id, attempts: attempts, retryAt: retryAt, reason: reason) }
    }

    public func requestTranscript(_ id: ConversationID, to address: String?) async throws {
        try await changing(id) { try await store.requestTranscript(id, to: address) }
    }

    public func assign(_ id: ConversationID, to user: String?) async throws {
        try await changing(id) { try await store.assign(id, to: user) }
    }

    public func claim(_ id: ConversationID, by user: String) async throws -> String? {
        var holder: String?
        try await changing(id) { holder = try await store.claim(id, by: user) }
        return holder
    }

    public func markRead(_ id: ConversationID, seq: UInt64) async throws -> Bool {
        var grew = false
        try await changing(id) { grew = try await store.markRead(id, seq: seq) }
        return grew
    }

    public func setHandoff(_ id: ConversationID, _ handoff: Handoff) async throws {
        try await store.setHandoff(id, handoff)
    }

    public func handoff(of id: ConversationID) async throws -> Handoff? { try await store.handoff(of: id) }

    private func changing(_ id: ConversationID, _ change: () async throws -> Void) async throws {
        // Counted before and after: a read that overlaps the change in any way does not store.
        forget(id)
        defer { forget(id) }
        try await change()
    }

    /// Drops the record of `id`: it changed elsewhere (read from the ``ChangeJournal``).
    public func forget(_ id: ConversationID) {
        state.withLock { state in
            state.generation &+= 1
            state.entries.removeValue(forKey: id)
        }
    }

    /// Stores what was read, unless a change happened since `generation` was taken.
    private func remember(_ conversations: [Conversation], readSince generation: UInt64, at now: Date) {
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count + conversations.count > capacity {
                state.entries = state.entries.filter { abs(now.timeIntervalSince($0.value.readAt)) < lifetime }
                if state.entries.count + conversations.count > capacity { state.entries.removeAll(keepingCapacity: true) }
            }
            for conversation in conversations { state.entries[conversation.id] = Entry(conversation: conversation, readAt: now) }
        }
    }
}
