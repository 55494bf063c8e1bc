/// Errors that stop the hub from starting or reloading.
public struct HubError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case masterKey(String)
        case unknownKey(String)
        case listen(String)
        case keyShredded(String)
        case auditAnchor(String)
    }
    private let kind: Kind

    /// The master key is missing, malformed, or too exposed.
    public static func masterKey(_ why: String) -> HubError { HubError(kind: .masterKey(why)) }
    /// A message was sealed under a key version this hub does not hold.
    public static func unknownKey(_ id: String) -> HubError { HubError(kind: .unknownKey(id)) }
    /// The scope's data key was destroyed (its conversation was purged).
    public static func keyShredded(_ scope: String) -> HubError { HubError(kind: .keyShredded(scope)) }
    /// The audit anchor file cannot be opened.
    public static func auditAnchor(_ why: String) -> HubError { HubError(kind: .auditAnchor(why)) }
    /// The listener could not start.
    public static func listen(_ why: String) -> HubError { HubError(kind: .listen(why)) }

    public var description: String {
        switch kind {
        case .masterKey(let why): return "master key: \(why)"
        case .unknownKey(let id): return "no key with id '\(id)'"
        case .listen(let why): return why
        case .keyShredded(let scope): return "the data key of \(scope) was destroyed"
        case .auditAnchor(let why): return "audit anchor: \(why)"
        }
    }
}
