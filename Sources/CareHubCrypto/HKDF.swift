import COpenSSL

/// HKDF (RFC 5869).
public enum HKDF {
    /// Derives `outputByteCount` bytes from `key` with HKDF-SHA256.
    public static func sha256(key: [UInt8], salt: [UInt8], info: [UInt8], outputByteCount: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outputByteCount)
        let status = out.withUnsafeMutableBufferPointer { buffer in
            carehub_hkdf_sha256(key, key.count, salt, salt.count, info, info.count, buffer.baseAddress, outputByteCount)
        }
        try check(status, "HKDF-SHA256")
        return out
    }
}
