@testable import CareHubOIDC
import Foundation
import Testing

@Suite("ID token validation (OpenID Connect Core 3.1.3.7)")
struct IDTokenValidatorTests {
    let validator = IDTokenValidator(issuer: issuer, clientID: clientID)

    func validate(_ claims: [String: Any], key: TestKey = Keys.rsa, at time: Date = now) throws -> IDTokenClaims {
        try validator.validate(token(claims, key: key), nonce: "n-0S6_WzA2Mj", keys: Keys.set, now: time)
    }

    func failure(_ claims: [String: Any], key: TestKey = Keys.rsa, at time: Date = now) -> OIDCError? {
        oidcError { _ = try validate(claims, key: key, at: time) }
    }

    @Test func validTokensGiveTheirClaims() throws {
        for key in [Keys.rsa, Keys.ec] {
            let claims = try validate(idClaims(), key: key)
            #expect(claims.issuer == issuer)
            #expect(claims.subject == "u-42")
            #expect(claims.audience == [clientID])
            #expect(claims.expiresAt == now.addingTimeInterval(300))
            #expect(claims.authenticationMethods == ["pwd", "otp"])
            #expect(claims.sessionID == "s-1")
            #expect(claims.string("email") == "dr.who@example.org")
            #expect(claims.strings("groups") == ["nurses", "triage"])
            #expect(claims.strings("roles") == ["admin"])
            #expect(claims.string("groups") == nil)
            #expect(claims.strings("missing") == nil)
        }
    }

    @Test func eachBrokenRuleHasItsOwnError() {
        #expect(failure(idClaims(["aud": "someone-else"])) == .wrongAudience)
        #expect(failure(idClaims(["aud": ["a", "b"]])) == .wrongAudience)
        #expect(failure(idClaims(["iss": issuer + "/"])) == .wrongIssuer)
        #expect(failure(idClaims(["iss": NSNull()])) == .wrongIssuer)
        #expect(failure(idClaims(["exp": now.timeIntervalSince1970 - 61])) == .expired)
        #expect(failure(idClaims(["exp": NSNull()])) == .missingClaim("exp"))
        #expect(failure(idClaims(["iat": now.timeIntervalSince1970 + 61])) == .issuedInFuture)
        #expect(failure(idClaims(["iat": now.timeIntervalSince1970 - 661])) == .tooOld)
        #expect(failure(idClaims(["iat": NSNull()])) == .missingClaim("iat"))
        #expect(failure(idClaims(["nbf": now.timeIntervalSince1970 + 61])) == .notYetValid)
        #expect(failure(idClaims(["nonce": "n-other"])) == .nonceMismatch)
        #expect(failure(idClaims(["nonce": NSNull()])) == .nonceMismatch)
        #expect(failure(idClaims(["sub": NSNull()])) == .missingSubject)
        #expect(failure(idClaims(["sub": ""])) == .missingSubject)
        #expect(failure(idClaims(["sub": String(repeating: "s", count: 256)])) == .invalidSubject)
        #expect(failure(idClaims(["exp": "tomorrow"]))?.reason == "malformed")
    }

    @Test func authorizedPartyMustBeTheClient() throws {
        #expect(failure(idClaims(["aud": [clientID, "api"]])) == .wrongAuthorizedParty)
        #expect(failure(idClaims(["aud": [clientID, "api"], "azp": "api"])) == .wrongAuthorizedParty)
        #expect(failure(idClaims(["azp": "api"])) == .wrongAuthorizedParty)
        #expect(try validate(idClaims(["aud": [clientID, "api"], "azp": clientID])).audience == [clientID, "api"])
    }

    @Test func clockSkewIsTolerated() throws {
        _ = try validate(idClaims(["exp": now.timeIntervalSince1970 - 59]))
        _ = try validate(idClaims(["iat": now.timeIntervalSince1970 + 59, "exp": now.timeIntervalSince1970 + 600]))
        _ = try validate(idClaims(["iat": now.timeIntervalSince1970 - 659]))
        _ = try validate(idClaims(["nbf": now.timeIntervalSince1970 + 59]))
        let strict = IDTokenValidator(issuer: issuer, clientID: clientID, clockSkew: 0)
        #expect(oidcError {
            _ = try strict.validate(token(idClaims(["exp": now.timeIntervalSince1970 - 1])), nonce: "n-0S6_WzA2Mj", keys: Keys.set, now: now)
        } == .expired)
    }

    @Test func signatureFailuresComeFirst() {
        #expect(failure(idClaims(["aud": "x"]), key: Keys.otherRSA) == .badSignature)
    }

    @Test func onlyAllowedAlgorithmsAreAccepted() {
        let rsaOnly = IDTokenValidator(issuer: issuer, clientID: clientID, allowedAlgorithms: [.rs256])
        #expect(oidcError {
            _ = try rsaOnly.validate(token(idClaims(), key: Keys.ec), nonce: "n-0S6_WzA2Mj", keys: Keys.set, now: now)
        } == .unsupportedAlgorithm("ES256"))
    }

    @Test func reasonsAreStableAndDistinct() {
        let errors: [OIDCError] = [
            .malformed("x"), .tooLarge("x"), .unsupportedAlgorithm("x"), .unknownKey(nil), .keyMismatch("x"), .invalidKey("x"),
            .badSignature, .wrongIssuer, .wrongAudience, .wrongAuthorizedParty, .expired, .notYetValid, .issuedInFuture,
            .tooOld, .nonceMismatch, .missingSubject, .invalidSubject, .missingClaim("x"), .missingLogoutEvent,
            .unexpectedNonce, .missingSubjectAndSession, .invalidMetadata("x"), .insecureEndpoint("x"),
            .tokenEndpoint(error: "x", description: nil),
        ]
        #expect(Set(errors.map(\.reason)).count == errors.count)
        #expect(OIDCError.badSignature.reason == "bad_signature")
        #expect(OIDCError.wrongAudience.reason == "wrong_audience")
        #expect(OIDCError.unknownKey("k\n1").description == "no key with kid \"k?1\"")
    }
}

@Suite("Logout token validation (Back-Channel Logout 1.0, 2.6)")
struct LogoutTokenValidatorTests {
    let validator = LogoutTokenValidator(issuer: issuer, clientID: clientID)

    func failure(_ claims: [String: Any]) -> OIDCError? {
        oidcError { _ = try validator.validate(token(claims, key: Keys.ec), keys: Keys.set, now: now) }
    }

    @Test func aValidLogoutTokenGivesIssuerSubjectSessionAndJTI() throws {
        let logout = try validator.validate(token(logoutClaims(), key: Keys.ec), keys: Keys.set, now: now)
        #expect(logout.issuer == issuer)
        #expect(logout.subject == "u-42")
        #expect(logout.sessionID == "s-1")
        #expect(logout.jwtID == "j-77")
    }

    @Test func aSessionOnlyTokenIsAccepted() throws {
        let logout = try validator.validate(token(logoutClaims(["sub": NSNull()])), keys: Keys.set, now: now)
        #expect(logout.subject == nil)
        #expect(logout.sessionID == "s-1")
    }

    @Test func eachBrokenRuleHasItsOwnError() {
        #expect(failure(logoutClaims(["events": NSNull()])) == .missingLogoutEvent)
        #expect(failure(logoutClaims(["events": ["http://schemas.openid.net/event/other": [String: Any]()]])) == .missingLogoutEvent)
        #expect(failure(logoutClaims(["events": [LogoutToken.backChannelLogoutEvent: "yes"]])) == .missingLogoutEvent)
        #expect(failure(logoutClaims(["nonce": "n"])) == .unexpectedNonce)
        #expect(failure(logoutClaims(["jti": NSNull()])) == .missingClaim("jti"))
        #expect(failure(logoutClaims(["sub": NSNull(), "sid": NSNull()])) == .missingSubjectAndSession)
        #expect(failure(logoutClaims(["aud": "other"])) == .wrongAudience)
        #expect(failure(logoutClaims(["iss": "https://evil.example"])) == .wrongIssuer)
        #expect(failure(logoutClaims(["iat": now.timeIntervalSince1970 + 120])) == .issuedInFuture)
        #expect(failure(logoutClaims(["iat": now.timeIntervalSince1970 - 3600])) == .tooOld)
        #expect(failure(logoutClaims(["exp": now.timeIntervalSince1970 - 120])) == .expired)
    }

    @Test func anIDTokenIsNotALogoutToken() {
        #expect(failure(idClaims()) == .missingLogoutEvent)
        #expect(failure(idClaims(["events": [LogoutToken.backChannelLogoutEvent: [String: Any]()], "jti": "j"])) == .unexpectedNonce)
    }
}
