import CareHubCore
import CareHubCrypto
import Foundation

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

    private static let totp = TOTP()

    public func newTOTPSecret() -> [UInt8] { SecureRandom.bytes(20) }

    public func totpCounter(_ code: String, secret: [UInt8], at now: Date) -> UInt64? {
        Self.totp.match(code, secret: secret, at: UInt64(max(0, now.timeIntervalSince1970)))
    }

    public func enrollment(secret: [UInt8], issuer: String, account: String) -> (secret: String, uri: String) {
        (Base32.encode(secret), Self.totp.provisioningURI(secret: secret, issuer: issuer, account: account))
    }

    /// Ten codes of 16 base32 characters (80 bits each), shown as `xxxx-xxxx-xxxx-xxxx`.
    public func newRecoveryCodes() -> [String] {
        (0..<10).map { _ in
            let text = Base32.encode(SecureRandom.bytes(10)).lowercased()
            return stride(from: 0, to: 16, by: 4).map { offset in
                String(text.dropFirst(offset).prefix(4))
            }.joined(separator: "-")
        }
    }
}
