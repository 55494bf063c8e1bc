import Foundation

/// The token request of the authorization code flow (RFC 6749 section 4.1.3; RFC 7636 section
/// 4.5): its form body and, for `client_secret_basic`, its `Authorization` header.
public enum TokenRequest {
    /// The `Content-Type` of ``authorizationCodeBody(code:redirectURI:codeVerifier:clientID:)``.
    public static let contentType = "application/x-www-form-urlencoded"

    /// `grant_type=authorization_code&code=…&redirect_uri=…&code_verifier=…`, each value
    /// form-encoded; `client_id` is appended when given (public clients, `client_secret_post`).
    public static func authorizationCodeBody(code: String, redirectURI: String, codeVerifier: String, clientID: String? = nil) -> String {
        var pairs: [(name: String, value: String)] = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", codeVerifier),
        ]
        if let clientID { pairs.append(("client_id", clientID)) }
        return FormEncoding.encode(pairs)
    }

    /// The `Authorization` header value for `client_secret_basic`: `Basic ` and the base64 of
    /// the form-encoded client id, a colon and the form-encoded secret (RFC 6749 section 2.3.1).
    public static func basicAuthorization(clientID: String, clientSecret: String) -> String {
        let credentials = FormEncoding.encode(clientID) + ":" + FormEncoding.encode(clientSecret)
        return "Basic " + Data(credentials.utf8).base64EncodedString()
    }
}

/// A token endpoint's successful answer (RFC 6749 section 5.1; OpenID Connect Core 3.1.3.3).
public struct TokenResponse: Sendable, Hashable {
    /// The largest response accepted, in bytes.
    public static let maximumByteCount = 64 * 1024

    /// `id_token`; present when the `openid` scope was granted. Validate it with
    /// ``IDTokenValidator`` before use.
    public let idToken: String?
    /// `access_token`.
    public let accessToken: String
    /// `token_type`, normally "Bearer".
    public let tokenType: String
    /// `expires_in`, in seconds.
    public let expiresIn: Int?
    /// `refresh_token`.
    public let refreshToken: String?
    /// `scope`, when the granted scope differs from the requested one.
    public let scope: String?

    /// Parses a token endpoint's JSON body (of any HTTP status: errors come with 400 or 401).
    ///
    /// - Throws: ``OIDCError/tokenEndpoint(error:description:)`` for an OAuth error response;
    ///   ``OIDCError/tooLarge(_:)``, ``OIDCError/malformed(_:)`` for bad JSON or types,
    ///   ``OIDCError/missingClaim(_:)`` without `access_token` or `token_type`.
    public init(json bytes: some Collection<UInt8>) throws {
        let document = try JSONValue.object(from: bytes, limit: Self.maximumByteCount, what: "token response")
        if let error = try document.string("error") {
            throw OIDCError.tokenEndpoint(error: error, description: try? document.string("error_description"))
        }
        guard let accessToken = try document.string("access_token"), !accessToken.isEmpty else {
            throw OIDCError.missingClaim("access_token")
        }
        guard let tokenType = try document.string("token_type") else { throw OIDCError.missingClaim("token_type") }
        self.accessToken = accessToken
        self.tokenType = tokenType
        idToken = try document.string("id_token")
        refreshToken = try document.string("refresh_token")
        scope = try document.string("scope")
        switch document["expires_in"] {
        case nil, .null?:
            expiresIn = nil
        case .number(let seconds)? where seconds >= 0 && seconds <= Double(Int32.max):
            expiresIn = Int(seconds)
        case .string(let text)?:
            // Some providers send the number as a string.
            guard let seconds = Int(text), seconds >= 0 else { throw OIDCError.malformed("expires_in is not a number") }
            expiresIn = seconds
        default:
            throw OIDCError.malformed("expires_in is not a number")
        }
    }
}
