/// The rules a new staff password must meet, with a readable reason when it does not.
public struct PasswordPolicy: Sendable {
    /// Fewest characters accepted.
    public var minimumLength: Int

    /// Creates the policy (at least 12 characters by default).
    public init(minimumLength: Int = 12) { self.minimumLength = minimumLength }

    /// Why `password` is refused, or nil if it is acceptable.
    public func problem(with password: String) -> String? {
        if password.count < minimumLength {
            return "the password has \(password.count) characters; at least \(minimumLength) are required"
        }
        if Set(password).count < 4 {
            return "the password repeats too few different characters"
        }
        return nil
    }
}
