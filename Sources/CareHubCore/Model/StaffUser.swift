import Foundation

/// A staff account of one organisation.
public struct StaffUser: Sendable, Hashable {
    /// The organisation the account belongs to.
    public let org: OrgID
    /// The login name, unique within the organisation.
    public let name: String
    /// What the account may do.
    public var role: Role
    /// The self-describing password hash (`scrypt$…`).
    public var passwordHash: String
    /// A disabled account cannot log in.
    public var disabled: Bool
    /// TOTP enrolment and recovery codes.
    public var secondFactor: SecondFactor
    /// Failed-login counting, back-off and lockout.
    public var throttle: LoginThrottle
    /// The name patients see on this account's replies ("Joy Rivera"); nil shows the login name.
    public var displayName: String?

    /// Whether `name` can be a login name: 1-64 ASCII letters, digits, '.', '_' or '-'.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { byte in
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || Array(".-_".utf8).contains(byte)
            }
    }

    /// The password hash of an account made by single sign-on: no password matches it, so the
    /// account logs in only through its identity provider until an admin sets a password.
    public static let noPassword = "none$sso"

    /// Longest display name, in characters.
    public static let maxDisplayNameLength = 64

    /// `text` as a display name: cleaned as a single line of typed text (``TypedText``) and
    /// trimmed; nil unless 1-64 characters remain.
    public static func displayName(from text: String) -> String? {
        let cleaned = TypedText.clean(text, as: .singleLine).trimmingCharacters(in: .whitespaces)
        guard !cleaned.isEmpty, cleaned.count <= maxDisplayNameLength else { return nil }
        return cleaned
    }

    /// The name shown to patients: the display name, or the login name without one.
    public var shownName: String { displayName ?? name }

    public init(
        org: OrgID, name: String, role: Role, passwordHash: String, disabled: Bool = false,
        secondFactor: SecondFactor = SecondFactor(), throttle: LoginThrottle = LoginThrottle(),
        displayName: String? = nil
    ) {
        self.displayName = displayName
        self.org = org
        self.name = name
        self.role = role
        self.passwordHash = passwordHash
        self.disabled = disabled
        self.secondFactor = secondFactor
        self.throttle = throttle
    }
}

/// An account's TOTP state. Secrets are stored only sealed by the ``Cipher``.
public struct SecondFactor: Sendable, Hashable {
    /// The confirmed TOTP secret; nil until enrolment completes.
    public var secret: SealedText?
    /// A secret handed out for enrolment and not yet confirmed with a code.
    public var pendingSecret: SealedText?
    /// The highest TOTP time step accepted so far; a code for it or an earlier step is a replay.
    public var lastCounter: UInt64
    /// Digests of the unused recovery codes.
    public var recoveryCodeDigests: [[UInt8]]

    public init(secret: SealedText? = nil, pendingSecret: SealedText? = nil, lastCounter: UInt64 = 0, recoveryCodeDigests: [[UInt8]] = []) {
        self.secret = secret
        self.pendingSecret = pendingSecret
        self.lastCounter = lastCounter
        self.recoveryCodeDigests = recoveryCodeDigests
    }

    /// Whether the account has a confirmed TOTP secret.
    public var isEnrolled: Bool { secret != nil }
}

/// Failed logins since the last success.
public struct LoginThrottle: Sendable, Hashable {
    /// Consecutive failures.
    public var failures: Int
    /// When the latest failure happened.
    public var lastFailureAt: Date?
    /// Until when the account is locked, if it is.
    public var lockedUntil: Date?

    public init(failures: Int = 0, lastFailureAt: Date? = nil, lockedUntil: Date? = nil) {
        self.failures = failures
        self.lastFailureAt = lastFailureAt
        self.lockedUntil = lockedUntil
    }

    /// Whether the account is locked at `now`.
    public func isLocked(at now: Date) -> Bool { lockedUntil.map { $0 > now } ?? false }

    /// The earliest time the next attempt is considered: 1 s after the first failure, doubling
    /// with each further one, at most `cap`.
    public func nextAttemptAllowed(cap: TimeInterval = 300) -> Date? {
        guard failures > 0, let lastFailureAt else { return nil }
        return lastFailureAt.addingTimeInterval(min(pow(2, Double(failures - 1)), cap))
    }
}
