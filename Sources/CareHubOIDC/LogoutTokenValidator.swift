import Foundation

/// A logout token that passed ``LogoutTokenValidator``: end the sessions it names, once per
/// ``jwtID``.
public struct LogoutToken: Sendable, Hashable {
    /// The event type a logout token's `events` must contain.
    public static let backChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

    /// `iss`.
    public let issuer: String
    /// `sub`: end every session of this user, or those with ``sessionID`` if both are given.
    public let subject: String?
    /// `sid`: end this provider session.
    public let sessionID: String?
    /// `jti`: refuse a second token with the same value (replay).
    public let jwtID: String
    /// All the token's claims.
    public let claims: JWTClaims
}

/// Validates logout tokens, as OpenID Connect Back-Channel Logout 1.0 section 2.6 asks.
///
/// The signature, `iss`, `aud` and `iat` are checked as for an ID token (`exp` too, when
/// present); then `events` must hold the member ``LogoutToken/backChannelLogoutEvent`` with a
/// JSON object value, `sub` or `sid` must be present, `nonce` must be absent and `jti` present.
/// Replay detection is the caller's: keep each ``LogoutToken/jwtID`` until its token is too old.
public struct LogoutTokenValidator: Sendable {
    /// The issuer identifier, compared exactly with `iss`.
    public var issuer: String
    /// This client's `client_id`.
    public var clientID: String
    /// The algorithms accepted; RS256 and ES256 unless narrowed.
    public var allowedAlgorithms: Set<JWSAlgorithm>
    /// How far the provider's clock may differ from ours, in seconds.
    public var clockSkew: TimeInterval
    /// How long after `iat` a token is still accepted, in seconds.
    public var maximumAge: TimeInterval

    /// A validator for logout tokens from `issuer` to `clientID`.
    public init(
        issuer: String, clientID: String, allowedAlgorithms: Set<JWSAlgorithm> = Set(JWSAlgorithm.allCases),
        clockSkew: TimeInterval = 60, maximumAge: TimeInterval = 600
    ) {
        self.issuer = issuer
        self.clientID = clientID
        self.allowedAlgorithms = allowedAlgorithms
        self.clockSkew = clockSkew
        self.maximumAge = maximumAge
    }

    /// Validates `token`.
    ///
    /// - Throws: an ``OIDCError`` naming the first rule the token breaks:
    ///   ``OIDCError/missingLogoutEvent``, ``OIDCError/missingSubjectAndSession``,
    ///   ``OIDCError/unexpectedNonce``, ``OIDCError/missingClaim(_:)`` ("jti") beside the
    ///   signature, issuer, audience and time failures; ``OIDCError/unknownKey(_:)`` asks for
    ///   one refetch of the key set.
    public func validate(_ token: String, keys: JSONWebKeySet, now: Date) throws -> LogoutToken {
        let rules = TokenRules(
            issuer: issuer, clientID: clientID, allowedAlgorithms: allowedAlgorithms, clockSkew: clockSkew, maximumAge: maximumAge)
        let claims = try rules.verifiedClaims(token, keys: keys)
        try rules.checkTimes(claims, now: now, requireExpiry: false)
        guard case .object? = claims.events?[LogoutToken.backChannelLogoutEvent] else { throw OIDCError.missingLogoutEvent }
        guard claims.subject != nil || claims.sessionID != nil else { throw OIDCError.missingSubjectAndSession }
        if let subject = claims.subject { try TokenRules.checkSubject(subject) }
        if let sessionID = claims.sessionID, sessionID.isEmpty { throw OIDCError.missingSubjectAndSession }
        // Section 2.4: a logout token must not carry a nonce, so an ID token is never one.
        guard claims.members["nonce"] == nil else { throw OIDCError.unexpectedNonce }
        guard let jwtID = claims.jwtID, !jwtID.isEmpty else { throw OIDCError.missingClaim("jti") }
        return LogoutToken(issuer: issuer, subject: claims.subject, sessionID: claims.sessionID, jwtID: jwtID, claims: claims)
    }
}
