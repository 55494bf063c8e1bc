import Foundation

/// The port through which stages create, find and end conversations.
///
/// Implementations must make `create` and `markEnded` durable before returning, and must store
/// reconnect tokens only as the digests given (never the tokens themselves).
public protocol ConversationStore: Sendable {
    /// Creates a conversation for `org`, reachable later by `tokenDigest`; `offline` when the
    /// visitor is leaving a message while the clinic is closed or nobody is available.
    func create(org: OrgID, tokenDigest: [UInt8], at: Date, offline: Bool) async throws -> Conversation
    /// The conversation of `org` whose reconnect token has `tokenDigest`, if any.
    func find(org: OrgID, tokenDigest: [UInt8]) async throws -> Conversation?
    /// The conversation with this id, in any organisation.
    func conversation(_ id: ConversationID) async throws -> Conversation?
    /// Marks a conversation ended (idempotent).
    func markEnded(_ id: ConversationID, at: Date) async throws
    /// The most recent conversations of `org`, newest first.
    func list(org: OrgID, limit: Int) async throws -> [Conversation]
    /// Up to `limit` of the organisation's conversations that `filter` lets through, newest
    /// first (by start, then id), starting after its cursor.
    func page(org: OrgID, filter: ConversationFilter, limit: Int) async throws -> [Conversation]
    /// Stores the visitor's pre-chat form (sealed, or plain outside HIPAA mode).
    func setProfile(_ id: ConversationID, _ body: MessageBody) async throws
    /// The stored pre-chat form, if any.
    func profile(of id: ConversationID) async throws -> MessageBody?
    /// Erases the pre-chat form (when the conversation is purged).
    func eraseProfile(_ id: ConversationID) async throws
    /// Conversations of `org` started before `date` and not purged yet, oldest first.
    func unpurged(org: OrgID, startedBefore date: Date, limit: Int) async throws -> [Conversation]
    /// Records that the conversation's transcript is gone (it stays listed, as ended and empty),
    /// and forgets any transcript address and pending-hook state.
    func markPurged(_ id: ConversationID, at: Date) async throws
    /// Ended conversations of `org` not purged yet whose next hook attempt is due at `date`, oldest first.
    func duePurges(org: OrgID, at date: Date, limit: Int) async throws -> [Conversation]
    /// Records a failed end-of-chat hook: how many attempts so far, when to try again, and why (no content).
    func deferPurge(_ id: ConversationID, attempts: Int, retryAt: Date, reason: String) async throws
    /// Conversations of `org` that have not ended.
    func openConversations(org: OrgID, limit: Int) async throws -> [Conversation]
    /// Records the address a visitor wants the transcript mailed to (nil withdraws it).
    func requestTranscript(_ id: ConversationID, to address: String?) async throws
    /// Assigns a conversation to a staff member (nil: unassigned).
    func assign(_ id: ConversationID, to user: String?) async throws
    /// Assigns the conversation to `user` only if nobody has it, in one step, and returns who has
    /// it afterwards (`user`, or the colleague who had it first); nil when there is no such conversation.
    func claim(_ id: ConversationID, by user: String) async throws -> String?
    /// Raises the conversation's read receipt to `seq`; true when it grew.
    func markRead(_ id: ConversationID, seq: UInt64) async throws -> Bool
    /// Stores the latest hand-over of the conversation (its note sealed, or plain outside HIPAA mode).
    func setHandoff(_ id: ConversationID, _ handoff: Handoff) async throws
    /// The latest hand-over, if any.
    func handoff(of id: ConversationID) async throws -> Handoff?
}

extension ConversationStore {
    /// Creates a conversation started from the chat form (not a message left while closed).
    public func create(org: OrgID, tokenDigest: [UInt8], at: Date) async throws -> Conversation {
        try await create(org: org, tokenDigest: tokenDigest, at: at, offline: false)
    }
}
