/// Errors of the PostgreSQL adapters that are not PostgreSQL's own (those are ``PostgresError``s).
public struct PostgresStorageError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case rotationIncomplete(org: String, remaining: Int)
        case keysChanged(org: String)
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

    public var description: String {
        switch kind {
        case .rotationIncomplete(let org, let remaining):
            return "key rotation of '\(org)' is incomplete: \(remaining) data keys still use an older version; run it again"
        case .keysChanged(let org):
            return "the key-encryption keys of '\(org)' changed during the request; run it again"
        }
    }
}
