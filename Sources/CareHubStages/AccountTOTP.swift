import CareHubCore
import Foundation

/// One staff account's TOTP secret as the hub keeps it, and the check of a code against it.
///
/// The secret is sealed under the account's data key (``KeyScope/account(_:_:)``) and bound to
/// the associated data `carehub.totp.v1|ORG|USER`, so a sealed secret copied to another account
/// does not open. A code is accepted once: the time step it matches is consumed through
/// ``UserDirectory/consumeCounter(org:name:counter:)``, and the same code (or an older one)
/// is then ``Verdict/replayed``. The login (``AuthStage``) and the admin API's token approval
/// check codes this way.
///
/// ```swift
/// let totp = AccountTOTP(org: org, user: "dr.admin", environment: environment)
/// guard try await totp.check(code, against: sealed, at: now) == .accepted else { throw PipelineError.authFailed }
/// ```
public struct AccountTOTP: Sendable {
    /// What a code was found to be.
    public enum Verdict: Sendable, Hashable {
        /// It matches a time step not used before; that step is now used.
        case accepted
        /// It matches no time step in the accepted window.
        case wrong
        /// It matches a time step already used (a code seen before, or an older one).
        case replayed
    }

    /// The account's organisation.
    public let org: OrgID
    /// The account's login name.
    public let user: String
    private let environment: StageEnvironment

    /// The account `user` of `org`, whose secrets are sealed with `environment.cipher`.
    public init(org: OrgID, user: String, environment: StageEnvironment) {
        self.org = org
        self.user = user
        self.environment = environment
    }

    /// The associated data a secret of this account is sealed with.
    public var associatedData: [UInt8] { Array("carehub.totp.v1|\(org.rawValue)|\(user)".utf8) }

    /// Seals a new secret for storage.
    public func seal(_ secret: [UInt8]) async throws -> SealedText {
        try await environment.cipher.seal(secret, scope: .account(org, user), associatedData: associatedData)
    }

    /// Opens a stored secret; throws if it is not this account's.
    public func open(_ sealed: SealedText) async throws -> [UInt8] {
        try await environment.cipher.open(sealed, scope: .account(org, user), associatedData: associatedData)
    }

    /// Checks `code` against the sealed secret at `now`, consuming the time step it matches.
    public func check(_ code: String, against sealed: SealedText, at now: Date) async throws -> Verdict {
        let secret = try await open(sealed)
        guard let counter = environment.credentials.totpCounter(code, secret: secret, at: now) else { return .wrong }
        return try await environment.users.consumeCounter(org: org, name: user, counter: counter) ? .accepted : .replayed
    }
}
