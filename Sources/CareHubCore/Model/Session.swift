import Foundation

/// An authenticated session, bound to one connection at a time.
///
/// Sessions live in a ``SessionStore``. The auth stage creates them; the idle stage arms them with
/// the organisation's ``IdlePolicy`` and records user actions; the fan-out stage delivers only to
/// sessions that are ``isLive(at:)``.
public struct Session: Sendable, Hashable {
    /// Opaque random token naming the session inside the hub. Never sent to other clients.
    public let token: String
    /// The organisation the session belongs to.
    public let org: OrgID
    /// Who the session is.
    public let principal: Principal
    /// When the session was created (login or visitor hello).
    public let createdAt: Date
    /// The last *user action* (send, subscribe, unsubscribe, end). Pings, resumes and automatic reads do not count.
    public var lastActionAt: Date
    /// Set by the idle stage; `nil` means the organisation runs no idle stage.
    public var idlePolicy: IdlePolicy?
    /// Whether the login passed a second factor (TOTP or recovery code). The admin API needs it.
    public let secondFactor: Bool
    /// A staff account's display name as it was at login (``StaffUser/displayName``).
    public let staffDisplayName: String?
    /// Staff: whether they take chats now (`presence`); every session starts available.
    public var presence: Presence = .available
    /// Staff logged in through an identity provider: who it said they are (nil for a password login).
    public var sso: SSOIdentity?
    /// Whether the identity provider's login stood for the second factor (its `amr`/`acr`
    /// showed one), so the account's own authenticator was not asked for.
    public var secondFactorByProvider = false

    /// Creates a session whose last action is its creation.
    public init(token: String, org: OrgID, principal: Principal, createdAt: Date, secondFactor: Bool = false, staffDisplayName: String? = nil) {
        self.staffDisplayName = staffDisplayName
        self.token = token
        self.org = org
        self.principal = principal
        self.createdAt = createdAt
        self.lastActionAt = createdAt
        self.idlePolicy = nil
        self.secondFactor = secondFactor
    }

    /// The name patients see on this session's messages (`fromName`): the staff display name,
    /// or the login name without one; an integration's, the organisation's name; nil for a visitor.
    public var shownName: String? {
        switch principal {
        case .staff(let user, _): return staffDisplayName ?? user
        case .integration: return staffDisplayName
        case .visitor: return nil
        }
    }

    /// Whether the session may still act and receive messages at `now`.
    public func isLive(at now: Date) -> Bool {
        guard let policy = idlePolicy else { return true }
        return policy.expiry(of: self, at: now) == nil
    }
}

/// How long a staff session may stay idle and live at all.
public struct IdlePolicy: Sendable, Hashable {
    /// Longest time between two user actions.
    public var idleTimeout: Duration
    /// Longest time since login, whatever the activity.
    public var lifetime: Duration

    /// Creates a policy.
    public init(idleTimeout: Duration, lifetime: Duration) {
        self.idleTimeout = idleTimeout
        self.lifetime = lifetime
    }

    /// Why `session` has expired at `now`, or `nil` while it is live.
    public func expiry(of session: Session, at now: Date) -> SessionExpiry? {
        if now.timeIntervalSince(session.createdAt) >= lifetime.seconds { return .lifetime }
        if now.timeIntervalSince(session.lastActionAt) >= idleTimeout.seconds { return .idle }
        return nil
    }
}

/// Why a session ended without a logout.
public enum SessionExpiry: String, Sendable, Hashable {
    /// No user action within the idle timeout.
    case idle
    /// The absolute session lifetime passed.
    case lifetime
    /// The organisation was switched into HIPAA mode; everyone logs in again under its rules.
    case hipaaMode = "hipaa_mode"
    /// The account was disabled, removed, or had its role or second factor changed by an admin.
    case revoked
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    public var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
