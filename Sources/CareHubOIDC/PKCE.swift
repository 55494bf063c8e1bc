import CareHubCrypto

/// Proof Key for Code Exchange (RFC 7636) with the S256 method: keep ``verifier`` with the
/// login attempt, send ``challenge`` in the authorization request, and the verifier with the
/// code to the token endpoint.
public struct PKCE: Sendable, Hashable {
    /// The `code_challenge_method` this type produces.
    public static let method = "S256"

    /// The `code_verifier`: 43 to 128 characters of `[A-Za-z0-9-._~]`.
    public let verifier: String
    /// The `code_challenge`: base64url(SHA-256(verifier)).
    public let challenge: String

    /// A fresh verifier of 43 characters (32 random bytes in base64url) and its challenge.
    public static func make() -> PKCE {
        let verifier = Base64URL.encode(SecureRandom.bytes(32))
        return PKCE(checked: verifier)
    }

    /// The pair for a given verifier.
    ///
    /// - Throws: ``OIDCError/malformed(_:)`` if the verifier is shorter than 43 or longer than
    ///   128 characters or holds a character outside the unreserved set.
    public init(verifier: String) throws {
        let characters = Array(verifier.utf8)
        guard (43...128).contains(characters.count), characters.allSatisfy(Self.isUnreserved) else {
            throw OIDCError.malformed("code verifier must be 43 to 128 unreserved characters")
        }
        self.init(checked: verifier)
    }

    /// base64url(SHA-256(ASCII(verifier))), RFC 7636 section 4.2.
    public static func challenge(for verifier: String) -> String {
        Base64URL.encode(SHA256.hash(Array(verifier.utf8)))
    }

    private init(checked verifier: String) {
        self.verifier = verifier
        self.challenge = Self.challenge(for: verifier)
    }

    private static func isUnreserved(_ character: UInt8) -> Bool {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
        default: false
        }
    }
}

/// Unguessable values for the authorization request's `state` and `nonce`.
public enum AuthorizationRandom {
    /// `byteCount` random bytes (at least 16) in base64url: 43 characters for the default 32.
    public static func token(byteCount: Int = 32) -> String {
        Base64URL.encode(SecureRandom.bytes(max(byteCount, 16)))
    }

    /// A fresh `state` value.
    public static func state() -> String { token() }

    /// A fresh `nonce` value.
    public static func nonce() -> String { token() }
}
