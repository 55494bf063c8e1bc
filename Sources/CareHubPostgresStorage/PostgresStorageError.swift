/// Errors of the PostgreSQL adapters (beside ``CareHubPostgres/PostgresError``, which the
/// server and the client report).
public struct PostgresStorageError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case conversationNotFound(String)
        case auditKeyMissing
        case unstorableBody(conversation: String, seq: UInt64)
    }
    private let kind: Kind

    /// No such conversation.
    public static func conversationNotFound(_ id: String) -> PostgresStorageError { PostgresStorageError(kind: .conversationNotFound(id)) }

    /// Audit events cannot be appended without the audit key (it chains and signs them).
    public static let auditKeyMissing = PostgresStorageError(kind: .auditKeyMissing)

    /// A message whose body has no stored form (``CareHubCore/MessageBody/unreadable``); nothing
    /// of it was written.
    public static func unstorableBody(conversation: String, seq: UInt64) -> PostgresStorageError {
        PostgresStorageError(kind: .unstorableBody(conversation: conversation, seq: seq))
    }

    public var description: String {
        switch kind {
        case .conversationNotFound(let id): return "no conversation '\(id)'"
        case .auditKeyMissing: return "audit events cannot be written without the audit key"
        case .unstorableBody(let conversation, let seq): return "message \(seq) of '\(conversation)' has an unreadable body, which cannot be stored"
        }
    }
}
