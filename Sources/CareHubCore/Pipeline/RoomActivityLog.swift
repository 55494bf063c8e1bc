import Foundation
import Synchronization

/// The hub's in-memory view of each open room's recent traffic: the last message, and the
/// visitor messages not answered yet. It costs no storage on the message path; after a restart a
/// room is filled from its stored history the first time it is seen (``RoomActivityLog/knows(_:)``).
///
/// Recording is idempotent and does not depend on order: a message is known by its `seq`, so the
/// same message recorded twice (live and from the history) counts once, and a staff message
/// answers only the visitor messages before it.
///
/// ```swift
/// if !log.knows(room) { log.record(room, try await messages.history(of: room, limit: RoomActivityLog.historyDepth)) }
/// log.record(room, seq: seq, from: .visitor, at: now)
/// let activity = log.activity(of: conversation, event: .message)
/// ```
public final class RoomActivityLog: Sendable {
    /// How many stored messages fill a room first seen: a visitor who wrote more than this many
    /// without an answer before a restart is shown with this many unanswered.
    public static let historyDepth = 100

    private struct Thread {
        var lastSeq: UInt64 = 0
        var lastAt: Date?
        var lastFrom: RoomActivity.Sender?
        var answeredThrough: UInt64 = 0
        var waiting: [UInt64: Date] = [:]

        mutating func add(seq: UInt64, from: RoomActivity.Sender, at: Date) {
            if seq >= lastSeq {
                lastSeq = seq
                lastAt = at
                lastFrom = from
            }
            switch from {
            case .staff:
                guard seq > answeredThrough else { return }
                answeredThrough = seq
                waiting = waiting.filter { $0.key > seq }
            case .visitor:
                if seq > answeredThrough { waiting[seq] = at }
            }
        }
    }

    private let threads = Mutex<[ConversationID: Thread]>([:])

    /// Creates an empty log.
    public init() {}

    /// Whether the room has been seen since the hub started (else fill it from its history first).
    public func knows(_ room: ConversationID) -> Bool {
        threads.withLock { $0[room] != nil }
    }

    /// Records stored messages (a room's history, oldest first, or one just committed); the room is known from then on.
    public func record(_ room: ConversationID, _ messages: [StoredMessage]) {
        threads.withLock { threads in
            var thread = threads[room] ?? Thread()
            for message in messages { thread.add(seq: message.seq, from: message.sender == "visitor" ? .visitor : .staff, at: message.at) }
            threads[room] = thread
        }
    }

    /// Records one message; the room is known from then on.
    public func record(_ room: ConversationID, seq: UInt64, from: RoomActivity.Sender, at: Date) {
        threads.withLock { threads in threads[room, default: Thread()].add(seq: seq, from: from, at: at) }
    }

    /// Whether a staff message in the room is known (live since the start, or from its history).
    public func hasStaffMessage(_ room: ConversationID) -> Bool {
        threads.withLock { ($0[room]?.answeredThrough ?? 0) > 0 }
    }

    /// Forgets a room (it ended: nobody waits in it any more).
    public func forget(_ room: ConversationID) {
        _ = threads.withLock { $0.removeValue(forKey: room) }
    }

    /// The room's activity as known now, with the conversation record's start, end and assignment.
    public func activity(of conversation: Conversation, event: RoomActivity.Event) -> RoomActivity {
        let thread = threads.withLock { $0[conversation.id] } ?? Thread()
        let ended = conversation.hasEnded
        let waiting = ended ? nil : thread.waiting.values.min()
        return RoomActivity(
            room: conversation.id, event: event, startedAt: conversation.startedAt,
            lastAt: conversation.endedAt ?? thread.lastAt ?? conversation.startedAt, lastFrom: thread.lastFrom,
            waitingSince: waiting, unanswered: ended ? 0 : thread.waiting.count, ended: ended, assignedTo: conversation.assignedTo,
            offline: conversation.offline)
    }
}
