import COpenSSL

/// Bytes from OpenSSL's CSPRNG.
public enum SecureRandom {
    /// Returns `count` random bytes. Traps if the CSPRNG cannot be seeded: no key, nonce or
    /// token may ever be made from weak randomness.
    public static func bytes(_ count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        let status = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        precondition(status == 1, "OpenSSL RAND_bytes failed")
        return bytes
    }
}
