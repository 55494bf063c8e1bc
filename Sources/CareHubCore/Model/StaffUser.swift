/// A staff account as the user directory stores it.
public struct StaffUser: Sendable, Hashable {
    /// The organisation the account belongs to.
    public let org: OrgID
    /// Login name, unique within the organisation.
    public let name: String
    /// What the account may do.
    public var role: Role
    /// Encoded password hash (never the password).
    public var passwordHash: String
    /// A disabled account cannot log in.
    public var disabled: Bool

    /// Creates an account record.
    public init(org: OrgID, name: String, role: Role, passwordHash: String, disabled: Bool = false) {
        self.org = org
        self.name = name
        self.role = role
        self.passwordHash = passwordHash
        self.disabled = disabled
    }
}
