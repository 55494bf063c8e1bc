import Foundation

/// What staff see of a room's state without reading it: when it started, when it last moved and
/// who moved it, whether the visitor is waiting for an answer. No message text, no pre-chat
/// field, no name but the assignee's login.
public struct RoomActivity: Sendable, Hashable {
    /// What happened to the room.
    public enum Event: String, Sendable, Hashable {
        /// A visitor started the conversation.
        case opened
        /// Someone wrote in it.
        case message
        /// It ended.
        case ended
        /// An admin assigned it.
        case assigned
        /// A staff member took it ("I'll take it").
        case claimed
        /// A staff member passed it to a colleague or back to the queue.
        case transferred
    }

    /// Who wrote a message, as activity shows it (never a name).
    public enum Sender: String, Sendable, Hashable {
        case visitor
        case staff
    }

    /// The room.
    public let room: ConversationID
    /// What happened.
    public var event: Event
    /// When the conversation started.
    public var startedAt: Date
    /// When the room last moved: its last message, its end once ended, else its start.
    public var lastAt: Date
    /// Who wrote the last message known, nil when none is known.
    public var lastFrom: Sender?
    /// When the first visitor message since the last staff message was written; nil when answered.
    public var waitingSince: Date?
    /// Visitor messages since the last staff message.
    public var unanswered: Int
    /// Whether the conversation has ended.
    public var ended: Bool
    /// The staff member it is assigned to, if any.
    public var assignedTo: String?
    /// Whether the visitor left it as a message while the clinic was closed or nobody was available.
    public var offline: Bool

    /// Creates an activity record.
    public init(
        room: ConversationID, event: Event, startedAt: Date, lastAt: Date, lastFrom: Sender? = nil, waitingSince: Date? = nil,
        unanswered: Int = 0, ended: Bool = false, assignedTo: String? = nil, offline: Bool = false
    ) {
        self.room = room
        self.event = event
        self.startedAt = startedAt
        self.lastAt = lastAt
        self.lastFrom = lastFrom
        self.waitingSince = waitingSince
        self.unanswered = unanswered
        self.ended = ended
        self.assignedTo = assignedTo
        self.offline = offline
    }
}
