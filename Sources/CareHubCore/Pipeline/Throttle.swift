/// What the hub as a whole accepts from one address and from everyone, whatever the
/// organisation (`carehub serve --max-…`); per-organisation limits are ``OrgLimits``.
public struct HubLimits: Sendable, Hashable {
    /// Staff `login` attempts per minute from one client address.
    public var loginsPerAddressPerMinute: Int
    /// Staff `login` attempts per minute on the whole hub.
    public var loginsPerMinute: Int
    /// Open WebSocket connections from one client address.
    public var connectionsPerAddress: Int

    /// The defaults: 30 logins a minute from an address (a front desk's shift change behind one
    /// router), 300 a minute in all, 200 connections from an address.
    public static let standard = HubLimits(loginsPerAddressPerMinute: 30, loginsPerMinute: 300, connectionsPerAddress: 200)

    /// Creates limits.
    public init(loginsPerAddressPerMinute: Int, loginsPerMinute: Int, connectionsPerAddress: Int) {
        self.loginsPerAddressPerMinute = loginsPerAddressPerMinute
        self.loginsPerMinute = loginsPerMinute
        self.connectionsPerAddress = connectionsPerAddress
    }
}

/// The limits stages apply before doing costly work for a stranger, shared by every pipeline
/// (a reload keeps the counts).
public final class Throttle: Sendable {
    /// The hub-wide limits in force.
    public let hub: HubLimits
    /// The buckets.
    public let limiter: RateLimiter
    /// Logins, one at a time per account.
    public let accounts: SerialGate

    /// Creates a throttle.
    public init(hub: HubLimits = .standard, limiter: RateLimiter = RateLimiter(), accounts: SerialGate = SerialGate()) {
        self.hub = hub
        self.limiter = limiter
        self.accounts = accounts
    }
}
