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
    /// The staff member it is assigned to (`staff_access = assigned`).
    public var assignedTo: String?
    /// Failed attempts of its end-of-chat hook so far (an export that did not go through).
    public var purgeAttempts: Int
    /// Non-HIPAA only: the address the visitor asked a transcript copy to go to.
    public var transcriptTo: String?
    /// Whether the visitor left it as a message while the clinic was closed or nobody was available.
    public var offline: Bool
    /// The highest `seq` a staff member has seen (read receipts; 0 when none).
    public var readSeq: UInt64

    /// Creates a conversation record.
    public init(
        id: ConversationID, org: OrgID, startedAt: Date, endedAt: Date? = nil, assignedTo: String? = nil,
        purgeAttempts: Int = 0, transcriptTo: String? = nil, offline: Bool = false, readSeq: UInt64 = 0
    ) {
        self.id = id
        self.org = org
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.assignedTo = assignedTo
        self.purgeAttempts = purgeAttempts
        self.transcriptTo = transcriptTo
        self.offline = offline
        self.readSeq = readSeq
    }

    /// Whether the conversation has ended.
    public var hasEnded: Bool { endedAt != nil }
}
