/// Time-based one-time passwords, RFC 6238 (HMAC-SHA1 by default), as authenticator apps use.
public struct TOTP: Sendable {
    public let digits: Int
    public let step: UInt64

    public init(digits: Int = 6, step: UInt64 = 30) {
        precondition((6...8).contains(digits) && step > 0)
        self.digits = digits
        self.step = step
    }

    /// The time step (counter) that `unixTime` falls in.
    public func counter(at unixTime: UInt64) -> UInt64 { unixTime / step }

    /// The code for a counter value (RFC 4226 dynamic truncation).
    public func code(secret: [UInt8], counter: UInt64) -> String {
        let message = withUnsafeBytes(of: counter.bigEndian) { Array($0) }
        let mac = HMAC.sha1(key: secret, message: message)
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let binary = (UInt32(mac[offset] & 0x7F) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: digits - value.count) + value
    }

    /// The counter a code matches within ±`window` steps of `unixTime`, or nil. Compares in
    /// constant time. The caller refuses a counter at or below the last one used (replay).
    public func match(_ code: String, secret: [UInt8], at unixTime: UInt64, window: UInt64 = 1) -> UInt64? {
        let candidate = Array(code.utf8)
        guard candidate.count == digits, candidate.allSatisfy({ (48...57).contains($0) }) else { return nil }
        let now = counter(at: unixTime)
        var found: UInt64?
        for counter in (now >= window ? now - window : 0)...(now + window) {
            if constantTimeEquals(Array(self.code(secret: secret, counter: counter).utf8), candidate) { found = counter }
        }
        return found
    }

    /// The `otpauth://` URI an authenticator app scans.
    public func provisioningURI(secret: [UInt8], issuer: String, account: String) -> String {
        let label = Self.percentEncode(issuer) + ":" + Self.percentEncode(account)
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=\(Self.percentEncode(issuer))&algorithm=SHA1&digits=\(digits)&period=\(step)"
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
