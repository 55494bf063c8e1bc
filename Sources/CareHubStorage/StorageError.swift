/// Errors of the SQLite adapters.
public struct StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case userExists(org: String, user: String)
        case userNotFound(org: String, user: String)
        case conversationNotFound(String)
        case unreadableDirectory(String, String)
        case rotationIncomplete(org: String, remaining: Int)
        case auditKeyMissing
        case attachment(String)
    }
    private let kind: Kind

    /// The account already exists.
    public static func userExists(org: String, user: String) -> StorageError { StorageError(kind: .userExists(org: org, user: user)) }
    /// No such account.
    public static func userNotFound(org: String, user: String) -> StorageError { StorageError(kind: .userNotFound(org: org, user: user)) }
    /// No such conversation.
    public static func conversationNotFound(_ id: String) -> StorageError { StorageError(kind: .conversationNotFound(id)) }
    /// The data directory cannot be created or used.
    public static func unusableDirectory(_ path: String, reason: String) -> StorageError { StorageError(kind: .unreadableDirectory(path, reason)) }

    /// A key rotation cannot finish while data keys remain under older versions.
    public static func rotationIncomplete(org: String, remaining: Int) -> StorageError { StorageError(kind: .rotationIncomplete(org: org, remaining: remaining)) }

    /// Audit events cannot be appended without the audit key (it chains and signs them).
    public static let auditKeyMissing = StorageError(kind: .auditKeyMissing)

    /// An attachment write that breaks the store's rules (its state, its chunks' order); the
    /// reason names ids only.
    public static func attachment(_ reason: String) -> StorageError { StorageError(kind: .attachment(reason)) }

    public var description: String {
        switch kind {
        case .userExists(let org, let user): return "user '\(user)' already exists in organisation '\(org)'"
        case .userNotFound(let org, let user): return "no user '\(user)' in organisation '\(org)'"
        case .conversationNotFound(let id): return "no conversation '\(id)'"
        case .unreadableDirectory(let path, let reason): return "cannot use data directory \(path): \(reason)"
        case .rotationIncomplete(let org, let remaining): return "key rotation of '\(org)' is incomplete: \(remaining) data keys still use an older version; run it again"
        case .auditKeyMissing: return "audit events cannot be written without the audit key"
        case .attachment(let reason): return "attachment refused: \(reason)"
        }
    }
}
