@testable import CareHubCrypto
import Testing

func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

@Suite("OpenSSL primitives against published vectors")
struct VectorTests {
    @Test func sha256() {
        #expect(hexString(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hexString(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func hmacRFC4231AndRFC2202() {
        let key = Array("Jefe".utf8)
        let data = Array("what do ya want for nothing?".utf8)
        #expect(hexString(HMAC.sha256(key: key, message: data)) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(hexString(HMAC.sha1(key: key, message: data)) == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
    }

    @Test func hkdfRFC5869Case1() throws {
        let okm = try HKDF.sha256(
            key: [UInt8](repeating: 0x0b, count: 22), salt: hex("000102030405060708090a0b0c"),
            info: hex("f0f1f2f3f4f5f6f7f8f9"), outputByteCount: 42)
        #expect(hexString(okm) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test func aesGCMNISTCases13And14() throws {
        let key = SymmetricKey(bytes: [UInt8](repeating: 0, count: 32))
        let nonce = [UInt8](repeating: 0, count: 12)
        let empty = try AES256GCM.seal([], using: key, nonce: nonce)
        #expect(empty.ciphertext.isEmpty)
        #expect(hexString(empty.tag) == "530f8afbc74536b9a963b4f1c4cb738b")
        let block = try AES256GCM.seal([UInt8](repeating: 0, count: 16), using: key, nonce: nonce)
        #expect(hexString(block.ciphertext) == "cea7403d4d606b6e074ec5d3baf39d18")
        #expect(hexString(block.tag) == "d0d1c8a799996bf0265b98b5d48ab919")
    }

    @Test func scryptRFC7914() throws {
        let derived = try PasswordHasher.derive(Array("password".utf8), salt: Array("NaCl".utf8), n: 1024, r: 8, p: 16, count: 64)
        #expect(hexString(derived) == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
    }

    @Test func base32RFC4648() {
        let cases = ["": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ", "fooba": "MZXW6YTB", "foobar": "MZXW6YTBOI"]
        for (plain, encoded) in cases {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            #expect(Base32.decode(encoded) == Array(plain.utf8))
            #expect(Base32.decode(encoded.lowercased() + "====") == Array(plain.utf8))
        }
        #expect(Base32.decode("MZ1W") == nil)
    }
}

@Suite("AES-256-GCM sealing")
struct SealingTests {
    let key = SymmetricKey(randomByteCount: 32)

    @Test func roundTripWithAssociatedData() throws {
        let plain = Array("patient: my chest hurts".utf8)
        let box = try AES256GCM.seal(plain, using: key, authenticating: Array("org|room|1".utf8))
        #expect(box.combined.count == 12 + plain.count + 16)
        #expect(box.ciphertext != plain)
        let opened = try AES256GCM.open(AES256GCM.SealedBox(combined: box.combined), using: key, authenticating: Array("org|room|1".utf8))
        #expect(opened == plain)
    }

    @Test func everyAlterationIsDetected() throws {
        let box = try AES256GCM.seal(Array("hello".utf8), using: key, authenticating: [1, 2, 3])
        #expect(throws: CryptoError.authenticationFailed) { try AES256GCM.open(box, using: key, authenticating: [1, 2, 4]) }
        #expect(throws: CryptoError.authenticationFailed) { try AES256GCM.open(box, using: SymmetricKey(randomByteCount: 32), authenticating: [1, 2, 3]) }
        for index in box.combined.indices {
            var altered = box.combined
            altered[index] ^= 0x01
            #expect(throws: CryptoError.authenticationFailed) { try AES256GCM.open(AES256GCM.SealedBox(combined: altered), using: key, authenticating: [1, 2, 3]) }
        }
        #expect(throws: CryptoError.truncatedSealedBox(27)) { try AES256GCM.SealedBox(combined: [UInt8](repeating: 0, count: 27)) }
    }

    @Test func noncesAreFreshEachTime() throws {
        let first = try AES256GCM.seal(Array("same".utf8), using: key)
        let second = try AES256GCM.seal(Array("same".utf8), using: key)
        #expect(first.nonce != second.nonce)
        #expect(first.ciphertext != second.ciphertext)
    }

    @Test func wrongKeyLengthIsRefused() {
        #expect(throws: CryptoError.invalidKeyLength(expected: 32, actual: 16)) {
            try AES256GCM.seal([1], using: SymmetricKey(bytes: [UInt8](repeating: 1, count: 16)))
        }
    }
}

@Suite("password hashing")
struct PasswordTests {
    // Cheap parameters keep the suite quick; the format records them per hash.
    let hasher = PasswordHasher(n: 1 << 10, r: 8, p: 1)

    @Test func verifiesOnlyTheRightPassword() throws {
        let hash = try hasher.hash("correct horse battery staple")
        #expect(hash.hasPrefix("scrypt$n=1024,r=8,p=1$"))
        #expect(!hash.contains("correct"))
        #expect(hasher.verify("correct horse battery staple", against: hash))
        #expect(!hasher.verify("correct horse battery stapler", against: hash))
        #expect(!hasher.verify("", against: hash))
        // A hash made with other parameters still verifies: they are read from the hash.
        #expect(PasswordHasher().verify("correct horse battery staple", against: hash))
    }

    @Test func saltsDiffer() throws {
        #expect(try hasher.hash("same password") != hasher.hash("same password"))
    }

    @Test func malformedHashesNeverVerify() {
        for bad in ["", "plain", "scrypt$n=1024,r=8,p=1$$", "scrypt$n=1000,r=8,p=1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==", "bcrypt$x$y$z"] {
            #expect(!hasher.verify("anything", against: bad))
        }
    }

    @Test func randomBytesAreRandom() {
        #expect(SecureRandom.bytes(32) != SecureRandom.bytes(32))
        #expect(SecureRandom.bytes(0).isEmpty)
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2], [1, 2, 3]))
    }
}

@Suite("TOTP (RFC 6238)")
struct TOTPTests {
    let secret = Array("12345678901234567890".utf8)

    @Test func appendixBVectorsSHA1() {
        let totp = TOTP(digits: 8)
        let vectors: [(UInt64, String)] = [
            (59, "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
        ]
        for (time, code) in vectors {
            #expect(totp.code(secret: secret, counter: totp.counter(at: time)) == code)
        }
    }

    @Test func sixDigitCodesMatchWithinOneStepOnly() {
        let totp = TOTP()
        let time: UInt64 = 1_234_567_890
        let counter = totp.counter(at: time)
        let code = totp.code(secret: secret, counter: counter)
        #expect(code == "005924")
        #expect(totp.match(code, secret: secret, at: time) == counter)
        #expect(totp.match(code, secret: secret, at: time + 30) == counter)
        #expect(totp.match(code, secret: secret, at: time - 30) == counter)
        #expect(totp.match(code, secret: secret, at: time + 90) == nil)
        #expect(totp.match("00592", secret: secret, at: time) == nil)
        #expect(totp.match("00592x", secret: secret, at: time) == nil)
        #expect(totp.match(code, secret: Array("another secret 12345".utf8), at: time) == nil)
    }

    @Test func provisioningURIForAuthenticatorApps() {
        let uri = TOTP().provisioningURI(secret: secret, issuer: "Riverside Clinic", account: "nurse.joy")
        #expect(uri == "otpauth://totp/Riverside%20Clinic:nurse.joy?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Riverside%20Clinic&algorithm=SHA1&digits=6&period=30")
    }
}
