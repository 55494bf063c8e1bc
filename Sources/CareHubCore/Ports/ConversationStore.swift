import Foundation

/// The port through which stages create, find and end conversations.
///
/// Implementations must make `create` and `markEnded` durable before returning, and must store
/// reconnect tokens only as the digests given (never the tokens themselves).
public protocol ConversationStore: Sendable {
    /// Creates a conversation for `org`, reachable later by `tokenDigest`.
    func create(org: OrgID, tokenDigest: [UInt8], at: Date) async throws -> Conversation
    /// The conversation of `org` whose reconnect token has `tokenDigest`, if any.
    func find(org: OrgID, tokenDigest: [UInt8]) async throws -> Conversation?
    /// The conversation with this id, in any organisation.
    func conversation(_ id: ConversationID) async throws -> Conversation?
    /// Marks a conversation ended (idempotent).
    func markEnded(_ id: ConversationID, at: Date) async throws
    /// The most recent conversations of `org`, newest first.
    func list(org: OrgID, limit: Int) async throws -> [Conversation]
    /// Stores the visitor's pre-chat form (sealed, or plain outside HIPAA mode).
    func setProfile(_ id: ConversationID, _ body: MessageBody) async throws
    /// The stored pre-chat form, if any.
    func profile(of id: ConversationID) async throws -> MessageBody?
    /// Erases the pre-chat form (when the conversation is purged).
    func eraseProfile(_ id: ConversationID) async throws
    /// Conversations of `org` started before `date` and not purged yet, oldest first.
    func unpurged(org: OrgID, startedBefore date: Date, limit: Int) async throws -> [Conversation]
    /// Records that the conversation's transcript is gone (it stays listed, as ended and empty).
    func markPurged(_ id: ConversationID, at: Date) async throws
}
