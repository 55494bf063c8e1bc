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
///
/// A terminal console's device sign-in reserves its ticket first (``reserve(_:org:until:at:)``):
/// the ticket is pending until the provider says the person finished (``fulfil(_:_:at:)``).
public final class SSOTickets: Sendable {
    /// How long a ticket may wait for its `sso` frame.
    public static let lifetime: TimeInterval = 300
    /// Tickets held at once; the oldest goes first.
    public static let capacity = 10_000

    /// What a ticket stands for now.
    public enum Lookup: Sendable, Hashable {
        /// A verified sign-in.
        case ready(SSOAssertion)
        /// A device sign-in the person has not finished at the provider yet.
        case pending
    }

    private struct Entry {
        let org: OrgID
        let assertion: SSOAssertion?
        let expires: Date
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// Holds `assertion` under `ticket` (a random string the caller made) until `now + lifetime`.
    public func insert(_ ticket: String, _ assertion: SSOAssertion, at now: Date) {
        put(ticket, Entry(org: assertion.org, assertion: assertion, expires: now.addingTimeInterval(Self.lifetime)), at: now)
    }

    /// Reserves `ticket` for a device sign-in of `org` that may finish until `deadline`.
    public func reserve(_ ticket: String, org: OrgID, until deadline: Date, at now: Date) {
        put(ticket, Entry(org: org, assertion: nil, expires: deadline), at: now)
    }

    /// The device sign-in finished: the reserved ticket now stands for `assertion` (for
    /// ``lifetime``). False if the reservation is gone.
    @discardableResult
    public func fulfil(_ ticket: String, _ assertion: SSOAssertion, at now: Date) -> Bool {
        entries.withLock { entries in
            guard let entry = entries[ticket], entry.assertion == nil, entry.expires > now, entry.org == assertion.org else { return false }
            entries[ticket] = Entry(org: assertion.org, assertion: assertion, expires: now.addingTimeInterval(Self.lifetime))
            return true
        }
    }

    /// What `ticket` stands for in `org`, or nil when it is unknown, used, expired or another
    /// organisation's.
    public func lookup(_ ticket: String, org: OrgID, at now: Date) -> Lookup? {
        entries.withLock { entries in
            guard let entry = entries[ticket], entry.expires > now, entry.org == org else { return nil }
            return entry.assertion.map(Lookup.ready) ?? .pending
        }
    }

    /// The verified sign-in `ticket` stands for in `org`, or nil (unknown, pending, used, expired).
    public func assertion(_ ticket: String, org: OrgID, at now: Date) -> SSOAssertion? {
        if case .ready(let assertion)? = lookup(ticket, org: org, at: now) { return assertion }
        return nil
    }

    /// Uses `ticket` up.
    public func consume(_ ticket: String) {
        _ = entries.withLock { $0.removeValue(forKey: ticket) }
    }

    private func put(_ ticket: String, _ entry: Entry, at now: Date) {
        entries.withLock { entries in
            entries = entries.filter { $0.value.expires > now }
            if entries.count >= Self.capacity, let oldest = entries.min(by: { $0.value.expires < $1.value.expires })?.key {
                entries.removeValue(forKey: oldest)
            }
            entries[ticket] = entry
        }
    }
}

/// A device sign-in started for a terminal console (OAuth 2.0 Device Authorization Grant): the
/// person opens `verificationURI` in any browser and enters `userCode`; meanwhile the console
/// sends `sso` frames with `ticket`, answered `sign_in_pending` until they have finished.
public struct DeviceSignIn: Sendable, Hashable {
    /// Where the person signs in.
    public let verificationURI: String
    /// The same with the code filled in, when the provider gives one.
    public let verificationURIComplete: String?
    /// The code the person enters there.
    public let userCode: String
    /// What the console trades for the session once the person has finished.
    public let ticket: String
    /// How long the code works, in seconds.
    public let expiresIn: Int
    /// How often the console should ask, in seconds.
    public let interval: Int

    public init(verificationURI: String, verificationURIComplete: String?, userCode: String, ticket: String, expiresIn: Int, interval: Int) {
        self.verificationURI = verificationURI
        self.verificationURIComplete = verificationURIComplete
        self.userCode = userCode
        self.ticket = ticket
        self.expiresIn = expiresIn
        self.interval = interval
    }
}
