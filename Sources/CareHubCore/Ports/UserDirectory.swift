/// The port through which the auth stage looks up staff accounts.
public protocol UserDirectory: Sendable {
    /// The account `name` of `org`, if it exists.
    func user(org: OrgID, name: String) async throws -> StaffUser?
}
