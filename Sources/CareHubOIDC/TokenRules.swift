import CareHubCrypto
import Foundation

/// The checks ID tokens and logout tokens share: signature, issuer, audience and times.
struct TokenRules: Sendable {
    let issuer: String
    let clientID: String
    let allowedAlgorithms: Set<JWSAlgorithm>
    let clockSkew: TimeInterval
    let maximumAge: TimeInterval

    /// Parses, verifies the signature, decodes the claims and checks `iss` and `aud`.
    func verifiedClaims(_ token: String, keys: JSONWebKeySet) throws -> JWTClaims {
        let jws = try CompactJWS(token)
        try jws.verify(with: keys, allowing: allowedAlgorithms)
        let claims = try JWTClaims(payload: jws.payload)
        guard let tokenIssuer = claims.issuer, tokenIssuer == issuer else { throw OIDCError.wrongIssuer }
        guard claims.audience.contains(clientID) else { throw OIDCError.wrongAudience }
        return claims
    }

    /// `iat` present, not after `now` plus the skew, not before `now` minus the maximum age and
    /// the skew; `exp` and `nbf` checked when present (`requireExpiry` makes `exp` mandatory).
    func checkTimes(_ claims: JWTClaims, now: Date, requireExpiry: Bool) throws {
        if let expiresAt = claims.expiresAt {
            guard expiresAt > now.addingTimeInterval(-clockSkew) else { throw OIDCError.expired }
        } else if requireExpiry {
            throw OIDCError.missingClaim("exp")
        }
        if let notBefore = claims.notBefore {
            guard notBefore <= now.addingTimeInterval(clockSkew) else { throw OIDCError.notYetValid }
        }
        guard let issuedAt = claims.issuedAt else { throw OIDCError.missingClaim("iat") }
        guard issuedAt <= now.addingTimeInterval(clockSkew) else { throw OIDCError.issuedInFuture }
        guard issuedAt >= now.addingTimeInterval(-(maximumAge + clockSkew)) else { throw OIDCError.tooOld }
    }

    /// `sub`, when present, non-empty and at most 255 bytes (OpenID Connect Core section 2).
    static func checkSubject(_ subject: String) throws {
        guard !subject.isEmpty else { throw OIDCError.missingSubject }
        guard subject.utf8.count <= 255 else { throw OIDCError.invalidSubject }
    }

    static func equal(_ lhs: String, _ rhs: String) -> Bool {
        constantTimeEquals(Array(lhs.utf8), Array(rhs.utf8))
    }
}
