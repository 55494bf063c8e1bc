import COpenSSL

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
        return "scrypt$n=\(n),r=\(r),p=\(p)$\(Base64.encode(salt))$\(Base64.encode(derived))"
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
              let salt = Base64.decode(String(parts[2])), !salt.isEmpty,
              let hash = Base64.decode(String(parts[3])), hash.count >= 16
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

/// Standard base64 with padding, for self-describing hash strings.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { value |= UInt32(byte) << UInt32(16 - offset * 8) }
            for position in 0..<4 {
                if position <= chunk.count {
                    output.append(alphabet[Int((value >> UInt32(18 - position * 6)) & 63)])
                } else {
                    output.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.utf8 {
            if character == UInt8(ascii: "=") { break }
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 6 | UInt32(value)) & 0xFFFFFF
            bits += 6
            if bits >= 8 {
                output.append(UInt8((buffer >> UInt32(bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        return output
    }
}
