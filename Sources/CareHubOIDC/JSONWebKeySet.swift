/// A provider's JSON Web Key Set (RFC 7517 section 5), reduced to the keys this module can use.
///
/// Keys of another `kty` or curve, with an `alg` other than RS256/ES256, meant for encryption
/// (`use` "enc") or otherwise unusable are skipped, not fatal: providers publish such keys next
/// to their signing keys. ``skippedCount`` says how many were left out.
///
///     let keys = try JSONWebKeySet(json: body)
///     let claims = try validator.validate(idToken, nonce: nonce, keys: keys, now: Date())
public struct JSONWebKeySet: Sendable {
    /// The largest key set document accepted, in bytes.
    public static let maximumByteCount = 256 * 1024
    /// The most entries a key set may hold, usable or not.
    public static let maximumKeyCount = 100

    /// The usable keys, in document order.
    public let keys: [JSONWebKey]
    /// How many entries of the document were skipped.
    public let skippedCount: Int

    /// A set of the given keys.
    public init(keys: [JSONWebKey]) {
        self.keys = keys
        self.skippedCount = 0
    }

    /// Parses a JWKS document.
    ///
    /// - Throws: ``OIDCError/tooLarge(_:)`` over ``maximumByteCount`` or
    ///   ``maximumKeyCount``; ``OIDCError/malformed(_:)`` if it is not a JSON object with a
    ///   `keys` array of objects.
    public init(json bytes: some Collection<UInt8>) throws {
        let document = try JSONValue.object(from: bytes, limit: Self.maximumByteCount, what: "key set")
        guard case .array(let entries)? = document["keys"] else { throw OIDCError.malformed("key set has no keys array") }
        guard entries.count <= Self.maximumKeyCount else {
            throw OIDCError.tooLarge("key set holds \(entries.count) keys, more than \(Self.maximumKeyCount)")
        }
        var keys: [JSONWebKey] = []
        var skipped = 0
        for entry in entries {
            guard case .object(let members) = entry else { throw OIDCError.malformed("key set entry is not an object") }
            if let key = try? JSONWebKey(jwk: members) {
                keys.append(key)
            } else {
                skipped += 1
            }
        }
        self.keys = keys
        self.skippedCount = skipped
    }

    /// The keys that may have made a signature with `algorithm` and, when the header names one,
    /// key id `keyID`.
    ///
    /// - Throws: ``OIDCError/unknownKey(_:)`` when no key has `keyID` (or, without a key id,
    ///   none fits `algorithm`): refetch the set and retry once. ``OIDCError/keyMismatch(_:)``
    ///   when keys with `keyID` exist but none has the type and `alg` that `algorithm` needs.
    public func candidates(keyID: String?, algorithm: JWSAlgorithm) throws -> [JSONWebKey] {
        let fits = { (key: JSONWebKey) in key.keyType == algorithm.keyType && (key.algorithm == nil || key.algorithm == algorithm) }
        guard let keyID else {
            let matching = keys.filter(fits)
            guard !matching.isEmpty else { throw OIDCError.unknownKey(nil) }
            return matching
        }
        let named = keys.filter { $0.keyID == keyID }
        guard !named.isEmpty else { throw OIDCError.unknownKey(keyID) }
        let matching = named.filter(fits)
        guard !matching.isEmpty else { throw OIDCError.keyMismatch(keyID) }
        return matching
    }
}
