import COpenSSL

/// SHA-256.
public enum SHA256 {
    public static let byteCount = 32

    /// The SHA-256 digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: byteCount)
        var length: UInt32 = 0
        let status = EVP_Digest(bytes, bytes.count, &digest, &length, EVP_sha256(), nil)
        precondition(status == 1 && length == UInt32(byteCount), "OpenSSL EVP_Digest(SHA-256) failed")
        return digest
    }
}

/// HMAC (RFC 2104) over SHA-256 or, for TOTP compatibility, SHA-1.
public enum HMAC {
    /// HMAC-SHA256 of `message` under `key`.
    public static func sha256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        mac(digest: "SHA256", key: key, message: message)
    }

    /// HMAC-SHA1 of `message` under `key` (RFC 6238 TOTP's default).
    public static func sha1(key: [UInt8], message: [UInt8]) -> [UInt8] {
        mac(digest: "SHA1", key: key, message: message)
    }

    private static func mac(digest: String, key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        var length = 0
        // An empty key still needs a valid pointer for EVP_MAC_init.
        let keyBytes = key.isEmpty ? [0] : key
        let status = carehub_hmac(digest, keyBytes, key.count, message, message.count, &out, out.count, &length)
        precondition(status == 1, "OpenSSL HMAC-\(digest) failed")
        return Array(out[..<length])
    }
}

/// Constant-time comparison, for MACs, digests and codes.
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    if lhs.isEmpty { return true }
    return CRYPTO_memcmp(lhs, rhs, lhs.count) == 0
}

/// An HMAC-SHA256 key with its padded key blocks computed once, for many short messages (the
/// audit chain MACs every row). The result equals ``HMAC/sha256(key:message:)``.
///
///     let key = HMACSHA256Key(Array(secret))
///     var message = key.messagePrefix
///     message += Array("row".utf8)
///     let mac = key.mac(ofPrefixed: message)
public struct HMACSHA256Key: Sendable {
    private let innerPad: [UInt8]
    private let outerPad: [UInt8]

    /// Prepares `key` (longer than a block: hashed first, as RFC 2104 says).
    public init(_ key: [UInt8]) {
        var block = key.count > 64 ? SHA256.hash(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        innerPad = block.map { $0 ^ 0x36 }
        outerPad = block.map { $0 ^ 0x5c }
        for index in block.indices { block[index] = 0 }
    }

    /// The bytes a message buffer starts with (the inner padded key); append the message to them.
    public var messagePrefix: [UInt8] { innerPad }

    /// HMAC-SHA256 of the message in `prefixed`, which starts with ``messagePrefix``.
    public func mac(ofPrefixed prefixed: [UInt8]) -> [UInt8] {
        SHA256.hash(outerPad + SHA256.hash(prefixed))
    }

    /// HMAC-SHA256 of `message`.
    public func mac(_ message: [UInt8]) -> [UInt8] {
        mac(ofPrefixed: innerPad + message)
    }
}
