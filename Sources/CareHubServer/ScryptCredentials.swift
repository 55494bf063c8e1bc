import CareHubCore
import CareHubCrypto
import Foundation

/// The real ``Credentials``: scrypt password hashes, 256-bit random tokens, SHA-256 token digests.
///
/// Password hashing runs on a ``BlockingPool`` of its own (half the cores, at least one thread),
/// never on the cooperative pool that carries messages; when `queueLimit` hashes already wait, a
/// login is refused with `rate_limited` instead of queueing behind them.
public struct ScryptCredentials: Credentials {
    private let hasher: PasswordHasher
    /// A hash of a random password, verified against when an account is missing, so that a
    /// missing account costs the same time as a wrong password.
    private let decoyHash: String
    private let pool: BlockingPool

    /// Creates credentials with the given scrypt parameters.
    public init(hasher: PasswordHasher = PasswordHasher(), threads: Int? = nil, queueLimit: Int = 32) throws {
        self.hasher = hasher
        self.decoyHash = try hasher.hash(Base32.encode(SecureRandom.bytes(20)))
        let threads = threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        pool = BlockingPool(name: "carehub-kdf", threads: threads, queueLimit: queueLimit)
    }

    public func verify(_ password: Password, against hash: String?) async throws -> Bool {
        let (hasher, decoy) = (self.hasher, decoyHash)
        do {
            return try await pool.run {
                // An account without a password (made by single sign-on) costs a hash too.
                guard let hash, hash != StaffUser.noPassword else {
                    _ = hasher.verify(password.text, against: decoy)
                    return false
                }
                return hasher.verify(password.text, against: hash)
            }
        } catch is BlockingPool.Full {
            throw PipelineError.rateLimited("the hub is busy checking other logins", retryAfter: 2)
        }
    }

    /// Hashes a new password on the same pool (admin API password changes).
    public func hash(_ password: Password) async throws -> String {
        let hasher = self.hasher
        do {
            return try await pool.run { try hasher.hash(password.text) }
        } catch is BlockingPool.Full {
            throw PipelineError.rateLimited("the hub is busy checking logins", retryAfter: 2)
        }
    }

    /// Stops the hashing threads once queued work is done.
    public func shutdown() { pool.shutdown() }

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
