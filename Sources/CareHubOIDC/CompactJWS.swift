/// The protected header of a compact JWS: the members this module reads.
public struct JWSHeader: Sendable, Hashable {
    /// `alg`.
    public let algorithm: JWSAlgorithm
    /// `kid`, if present.
    public let keyID: String?
    /// `typ`, if present (for instance "JWT" or "logout+jwt").
    public let type: String?
}

/// A JWS in compact serialization (RFC 7515 section 7.1): `header.payload.signature`, each
/// base64url without padding. Parsing checks the form and the algorithm; ``verify(with:allowing:)``
/// checks the signature.
public struct CompactJWS: Sendable {
    /// The longest token accepted, in bytes.
    public static let maximumByteCount = 16 * 1024

    /// The decoded protected header.
    public let header: JWSHeader
    /// The decoded payload bytes (for a JWT, a JSON object).
    public let payload: [UInt8]
    /// The decoded signature bytes.
    public let signature: [UInt8]
    /// The bytes the signature covers: the first two parts as they appear in the token.
    public let signingInput: [UInt8]

    /// Parses `token`.
    ///
    /// - Throws: ``OIDCError/tooLarge(_:)`` over ``maximumByteCount``;
    ///   ``OIDCError/malformed(_:)`` if it is not three base64url parts with a JSON object
    ///   header naming `alg`, or the header has `crit`; ``OIDCError/unsupportedAlgorithm(_:)``
    ///   for any `alg` but RS256 and ES256 (`none` and HS256 included).
    public init(_ token: String) throws {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maximumByteCount else {
            throw OIDCError.tooLarge("token is over \(Self.maximumByteCount) bytes")
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw OIDCError.malformed("token has \(parts.count) parts, not 3") }
        guard let headerBytes = Base64URL.decode(String(decoding: parts[0], as: UTF8.self)) else {
            throw OIDCError.malformed("header is not base64url")
        }
        let members = try JSONValue.object(from: headerBytes, limit: Self.maximumByteCount, what: "header")
        guard let name = try members.string("alg") else { throw OIDCError.malformed("header has no alg") }
        guard let algorithm = JWSAlgorithm(name: name) else { throw OIDCError.unsupportedAlgorithm(name) }
        // RFC 7515 4.1.11: extensions named in crit must be understood; this module knows none.
        guard members["crit"] == nil else { throw OIDCError.malformed("header has crit") }
        header = JWSHeader(algorithm: algorithm, keyID: try members.string("kid"), type: try members.string("typ"))
        guard let payload = Base64URL.decode(String(decoding: parts[1], as: UTF8.self)) else {
            throw OIDCError.malformed("payload is not base64url")
        }
        guard let signature = Base64URL.decode(String(decoding: parts[2], as: UTF8.self)), !signature.isEmpty else {
            throw OIDCError.malformed("signature is not base64url")
        }
        self.payload = payload
        self.signature = signature
        self.signingInput = Array(bytes[..<(parts[1].endIndex)])
    }

    /// Checks the signature and returns the key that made it.
    ///
    /// The header's `kid` selects the key when present; a key whose `alg` is set must equal the
    /// header's, and its type must fit the algorithm. Without a `kid`, every fitting key is tried.
    ///
    /// - Throws: ``OIDCError/unsupportedAlgorithm(_:)`` if `allowing` lacks the header's
    ///   algorithm; ``OIDCError/unknownKey(_:)`` or ``OIDCError/keyMismatch(_:)`` from
    ///   ``JSONWebKeySet/candidates(keyID:algorithm:)``; ``OIDCError/badSignature``.
    @discardableResult
    public func verify(with keys: JSONWebKeySet, allowing: Set<JWSAlgorithm> = Set(JWSAlgorithm.allCases)) throws -> JSONWebKey {
        guard allowing.contains(header.algorithm) else { throw OIDCError.unsupportedAlgorithm(header.algorithm.name) }
        for key in try keys.candidates(keyID: header.keyID, algorithm: header.algorithm)
        where key.isValidSignature(signature, of: signingInput, algorithm: header.algorithm) {
            return key
        }
        throw OIDCError.badSignature
    }
}
