/// What a data key protects: one conversation's messages, or one staff account's secrets.
///
/// Each scope has its own random data key, stored only wrapped under the organisation's
/// key-encryption key; destroying it ("crypto-shredding") makes everything sealed under it
/// unreadable for good, backups included.
public enum KeyScope: Sendable, Hashable, CustomStringConvertible {
    case conversation(OrgID, ConversationID)
    case account(OrgID, String)

    /// The organisation whose key-encryption key wraps the data key.
    public var org: OrgID {
        switch self {
        case .conversation(let org, _), .account(let org, _): org
        }
    }

    /// A stable name for storage: `conversation:ID` or `account:ORG/NAME`.
    public var description: String {
        switch self {
        case .conversation(_, let id): "conversation:\(id.rawValue)"
        case .account(let org, let name): "account:\(org.rawValue)/\(name)"
        }
    }
}

/// Authenticated encryption of ePHI and secrets at rest.
public protocol Cipher: Sendable {
    /// Seals `plaintext` under the scope's data key, binding `associatedData` (which is not stored).
    func seal(_ plaintext: [UInt8], scope: KeyScope, associatedData: [UInt8]) async throws -> SealedText
    /// Opens a sealed text; throws if the key, the associated data or any byte differs.
    func open(_ sealed: SealedText, scope: KeyScope, associatedData: [UInt8]) async throws -> [UInt8]
    /// Creates the scope's data key now if it has none (a conversation's, when it starts), so
    /// that its first seal does not wait for the key to be made and stored.
    func prepare(_ scope: KeyScope) async throws
    /// Destroys the scope's data key; what was sealed under it can never be opened again.
    func shred(_ scope: KeyScope) async throws
}
