/// The JWS signature algorithms this module verifies (RFC 7518 section 3). Every other `alg`,
/// `none` and the HMAC family included, is refused.
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    case rs256 = "RS256"
    /// ECDSA on P-256 with SHA-256; the signature is `r ‖ s`, 32 bytes each.
    case es256 = "ES256"

    /// The algorithm a JOSE `alg` value names, or nil.
    public init?(name: String) {
        self.init(rawValue: name)
    }

    /// The JOSE `alg` value.
    public var name: String { rawValue }

    /// The key type the algorithm needs.
    public var keyType: JSONWebKey.KeyType {
        switch self {
        case .rs256: .rsa
        case .es256: .ecP256
        }
    }
}
