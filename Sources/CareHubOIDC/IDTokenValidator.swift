import Foundation

/// Validates ID tokens from the authorization code flow, as OpenID Connect Core section
/// 3.1.3.7 asks.
///
/// In order: the token's form and `alg` (one of ``allowedAlgorithms``), the signature under the
/// key its `kid` names, `iss` equal to ``issuer``, `aud` containing ``clientID``, `azp` equal to
/// the client id when present (and present when there are several audiences), `exp` after now
/// minus the skew, `nbf` (if any) not after now plus the skew, `iat` not after now plus the skew
/// nor older than ``maximumAge`` plus the skew, `nonce` equal to the request's, and `sub`
/// present and at most 255 bytes.
///
///     let validator = IDTokenValidator(issuer: "https://id.example.org", clientID: "carehub")
///     do {
///         claims = try validator.validate(token, nonce: nonce, keys: keys, now: Date())
///     } catch OIDCError.unknownKey {
///         keys = try await refetchKeys()   // once: the provider may have rotated its keys
///         claims = try validator.validate(token, nonce: nonce, keys: keys, now: Date())
///     }
public struct IDTokenValidator: Sendable {
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

    /// A validator for tokens from `issuer` to `clientID`.
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

    /// Validates `token` and returns its claims.
    ///
    /// - Parameters:
    ///   - nonce: the nonce sent with the authorization request; nil for a grant that sends
    ///     none (the device grant), whose token must then carry none.
    ///   - keys: the provider's current key set.
    ///   - now: the time to judge `exp`, `nbf` and `iat` by.
    /// - Throws: an ``OIDCError`` naming the first rule the token breaks;
    ///   ``OIDCError/unknownKey(_:)`` asks for one refetch of the key set.
    public func validate(_ token: String, nonce: String?, keys: JSONWebKeySet, now: Date) throws -> IDTokenClaims {
        let rules = TokenRules(
            issuer: issuer, clientID: clientID, allowedAlgorithms: allowedAlgorithms, clockSkew: clockSkew, maximumAge: maximumAge)
        let claims = try rules.verifiedClaims(token, keys: keys)
        if let party = claims.authorizedParty {
            guard party == clientID else { throw OIDCError.wrongAuthorizedParty }
        } else if claims.audience.count > 1 {
            throw OIDCError.wrongAuthorizedParty
        }
        try rules.checkTimes(claims, now: now, requireExpiry: true)
        if let nonce {
            guard let tokenNonce = claims.nonce, TokenRules.equal(tokenNonce, nonce) else { throw OIDCError.nonceMismatch }
        } else if claims.nonce != nil {
            // A grant that sent no nonce (the device grant) takes no token that carries one.
            throw OIDCError.nonceMismatch
        }
        guard let subject = claims.subject else { throw OIDCError.missingSubject }
        try TokenRules.checkSubject(subject)
        return claims
    }
}
