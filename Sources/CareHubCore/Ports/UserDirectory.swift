import Foundation

/// Staff accounts and their login state. Every change is one atomic step in the store, so two
/// logins racing cannot both use one TOTP code or one recovery code.
public protocol UserDirectory: Sendable {
    /// The account, or nil.
    func user(org: OrgID, name: String) async throws -> StaffUser?
    /// Every account of `org`, by name.
    func list(org: OrgID) async throws -> [StaffUser]
    /// Counts a failed login; locks the account for `lockFor` once `lockAfter` failures are reached.
    func recordFailure(org: OrgID, name: String, at: Date, lockAfter: Int, lockFor: TimeInterval) async throws -> LoginThrottle
    /// Clears the failure count after a successful login.
    func recordSuccess(org: OrgID, name: String) async throws
    /// Stores a TOTP secret handed out for enrolment.
    func setPendingSecret(org: OrgID, name: String, secret: SealedText) async throws
    /// Makes the pending secret the account's secret, with its first used step and recovery codes.
    func confirmEnrollment(org: OrgID, name: String, counter: UInt64, recoveryCodeDigests: [[UInt8]]) async throws
    /// Records `counter` as used; false if it is not above the last one (a replay).
    func consumeCounter(org: OrgID, name: String, counter: UInt64) async throws -> Bool
    /// Removes a recovery code; false if it was not one of the account's unused codes.
    func consumeRecoveryCode(org: OrgID, name: String, digest: [UInt8]) async throws -> Bool
    /// Adds an account with its audit event, in one step; fails if the name is taken.
    func add(_ user: StaffUser, at: Date, audit event: AuditEvent?) async throws
}
