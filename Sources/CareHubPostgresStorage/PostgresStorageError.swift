/// Errors of the PostgreSQL adapters that are not PostgreSQL's own (those are
/// ``CareHubPostgres/PostgresError``s, which the server and the client report).
public struct PostgresStorageError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case rotationIncomplete(org: String, remaining: Int)
        case keysChanged(org: String)
        case conversationNotFound(String)
        case auditKeyMissing
        case unstorableBody(conversation: String, seq: UInt64)
        case userExists(org: String, user: String)
        case userNotFound(org: String, user: String)
        case attachment(String)
    }
    private let kind: Kind

    /// A key rotation cannot finish while data keys remain under older versions.
    public static func rotationIncomplete(org: String, remaining: Int) -> PostgresStorageError {
        PostgresStorageError(kind: .rotationIncomplete(org: org, remaining: remaining))
    }

    /// Another node changed the organisation's key-encryption keys while this one was creating a
    /// version (its version number was taken by a key that is no longer live); running the
    /// request again reads the new state.
    public static func keysChanged(org: String) -> PostgresStorageError { PostgresStorageError(kind: .keysChanged(org: org)) }

    /// No such conversation.
    public static func conversationNotFound(_ id: String) -> PostgresStorageError { PostgresStorageError(kind: .conversationNotFound(id)) }

    /// Audit events cannot be appended without the audit key (it chains and signs them).
    public static let auditKeyMissing = PostgresStorageError(kind: .auditKeyMissing)

    /// A message whose body has no stored form (``CareHubCore/MessageBody/unreadable``); nothing
    /// of it was written.
    public static func unstorableBody(conversation: String, seq: UInt64) -> PostgresStorageError {
        PostgresStorageError(kind: .unstorableBody(conversation: conversation, seq: seq))
    }

    /// The account already exists.
    public static func userExists(org: String, user: String) -> PostgresStorageError { PostgresStorageError(kind: .userExists(org: org, user: user)) }

    /// No such account.
    public static func userNotFound(org: String, user: String) -> PostgresStorageError { PostgresStorageError(kind: .userNotFound(org: org, user: user)) }
    /// An attachment write that breaks the store's rules (its state, its chunks' order).
    public static func attachment(_ reason: String) -> PostgresStorageError { PostgresStorageError(kind: .attachment(reason)) }

    public var description: String {
        switch kind {
        case .rotationIncomplete(let org, let remaining):
            return "key rotation of '\(org)' is incomplete: \(remaining) data keys still use an older version; run it again"
        case .keysChanged(let org):
            return "the key-encryption keys of '\(org)' changed during the request; run it again"
        case .conversationNotFound(let id): return "no conversation '\(id)'"
        case .auditKeyMissing: return "audit events cannot be written without the audit key"
        case .attachment(let reason): return "attachment refused: \(reason)"
        case .unstorableBody(let conversation, let seq): return "message \(seq) of '\(conversation)' has an unreadable body, which cannot be stored"
        case .userExists(let org, let user): return "user '\(user)' already exists in organisation '\(org)'"
        case .userNotFound(let org, let user): return "no user '\(user)' in organisation '\(org)'"
        }
    }
}
