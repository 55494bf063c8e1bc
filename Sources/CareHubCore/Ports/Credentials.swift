import Foundation

/// Secrets and the checks on them: passwords, tokens, TOTP codes, recovery codes.
public protocol Credentials: Sendable {
    /// Whether `password` matches `hash`. With a nil hash (no such account) it still does the
    /// same work and returns false, so timing does not reveal which accounts exist. The work
    /// (a memory-hard hash) must not run on the caller's executor; an implementation that cannot
    /// take more work now throws a `rate_limited` ``PipelineError``.
    func verify(_ password: Password, against hash: String?) async throws -> Bool
    /// A new random token (session or reconnect), at least 128 bits.
    func newToken() -> String
    /// The digest a token or recovery code is stored as.
    func digest(_ token: String) -> [UInt8]
    /// A new random TOTP secret.
    func newTOTPSecret() -> [UInt8]
    /// The time step `code` matches for `secret` around `now`, or nil.
    func totpCounter(_ code: String, secret: [UInt8], at now: Date) -> UInt64?
    /// The secret in base32 and the `otpauth://` URI for an authenticator app.
    func enrollment(secret: [UInt8], issuer: String, account: String) -> (secret: String, uri: String)
    /// Ten new one-time recovery codes.
    func newRecoveryCodes() -> [String]
}
