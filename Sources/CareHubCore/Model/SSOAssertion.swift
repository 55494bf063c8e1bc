import Foundation
import Synchronization

/// Who an identity provider says a staff session belongs to: kept with the session, so that the
/// provider's back-channel logout can end it.
public struct SSOIdentity: Sendable, Hashable {
    /// The `sso NAME …` provider.
    public let provider: String
    /// The ID token's `iss`.
    public let issuer: String
    /// The ID token's `sub`.
    public let subject: String
    /// The ID token's `sid` (the provider's session), when it sends one.
    public let sessionID: String?

    public init(provider: String, issuer: String, subject: String, sessionID: String?) {
        self.provider = provider
        self.issuer = issuer
        self.subject = subject
        self.sessionID = sessionID
    }
}

/// A verified ID token, reduced to what the auth stage needs to make a staff session: the hub
/// checked its signature, issuer, audience, times and nonce before making one.
public struct SSOAssertion: Sendable, Hashable {
    /// The organisation whose provider issued it.
    public let org: OrgID
    /// The provider, issuer and subject.
    public let identity: SSOIdentity
    /// The CareHub account it names (the `claim_user` claim).
    public let user: String
    /// The values of the provider's `claim_role` claim (empty without one).
    public let roles: [String]
    /// The token's `amr` values.
    public let amr: [String]
    /// The token's `acr`.
    public let acr: String?
    /// The `name` claim, as the display name of an account made on first login.
    public let displayName: String?

    public init(org: OrgID, identity: SSOIdentity, user: String, roles: [String], amr: [String], acr: String?, displayName: String?) {
        self.org = org
        self.identity = identity
        self.user = user
        self.roles = roles
        self.amr = amr
        self.acr = acr
        self.displayName = displayName
    }
}

/// One-time tickets for verified SSO logins: the hub's callback page hands the browser a ticket
/// (in the URL's fragment, which no server sees), and the console trades it on its WebSocket for
/// a session with an `sso` frame. A ticket works until it is used for a session or until
/// ``lifetime`` has passed; a TOTP code asked for in between keeps it.
public final class SSOTickets: Sendable {
    /// How long a ticket may wait for its `sso` frame.
    public static let lifetime: TimeInterval = 300
    /// Tickets held at once; the oldest goes first.
    public static let capacity = 10_000

    private struct Entry {
        let assertion: SSOAssertion
        let expires: Date
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// Holds `assertion` under `ticket` (a random string the caller made) until `now + lifetime`.
    public func insert(_ ticket: String, _ assertion: SSOAssertion, at now: Date) {
        entries.withLock { entries in
            entries = entries.filter { $0.value.expires > now }
            if entries.count >= Self.capacity, let oldest = entries.min(by: { $0.value.expires < $1.value.expires })?.key {
                entries.removeValue(forKey: oldest)
            }
            entries[ticket] = Entry(assertion: assertion, expires: now.addingTimeInterval(Self.lifetime))
        }
    }

    /// The assertion `ticket` stands for in `org`, or nil when it is unknown, used, expired or
    /// another organisation's.
    public func assertion(_ ticket: String, org: OrgID, at now: Date) -> SSOAssertion? {
        entries.withLock { entries in
            guard let entry = entries[ticket], entry.expires > now, entry.assertion.org == org else { return nil }
            return entry.assertion
        }
    }

    /// Uses `ticket` up.
    public func consume(_ ticket: String) {
        _ = entries.withLock { $0.removeValue(forKey: ticket) }
    }
}
