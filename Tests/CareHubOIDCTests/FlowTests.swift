@testable import CareHubOIDC
import Foundation
import Testing

@Suite("PKCE, state and nonce")
struct PKCETests {
    @Test func challengeMatchesRFC7636AppendixB() throws {
        #expect(PKCE.challenge(for: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        #expect(try PKCE(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    @Test func madeVerifiersAreUnreservedAndFresh() {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        let first = PKCE.make()
        let second = PKCE.make()
        #expect((43...128).contains(first.verifier.count))
        #expect(first.verifier.allSatisfy(unreserved.contains))
        #expect(first.challenge == PKCE.challenge(for: first.verifier))
        #expect(first.verifier != second.verifier)
        #expect(AuthorizationRandom.state() != AuthorizationRandom.state())
        #expect(AuthorizationRandom.nonce().count == 43)
    }

    @Test func badVerifiersAreRefused() {
        #expect(throws: OIDCError.self) { try PKCE(verifier: String(repeating: "a", count: 42)) }
        #expect(throws: OIDCError.self) { try PKCE(verifier: String(repeating: "a", count: 129)) }
        #expect(throws: OIDCError.self) { try PKCE(verifier: String(repeating: "a", count: 42) + "+") }
    }
}

@Suite("Discovery documents and endpoint URLs")
struct MetadataTests {
    func document(_ changes: [String: Any] = [:]) -> [UInt8] {
        var object: [String: Any] = [
            "issuer": issuer, "authorization_endpoint": issuer + "/protocol/openid-connect/auth",
            "token_endpoint": issuer + "/protocol/openid-connect/token", "jwks_uri": issuer + "/protocol/openid-connect/certs",
            "end_session_endpoint": issuer + "/protocol/openid-connect/logout",
            "id_token_signing_alg_values_supported": ["PS256", "RS256", "ES256"],
            "code_challenge_methods_supported": ["plain", "S256"], "backchannel_logout_supported": true,
        ]
        for (name, value) in changes { object[name] = value is NSNull ? nil : value }
        return json(object)
    }

    @Test func aGoodDocumentParses() throws {
        let metadata = try OIDCProviderMetadata(json: document(), expectedIssuer: issuer)
        #expect(metadata.tokenEndpoint.absoluteString == issuer + "/protocol/openid-connect/token")
        #expect(metadata.endSessionEndpoint != nil)
        #expect(metadata.deviceAuthorizationEndpoint == nil)
        #expect(metadata.usableSigningAlgorithms == [.rs256, .es256])
        #expect(metadata.codeChallengeMethods.contains("S256"))
        #expect(metadata.backChannelLogoutSupported)
    }

    @Test func theIssuerMustMatchExactly() {
        #expect(oidcError { _ = try OIDCProviderMetadata(json: document(), expectedIssuer: issuer + "/") } == .wrongIssuer)
        #expect(oidcError { _ = try OIDCProviderMetadata(json: document(["issuer": issuer + "/"]), expectedIssuer: issuer) } == .wrongIssuer)
    }

    @Test func endpointsMustBeHTTPSOrLoopback() {
        #expect(oidcError { _ = try OIDCProviderMetadata(json: document(["token_endpoint": "http://id.example.org/token"]), expectedIssuer: issuer) }
            == .insecureEndpoint("token_endpoint"))
        #expect(oidcError { _ = try OIDCProviderMetadata(json: document(["jwks_uri": "/certs"]), expectedIssuer: issuer) } == .insecureEndpoint("jwks_uri"))
        #expect(oidcError { _ = try OIDCProviderMetadata(json: document(["jwks_uri": NSNull()]), expectedIssuer: issuer) }
            == .invalidMetadata("jwks_uri is missing"))
        #expect(oidcError { _ = try OIDCProviderMetadata(json: document(["id_token_signing_alg_values_supported": NSNull()]), expectedIssuer: issuer) }?
            .reason == "invalid_metadata")
        let local = "http://127.0.0.1:8080/realms/dev"
        let metadata = try? OIDCProviderMetadata(
            json: document(["issuer": local, "authorization_endpoint": "http://localhost:8080/auth", "token_endpoint": "http://[::1]:8080/token",
                            "jwks_uri": "http://127.9.8.7/certs"]),
            expectedIssuer: local)
        #expect(metadata?.issuer == local)
    }

    @Test func theLoopbackRule() {
        for allowed in ["https://id.example.org", "https://id.example.org/realms/a/", "HTTPS://ID.EXAMPLE.ORG/x?y=1", "http://127.0.0.1",
                        "http://127.255.0.1:9000/x", "http://localhost:8080", "http://LOCALHOST/", "http://[::1]:8080/", "http://[0:0:0:0:0:0:0:1]/"] {
            #expect(EndpointPolicy.isAllowed(allowed), "\(allowed)")
        }
        for refused in ["http://id.example.org", "http://128.0.0.1", "http://127.0.0.1.example.org", "http://localhost.example.org",
                        "http://[::2]/", "http://[::ffff:127.0.0.1]/", "ftp://127.0.0.1/", "https:///path", "/relative", "https://user@id.example.org/",
                        "https://id.example.org/#frag", "http://0x7f000001/", "javascript:alert(1)"] {
            #expect(!EndpointPolicy.isAllowed(refused), "\(refused)")
        }
    }
}

@Suite("Authorization and token requests")
struct RequestTests {
    @Test func theAuthorizeURLIsEncoded() throws {
        let request = AuthorizationRequest(
            authorizationEndpoint: try #require(URL(string: "https://id.example.org/auth?kc_idp_hint=corp")), clientID: "care hub",
            redirectURI: "https://hub.example.org/oidc/callback?x=1&y=ä", scopes: ["openid", "email", "groups"],
            state: "s/+=", nonce: "n~1", codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            additionalParameters: [("prompt", "login")])
        #expect(try request.url().absoluteString == "https://id.example.org/auth?kc_idp_hint=corp&response_type=code&client_id=care+hub"
            + "&redirect_uri=https%3A%2F%2Fhub.example.org%2Foidc%2Fcallback%3Fx%3D1%26y%3D%C3%A4&scope=openid+email+groups"
            + "&state=s%2F%2B%3D&nonce=n%7E1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&prompt=login")
        let bare = AuthorizationRequest(
            authorizationEndpoint: try #require(URL(string: "https://id.example.org/auth")), clientID: "c", redirectURI: "https://h/cb",
            scopes: ["email"], state: "s", nonce: "n", codeChallenge: "c")
        #expect(try bare.url().absoluteString.hasPrefix("https://id.example.org/auth?response_type=code&client_id=c&"))
        #expect(try bare.url().absoluteString.contains("&scope=openid+email&"))
        let insecure = AuthorizationRequest(
            authorizationEndpoint: try #require(URL(string: "http://id.example.org/auth")), clientID: "c", redirectURI: "https://h/cb",
            state: "s", nonce: "n", codeChallenge: "c")
        #expect(oidcError { _ = try insecure.url() } == .insecureEndpoint("authorization_endpoint"))
    }

    @Test func theTokenRequestBodyAndBasicHeader() {
        #expect(TokenRequest.authorizationCodeBody(code: "Splx/lOz+YZ=", redirectURI: "https://hub.example.org/cb?a=b", codeVerifier: "v~1")
            == "grant_type=authorization_code&code=Splx%2FlOz%2BYZ%3D&redirect_uri=https%3A%2F%2Fhub.example.org%2Fcb%3Fa%3Db&code_verifier=v%7E1")
        #expect(TokenRequest.authorizationCodeBody(code: "c", redirectURI: "r", codeVerifier: "v", clientID: "my app")
            == "grant_type=authorization_code&code=c&redirect_uri=r&code_verifier=v&client_id=my+app")
        // base64("s6BhdRkqt3:7Fjfp0ZBr1KtDRbnfVdmIw"), RFC 6749 section 4.1.3's example.
        #expect(TokenRequest.basicAuthorization(clientID: "s6BhdRkqt3", clientSecret: "7Fjfp0ZBr1KtDRbnfVdmIw")
            == "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3")
        // "care hub" and "p:ss/ä" form-encoded first: "care+hub:p%3Ass%2F%C3%A4".
        #expect(TokenRequest.basicAuthorization(clientID: "care hub", clientSecret: "p:ss/ä")
            == "Basic " + Data("care+hub:p%3Ass%2F%C3%A4".utf8).base64EncodedString())
    }

    @Test func tokenResponsesParse() throws {
        let response = try TokenResponse(json: json([
            "access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": "a.b.c", "refresh_token": "rt",
        ]))
        #expect(response.idToken == "a.b.c")
        #expect(response.accessToken == "at")
        #expect(response.expiresIn == 300)
        #expect(try TokenResponse(json: json(["access_token": "at", "token_type": "Bearer", "expires_in": "60"])).expiresIn == 60)
        #expect(oidcError { _ = try TokenResponse(json: json(["error": "invalid_grant", "error_description": "Code not valid"])) }
            == .tokenEndpoint(error: "invalid_grant", description: "Code not valid"))
        #expect(oidcError { _ = try TokenResponse(json: json(["token_type": "Bearer"])) } == .missingClaim("access_token"))
        #expect(oidcError { _ = try TokenResponse(json: Array("<html>".utf8)) }?.reason == "malformed")
    }
}
