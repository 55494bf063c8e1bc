import Foundation

/// A patient conversation: one room, one visitor, any number of staff readers.
public struct Conversation: Sendable, Hashable {
    /// The conversation's identifier, also its room name.
    public let id: ConversationID
    /// The organisation it belongs to.
    public let org: OrgID
    /// When the visitor started it.
    public let startedAt: Date
    /// When it ended, if it has.
    public var endedAt: Date?

    /// Creates a conversation record.
    public init(id: ConversationID, org: OrgID, startedAt: Date, endedAt: Date? = nil) {
        self.id = id
        self.org = org
        self.startedAt = startedAt
        self.endedAt = endedAt
    }

    /// Whether the conversation has ended.
    public var hasEnded: Bool { endedAt != nil }
}
