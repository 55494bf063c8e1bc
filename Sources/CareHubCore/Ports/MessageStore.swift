/// The port through which stages store and read messages.
///
/// Implementations must guarantee that `append` returns only after the message, and the audit
/// events given with it, are durably committed in one transaction (the hub acknowledges a message
/// only then), and that sequence numbers handed out by `reserveSequence` are unique and increasing
/// per conversation.
///
/// ```swift
/// let seq = try await messages.reserveSequence(in: room)
/// try await messages.append(StoredMessage(conversation: room, seq: seq, sender: "visitor", at: now, body: .sealed(box)))
/// // only now may the sender be told `ack`
/// ```
public protocol MessageStore: Sendable {
    /// Reserves the next sequence number of `conversation`.
    func reserveSequence(in conversation: ConversationID) async throws -> UInt64
    /// Durably stores a message, and `events` in the audit trail in the same commit.
    func append(_ message: StoredMessage, recording events: [AuditEvent]) async throws
    /// The last `limit` messages of `conversation`, oldest first.
    func history(of conversation: ConversationID, limit: Int) async throws -> [StoredMessage]
    /// Up to `limit` messages of `conversation` after sequence number `after`, oldest first.
    func messages(of conversation: ConversationID, after: UInt64, limit: Int) async throws -> [StoredMessage]
    /// Deletes every message of `conversation`; returns how many there were.
    func purge(_ conversation: ConversationID) async throws -> Int
    /// Up to `limit` messages of `conversation` stored in plain text (written before its
    /// organisation entered HIPAA mode), oldest first.
    func plainMessages(of conversation: ConversationID, limit: Int) async throws -> [StoredMessage]
    /// Replaces the plain body of each given message with its sealed form, in one commit, and
    /// leaves no trace of the plain text in the files once it returns (the freed space zeroed,
    /// the old pages out of the log). A message no longer stored in plain text is left alone.
    /// Returns how many it replaced.
    func seal(_ sealed: [(seq: UInt64, body: SealedText)], in conversation: ConversationID) async throws -> Int
}

extension MessageStore {
    /// Durably stores a message.
    public func append(_ message: StoredMessage) async throws {
        try await append(message, recording: [])
    }
}
