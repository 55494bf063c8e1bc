/// The port for password checks and random tokens.
///
/// Implementations must compare in constant time, must spend about as long on a missing account
/// (`hash == nil`) as on a wrong password, and must make tokens of at least 128 random bits.
public protocol Credentials: Sendable {
    /// Whether `password` matches the encoded `hash`; `nil` means there is no account, and the answer is `false`.
    func verify(_ password: Password, against hash: String?) -> Bool
    /// A new random token, safe to put in a URL.
    func newToken() -> String
    /// The digest under which a token is stored.
    func digest(_ token: String) -> [UInt8]
}
