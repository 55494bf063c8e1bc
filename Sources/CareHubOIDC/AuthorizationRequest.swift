import Foundation

/// An authorization code request with PKCE (OpenID Connect Core section 3.1.2.1; RFC 7636
/// section 4.3), as the URL the browser is sent to.
///
///     let pkce = PKCE.make()
///     let request = AuthorizationRequest(
///         authorizationEndpoint: metadata.authorizationEndpoint, clientID: "carehub",
///         redirectURI: "https://hub.example.org/oidc/callback",
///         state: AuthorizationRandom.state(), nonce: AuthorizationRandom.nonce(), codeChallenge: pkce.challenge)
///     let location = try request.url()
public struct AuthorizationRequest: Sendable {
    /// The provider's `authorization_endpoint`; a query it already has is kept.
    public var authorizationEndpoint: URL
    /// `client_id`.
    public var clientID: String
    /// `redirect_uri`, exactly as registered with the provider.
    public var redirectURI: String
    /// The scopes, joined by spaces into `scope`; "openid" is added first when missing.
    public var scopes: [String]
    /// `state`.
    public var state: String
    /// `nonce`.
    public var nonce: String
    /// `code_challenge` (S256).
    public var codeChallenge: String
    /// Further parameters (`prompt`, `login_hint`, …), appended in order.
    public var additionalParameters: [(name: String, value: String)]

    /// A request for the given values.
    public init(
        authorizationEndpoint: URL, clientID: String, redirectURI: String, scopes: [String] = ["openid"],
        state: String, nonce: String, codeChallenge: String, additionalParameters: [(name: String, value: String)] = []
    ) {
        self.authorizationEndpoint = authorizationEndpoint
        self.clientID = clientID
        self.redirectURI = redirectURI
        self.scopes = scopes
        self.state = state
        self.nonce = nonce
        self.codeChallenge = codeChallenge
        self.additionalParameters = additionalParameters
    }

    /// The query parameters, in the order they appear in the URL.
    public var parameters: [(name: String, value: String)] {
        let scope = (scopes.contains("openid") ? scopes : ["openid"] + scopes).joined(separator: " ")
        return [
            ("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI), ("scope", scope),
            ("state", state), ("nonce", nonce), ("code_challenge", codeChallenge), ("code_challenge_method", PKCE.method),
        ] + additionalParameters
    }

    /// The authorization URL.
    ///
    /// - Throws: ``OIDCError/insecureEndpoint(_:)`` if the endpoint breaks ``EndpointPolicy``.
    public func url() throws -> URL {
        let endpoint = authorizationEndpoint.absoluteString
        guard EndpointPolicy.isAllowed(endpoint) else { throw OIDCError.insecureEndpoint("authorization_endpoint") }
        let separator = endpoint.contains("?") ? (endpoint.hasSuffix("?") || endpoint.hasSuffix("&") ? "" : "&") : "?"
        guard let url = URL(string: endpoint + separator + FormEncoding.encode(parameters)) else {
            throw OIDCError.insecureEndpoint("authorization_endpoint")
        }
        return url
    }
}
