import CareHubCore
import CareHubCrypto

/// The real ``Credentials``: scrypt password hashes, 256-bit random tokens, SHA-256 token digests.
public struct ScryptCredentials: Credentials {
    private let hasher: PasswordHasher
    /// A hash of a random password, verified against when an account is missing, so that a
    /// missing account costs the same time as a wrong password.
    private let decoyHash: String

    /// Creates credentials with the given scrypt parameters.
    public init(hasher: PasswordHasher = PasswordHasher()) throws {
        self.hasher = hasher
        self.decoyHash = try hasher.hash(Base32.encode(SecureRandom.bytes(20)))
    }

    public func verify(_ password: Password, against hash: String?) -> Bool {
        guard let hash else {
            _ = hasher.verify(password.text, against: decoyHash)
            return false
        }
        return hasher.verify(password.text, against: hash)
    }

    public func newToken() -> String {
        Base32.encode(SecureRandom.bytes(32)).lowercased()
    }

    public func digest(_ token: String) -> [UInt8] {
        SHA256.hash(Array(token.utf8))
    }
}
