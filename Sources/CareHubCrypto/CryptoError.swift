/// A failure reported by libcrypto or by input that cannot be what it claims to be.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    /// A libcrypto call failed; the associated text names the operation.
    case libcrypto(String)
    /// A key had the wrong length.
    case invalidKeyLength(expected: Int, actual: Int)
    /// A sealed box was too short to hold a nonce and a tag.
    case truncatedSealedBox(Int)
    /// The tag did not verify: wrong key, wrong associated data, or altered bytes.
    case authenticationFailed
    /// A stored password hash is not in the `scrypt$n=…,r=…,p=…$salt$hash` format.
    case malformedPasswordHash
    /// An export certificate file could not be opened.
    case unreadableCertificate(String)
    /// An export certificate file holds no PEM certificate.
    case notACertificate(String)

    public var description: String {
        switch self {
        case .libcrypto(let operation): "libcrypto: \(operation) failed"
        case .invalidKeyLength(let expected, let actual): "key must be \(expected) bytes, not \(actual)"
        case .truncatedSealedBox(let count): "sealed box of \(count) bytes is shorter than nonce and tag"
        case .authenticationFailed: "authentication failed"
        case .malformedPasswordHash: "malformed password hash"
        case .unreadableCertificate(let path): "cannot read the certificate file \(path)"
        case .notACertificate(let path): "\(path) holds no PEM certificate"
        }
    }
}
