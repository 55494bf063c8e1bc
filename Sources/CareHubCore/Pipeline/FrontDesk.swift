import Foundation
import Synchronization

/// The hub's in-memory view of the front desk: which staff members colleagues were last told are
/// available, away or offline, and each organisation's queue of conversations nobody has taken.
///
/// Both are one hub process's view. Presence is derived from live sessions (``Session/presence``);
/// the board only remembers what was last announced, so that each change is announced once
/// whichever path ended a session. The queue is filled for an organisation the first time it is
/// used after a start (``WaitingQueue/isLoaded(_:)``).
public final class FrontDesk: Sendable {
    /// What colleagues were last told.
    public let presence = PresenceBoard()
    /// Conversations waiting for someone to take them.
    public let queue = WaitingQueue()

    /// Creates an empty front desk.
    public init() {}
}

/// The staff states last announced per organisation, to announce only changes.
public final class PresenceBoard: Sendable {
    /// One staff member as colleagues see them.
    public struct Member: Sendable, Hashable {
        /// The login name.
        public let user: String
        /// The display name (the login name without one).
        public let name: String
        /// Available, away or offline.
        public let state: Presence

        /// Creates a member record.
        public init(user: String, name: String, state: Presence) {
            self.user = user
            self.name = name
            self.state = state
        }
    }

    private let announced = Mutex<[OrgID: [String: Member]]>([:])

    /// Creates an empty board.
    public init() {}

    /// The organisation's staff as its live staff sessions show them now.
    public static func members(of sessions: [Session], at now: Date) -> [String: Member] {
        var states: [String: [Presence]] = [:]
        var names: [String: String] = [:]
        for session in sessions where session.principal.isStaff && session.isLive(at: now) {
            let user = session.principal.displayName
            states[user, default: []].append(session.presence)
            if let shown = session.staffDisplayName { names[user] = shown }
        }
        return states.reduce(into: [:]) { result, entry in
            result[entry.key] = Member(user: entry.key, name: names[entry.key] ?? entry.key, state: Presence.combined(entry.value))
        }
    }

    /// Records `current` (the members with a live session) as announced and returns what changed
    /// since the last call: new or changed members, and members gone offline.
    public func changes(in org: OrgID, current: [String: Member]) -> [Member] {
        changes(in: org) { current }
    }

    /// As ``changes(in:current:)``, reading the members inside the board's lock, so that two
    /// callers (a closed connection and the tick) cannot record an older view over a newer one.
    public func changes(in org: OrgID, reading current: () -> [String: Member]) -> [Member] {
        announced.withLock { announced in
            let current = current()
            let before = announced[org] ?? [:]
            var changed: [Member] = []
            for (user, member) in current where before[user] != member { changed.append(member) }
            for (user, member) in before where current[user] == nil && member.state != .offline {
                changed.append(Member(user: user, name: member.name, state: .offline))
            }
            announced[org] = current
            return changed.sorted { $0.user < $1.user }
        }
    }
}

/// Each organisation's conversations that no staff member has taken or answered since they
/// entered the queue (when they started, or were transferred back to it), oldest entry first.
public final class WaitingQueue: Sendable {
    private struct OrgQueue {
        var loaded = false
        var entries: [ConversationID: Date] = [:]
        /// The position last told to each room's visitor (0: taken).
        var told: [ConversationID: Int] = [:]
    }

    private let queues = Mutex<[OrgID: OrgQueue]>([:])

    /// Creates empty queues.
    public init() {}

    /// Whether the organisation's queue was filled since the hub started.
    public func isLoaded(_ org: OrgID) -> Bool {
        queues.withLock { $0[org]?.loaded == true }
    }

    /// Fills the organisation's queue after a start (entries already added since are kept).
    public func load(_ org: OrgID, _ entries: [(ConversationID, Date)]) {
        queues.withLock { queues in
            var queue = queues[org] ?? OrgQueue()
            guard !queue.loaded else { return }
            queue.loaded = true
            for (room, since) in entries where queue.entries[room] == nil { queue.entries[room] = since }
            queues[org] = queue
        }
    }

    /// Puts a conversation in the queue from `since` (it started, or came back to the queue).
    public func enqueue(_ room: ConversationID, org: OrgID, since: Date) {
        queues.withLock { $0[org, default: OrgQueue()].entries[room] = since }
    }

    /// Takes a conversation out of the queue (taken, answered or ended); true if it was in it.
    @discardableResult
    public func remove(_ room: ConversationID, org: OrgID) -> Bool {
        queues.withLock { $0[org]?.entries.removeValue(forKey: room) != nil }
    }

    /// Whether the conversation is waiting in the queue.
    public func contains(_ room: ConversationID, org: OrgID) -> Bool {
        queues.withLock { $0[org]?.entries[room] != nil }
    }

    /// The waiting conversations and since when, longest-waiting first.
    public func waiting(in org: OrgID) -> [(room: ConversationID, since: Date)] {
        queues.withLock { queues in
            guard let entries = queues[org]?.entries else { return [] }
            return Self.order(entries).map { ($0, entries[$0]!) }
        }
    }

    /// The conversation's place now: 1 is next, 0 when it is not in the queue.
    public func position(of room: ConversationID, org: OrgID) -> Int {
        queues.withLock { queues in
            guard let queue = queues[org] else { return 0 }
            return Self.order(queue.entries).firstIndex(of: room).map { $0 + 1 } ?? 0
        }
    }

    /// Records `position` as told to the room's visitor (after its `welcome`).
    public func told(_ room: ConversationID, org: OrgID, position: Int) {
        queues.withLock { $0[org, default: OrgQueue()].told[room] = position }
    }

    /// The positions that changed since they were last told, recorded as told now: every queued
    /// room whose place moved, and rooms that left the queue (position 0) once. Rooms that
    /// left the queue and were told so are forgotten.
    public func changes(in org: OrgID) -> [(room: ConversationID, position: Int)] {
        queues.withLock { queues in
            guard var queue = queues[org] else { return [] }
            var changed: [(room: ConversationID, position: Int)] = []
            let order = Self.order(queue.entries)
            for (index, room) in order.enumerated() where queue.told[room] != index + 1 {
                queue.told[room] = index + 1
                changed.append((room, index + 1))
            }
            for (room, position) in queue.told where queue.entries[room] == nil {
                if position != 0 { changed.append((room, 0)) }
                queue.told.removeValue(forKey: room)
            }
            queues[org] = queue
            return changed
        }
    }

    /// Oldest entry first; ties by room id, so every caller sees one order.
    private static func order(_ entries: [ConversationID: Date]) -> [ConversationID] {
        entries.sorted { $0.value != $1.value ? $0.value < $1.value : $0.key.rawValue < $1.key.rawValue }.map(\.key)
    }
}
