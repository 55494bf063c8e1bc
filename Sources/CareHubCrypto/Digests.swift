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
