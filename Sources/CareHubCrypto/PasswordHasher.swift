import COpenSSL
import Foundation

/// scrypt password hashing (RFC 7914) through OpenSSL's `EVP_PBE_scrypt`.
///
/// Hashes are self-describing strings, `scrypt$n=32768,r=8,p=1$<salt b64>$<hash b64>`, so the
/// cost can be raised later without invalidating stored hashes.
public struct PasswordHasher: Sendable {
    public let n: UInt64
    public let r: UInt64
    public let p: UInt64
    public static let saltByteCount = 16
    public static let hashByteCount = 32

    /// Cost parameters; the default (N=2^15, r=8, p=1) takes ~32 MiB and tens of milliseconds.
    public init(n: UInt64 = 1 << 15, r: UInt64 = 8, p: UInt64 = 1) {
        self.n = n
        self.r = r
        self.p = p
    }

    /// Hashes `password` with a fresh random salt.
    public func hash(_ password: String) throws -> String {
        let salt = SecureRandom.bytes(Self.saltByteCount)
        let derived = try Self.derive(Array(password.utf8), salt: salt, n: n, r: r, p: p, count: Self.hashByteCount)
        return "scrypt$n=\(n),r=\(r),p=\(p)$\(Data(salt).base64EncodedString())$\(Data(derived).base64EncodedString())"
    }

    /// Whether `password` matches `encoded`; false for a malformed hash.
    public func verify(_ password: String, against encoded: String) -> Bool {
        guard let parsed = try? Self.parse(encoded),
              let derived = try? Self.derive(Array(password.utf8), salt: parsed.salt, n: parsed.n, r: parsed.r, p: parsed.p, count: parsed.hash.count)
        else { return false }
        return constantTimeEquals(derived, parsed.hash)
    }

    struct Parsed {
        var n: UInt64, r: UInt64, p: UInt64
        var salt: [UInt8], hash: [UInt8]
    }

    static func parse(_ encoded: String) throws -> Parsed {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "scrypt" else { throw CryptoError.malformedPasswordHash }
        var values: [Substring: UInt64] = [:]
        for field in parts[1].split(separator: ",") {
            let pair = field.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, let value = UInt64(pair[1]) else { throw CryptoError.malformedPasswordHash }
            values[pair[0]] = value
        }
        guard let n = values["n"], let r = values["r"], let p = values["p"],
              n > 1, n & (n - 1) == 0, n <= 1 << 20, r >= 1, r <= 32, p >= 1, p <= 16,
              let salt = Data(base64Encoded: String(parts[2])).map(Array.init), !salt.isEmpty,
              let hash = Data(base64Encoded: String(parts[3])).map(Array.init), hash.count >= 16
        else { throw CryptoError.malformedPasswordHash }
        return Parsed(n: n, r: r, p: p, salt: salt, hash: hash)
    }

    static func derive(_ password: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let maxMemory: UInt64 = 128 * r * n * p + 64 * 1024 * 1024
        // A trailing NUL keeps the buffer non-empty, so an empty password still has an address.
        var chars = password.map { CChar(bitPattern: $0) } + [0]
        defer { OPENSSL_cleanse(&chars, chars.count) }
        let status = EVP_PBE_scrypt(chars, password.count, salt, salt.count, n, r, p, maxMemory, &out, count)
        try check(status, "EVP_PBE_scrypt")
        return out
    }
}
