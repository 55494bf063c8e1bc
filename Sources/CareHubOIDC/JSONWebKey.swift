import COpenSSL

/// One public key from a JSON Web Key Set (RFC 7517), ready to verify signatures.
///
/// Only RSA keys of 2048 to 8192 bits and EC keys on P-256 are accepted; the key is turned into
/// an OpenSSL `EVP_PKEY` once, when it is made, so a point off the curve or a malformed modulus
/// is refused here rather than at verification.
public struct JSONWebKey: Sendable {
    /// The key types this module understands.
    public enum KeyType: String, Sendable, Hashable {
        /// `kty` "RSA".
        case rsa = "RSA"
        /// `kty` "EC" with `crv` "P-256".
        case ecP256 = "EC P-256"
    }

    /// The public key material, as big-endian bytes.
    public enum Material: Sendable, Hashable {
        /// RSA modulus `n` and public exponent `e`.
        case rsa(modulus: [UInt8], exponent: [UInt8])
        /// The P-256 point's coordinates, 32 bytes each.
        case ecP256(x: [UInt8], y: [UInt8])
    }

    /// The smallest and largest RSA modulus accepted, in bits.
    public static let rsaModulusBits = 2048...8192

    /// `kid`, if the key has one.
    public let keyID: String?
    /// `alg`, if the key is restricted to one algorithm.
    public let algorithm: JWSAlgorithm?
    /// The key material.
    public let material: Material
    let publicKey: PublicKey

    /// The key's type.
    public var keyType: KeyType {
        switch material {
        case .rsa: .rsa
        case .ecP256: .ecP256
        }
    }

    /// A key from its material.
    ///
    /// - Throws: ``OIDCError/invalidKey(_:)`` when the modulus is outside
    ///   ``rsaModulusBits``, the exponent is even, too small or longer than 8 bytes, a
    ///   coordinate is not 32 bytes, or OpenSSL refuses the key (a point not on the curve).
    public init(material: Material, keyID: String? = nil, algorithm: JWSAlgorithm? = nil) throws {
        if let algorithm {
            guard algorithm.keyType == Self.keyType(of: material) else {
                throw OIDCError.invalidKey("alg \(algorithm.name) does not fit the key type")
            }
        }
        self.keyID = keyID
        self.algorithm = algorithm
        self.material = material
        self.publicKey = try PublicKey(material)
    }

    /// A key from a JWK JSON object.
    ///
    /// - Throws: ``OIDCError/unsupportedAlgorithm(_:)`` for an `alg` other than RS256 and
    ///   ES256, ``OIDCError/invalidKey(_:)`` for an unsupported `kty` or `crv`, `use` other
    ///   than "sig", `key_ops` without "verify", private members, or bad material.
    public init(jwk members: [String: JSONValue]) throws {
        do {
            let kty = try members.string("kty")
            let keyID = try members.string("kid")
            var algorithm: JWSAlgorithm?
            if let name = try members.string("alg") {
                guard let known = JWSAlgorithm(name: name) else { throw OIDCError.unsupportedAlgorithm(name) }
                algorithm = known
            }
            if let use = try members.string("use"), use != "sig" {
                throw OIDCError.invalidKey("use is \(use), not sig")
            }
            if let operations = try members.strings("key_ops"), !operations.contains("verify") {
                throw OIDCError.invalidKey("key_ops lacks verify")
            }
            // A public key set has no business holding private parts.
            guard members["d"] == nil else { throw OIDCError.invalidKey("private key in a public key set") }
            let material: Material
            switch kty {
            case "RSA":
                material = .rsa(modulus: try Self.bytes(members, "n"), exponent: try Self.bytes(members, "e"))
            case "EC":
                guard let curve = try members.string("crv"), curve == "P-256" else { throw OIDCError.invalidKey("crv is not P-256") }
                material = .ecP256(x: try Self.bytes(members, "x"), y: try Self.bytes(members, "y"))
            case let other?:
                throw OIDCError.invalidKey("kty \(other) is not supported")
            case nil:
                throw OIDCError.invalidKey("kty is missing")
            }
            try self.init(material: material, keyID: keyID, algorithm: algorithm)
        } catch OIDCError.malformed(let what) {
            throw OIDCError.invalidKey(what)
        }
    }

    /// Whether `signature` is a valid `algorithm` signature of `message` under this key. False
    /// also when the algorithm does not fit the key or the signature has the wrong length.
    public func isValidSignature(_ signature: [UInt8], of message: [UInt8], algorithm: JWSAlgorithm) -> Bool {
        guard algorithm.keyType == keyType, self.algorithm == nil || self.algorithm == algorithm else { return false }
        switch material {
        case .rsa(let modulus, _):
            // RFC 7518 3.3: the signature is exactly as long as the modulus.
            guard signature.count == modulus.drop(while: { $0 == 0 }).count else { return false }
            return publicKey.verify(signature: signature, message: message)
        case .ecP256:
            // RFC 7518 3.4: r ‖ s, each 32 bytes; OpenSSL wants DER.
            guard signature.count == 64 else { return false }
            let der = DER.sequence(DER.unsignedInteger(Array(signature[..<32])), DER.unsignedInteger(Array(signature[32...])))
            return publicKey.verify(signature: der, message: message)
        }
    }

    private static func keyType(of material: Material) -> KeyType {
        switch material {
        case .rsa: .rsa
        case .ecP256: .ecP256
        }
    }

    private static func bytes(_ members: [String: JSONValue], _ name: String) throws -> [UInt8] {
        guard let text = try members.string(name) else { throw OIDCError.invalidKey("\(name) is missing") }
        guard let bytes = Base64URL.decode(text), !bytes.isEmpty else { throw OIDCError.invalidKey("\(name) is not base64url") }
        return bytes
    }
}

/// An OpenSSL `EVP_PKEY` holding a public key, freed with its owner. OpenSSL allows concurrent
/// verifications with one `EVP_PKEY`; nothing mutates it after construction.
final class PublicKey: @unchecked Sendable {
    private let pointer: OpaquePointer

    init(_ material: JSONWebKey.Material) throws {
        let info: [UInt8]
        switch material {
        case .rsa(let modulus, let exponent):
            let n = Array(modulus.drop { $0 == 0 })
            let bits = n.isEmpty ? 0 : n.count * 8 - n[0].leadingZeroBitCount
            guard JSONWebKey.rsaModulusBits.contains(bits) else { throw OIDCError.invalidKey("RSA modulus of \(bits) bits") }
            let e = Array(exponent.drop { $0 == 0 })
            guard let last = e.last, e.count <= 8, last & 1 == 1, e.count > 1 || last >= 3 else {
                throw OIDCError.invalidKey("RSA exponent")
            }
            info = DER.sequence(DER.rsaEncryption, DER.bitString(DER.sequence(DER.unsignedInteger(n), DER.unsignedInteger(e))))
        case .ecP256(let x, let y):
            guard x.count == 32, y.count == 32 else { throw OIDCError.invalidKey("P-256 coordinates must be 32 bytes") }
            info = DER.sequence(DER.ecPublicKeyP256, DER.bitString([0x04] + x + y))
        }
        let decoded: OpaquePointer? = info.withUnsafeBufferPointer { buffer in
            var cursor = buffer.baseAddress
            let key = d2i_PUBKEY(nil, &cursor, buffer.count)
            // Everything must have been read: no trailing bytes.
            guard let key, cursor == buffer.baseAddress.map({ $0 + buffer.count }) else {
                if let key { EVP_PKEY_free(key) }
                return nil
            }
            return key
        }
        guard let decoded else {
            ERR_clear_error()
            throw OIDCError.invalidKey("OpenSSL refused the key")
        }
        if case .ecP256 = material {
            // d2i_PUBKEY already refuses a point off the curve; the full check costs little more.
            let context = EVP_PKEY_CTX_new(decoded, nil)
            let valid = context.map { EVP_PKEY_public_check($0) == 1 } ?? false
            EVP_PKEY_CTX_free(context)
            guard valid else {
                EVP_PKEY_free(decoded)
                ERR_clear_error()
                throw OIDCError.invalidKey("P-256 point fails the public key check")
            }
        }
        pointer = decoded
    }

    deinit { EVP_PKEY_free(pointer) }

    /// Verifies a SHA-256 signature in OpenSSL's form (PKCS #1 v1.5 for RSA, DER for ECDSA).
    func verify(signature: [UInt8], message: [UInt8]) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer {
            EVP_MD_CTX_free(context)
            ERR_clear_error()
        }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, pointer) == 1 else { return false }
        return EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
    }
}
