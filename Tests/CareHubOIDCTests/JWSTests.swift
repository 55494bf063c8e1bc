import CareHubCrypto
@testable import CareHubOIDC
import Foundation
import Testing

@Suite("Compact JWS signatures under real OpenSSL keys")
struct JWSTests {
    @Test func rs256AndES256TokensVerify() throws {
        let keys = try Keys.set
        let rsa = try CompactJWS(token(idClaims(), key: Keys.rsa)).verify(with: keys)
        #expect(rsa.keyID == "rsa-1")
        let ec = try CompactJWS(token(idClaims(), key: Keys.ec)).verify(with: keys)
        #expect(ec.keyID == "ec-1")
    }

    @Test func aFlippedSignatureBitIsABadSignature() throws {
        let keys = try Keys.set
        for key in [Keys.rsa, Keys.ec] {
            let parts = token(idClaims(), key: key).split(separator: ".").map(String.init)
            var signature = try #require(Base64URL.decode(parts[2]))
            signature[signature.count / 2] ^= 0x01
            let altered = parts[0] + "." + parts[1] + "." + Base64URL.encode(signature)
            #expect(oidcError { try CompactJWS(altered).verify(with: keys) } == .badSignature)
        }
    }

    @Test func anAlteredPayloadIsABadSignature() throws {
        let parts = token(idClaims(), key: Keys.ec).split(separator: ".").map(String.init)
        let altered = parts[0] + "." + segment(idClaims(["sub": "u-43"])) + "." + parts[2]
        #expect(oidcError { try CompactJWS(altered).verify(with: Keys.set) } == .badSignature)
    }

    @Test func aTokenSignedByAnotherKeyUnderTheSameKidIsABadSignature() throws {
        let forged = token(idClaims(), key: Keys.otherRSA, header: ["alg": "RS256", "kid": "rsa-1"])
        #expect(oidcError { try CompactJWS(forged).verify(with: Keys.set) } == .badSignature)
    }

    @Test func algNoneIsRefused() throws {
        let unsigned = segment(["alg": "none"]) + "." + segment(idClaims()) + "."
        #expect(oidcError { _ = try CompactJWS(unsigned) } == .unsupportedAlgorithm("none"))
        let withSignature = unsigned + "AAAA"
        #expect(oidcError { _ = try CompactJWS(withSignature) } == .unsupportedAlgorithm("none"))
    }

    @Test func hs256WithThePublicKeyAsSecretIsRefused() throws {
        let input = segment(["alg": "HS256", "kid": "rsa-1"]) + "." + segment(idClaims())
        for secret in [Keys.rsa.publicKeyDER, Array(Base64URL.encode(Keys.rsa.publicKeyDER).utf8)] {
            let forged = input + "." + Base64URL.encode(HMAC.sha256(key: secret, message: Array(input.utf8)))
            #expect(oidcError { try CompactJWS(forged).verify(with: Keys.set) } == .unsupportedAlgorithm("HS256"))
        }
    }

    @Test func anUnknownKidIsUnknownKeySoTheCallerCanRefetch() throws {
        let rotated = token(idClaims(), key: Keys.rsa, header: ["alg": "RS256", "kid": "rsa-2"])
        let error = oidcError { try CompactJWS(rotated).verify(with: Keys.set) }
        #expect(error == .unknownKey("rsa-2"))
        #expect(error?.reason == "unknown_key")
        // After the refetch, the new key verifies.
        let refetched = try JSONWebKeySet(json: json(["keys": [Keys.rsa.jwk(kid: "rsa-2")]]))
        #expect(try CompactJWS(rotated).verify(with: refetched).keyID == "rsa-2")
    }

    @Test func aKidWhoseKeyHasAnotherTypeOrAlgIsAKeyMismatch() throws {
        let rs256UnderECKid = token(idClaims(), key: Keys.rsa, header: ["alg": "RS256", "kid": "ec-1"])
        #expect(oidcError { try CompactJWS(rs256UnderECKid).verify(with: Keys.set) } == .keyMismatch("ec-1"))
    }

    @Test func withoutKidEveryFittingKeyIsTried() throws {
        let keys = try JSONWebKeySet(json: json(["keys": [Keys.otherRSA.jwk(kid: "a"), Keys.rsa.jwk(kid: "b"), Keys.ec.jwk(kid: "c")]]))
        let noKid = token(idClaims(), key: Keys.rsa, header: ["alg": "RS256"])
        #expect(try CompactJWS(noKid).verify(with: keys).keyID == "b")
        let ecOnly = try JSONWebKeySet(json: json(["keys": [Keys.ec.jwk(kid: "c")]]))
        #expect(oidcError { try CompactJWS(noKid).verify(with: ecOnly) } == .unknownKey(nil))
    }

    @Test func anES256SignatureThatIsNot64BytesIsRefused() throws {
        let parts = token(idClaims(), key: Keys.ec).split(separator: ".").map(String.init)
        let raw = try #require(Base64URL.decode(parts[2]))
        let der = DER.sequence(DER.unsignedInteger(Array(raw[..<32])), DER.unsignedInteger(Array(raw[32...])))
        for signature in [der, Array(raw.dropLast()), raw + [0]] {
            let altered = parts[0] + "." + parts[1] + "." + Base64URL.encode(signature)
            #expect(oidcError { try CompactJWS(altered).verify(with: Keys.set) } == .badSignature)
        }
        // The DER helper turns r ‖ s back into what the signer produced: the original verifies.
        #expect(TestKey.rawECDSA(fromDER: der) == raw)
    }

    @Test func malformedTokensAreRefused() {
        let good = token(idClaims())
        #expect(oidcError { _ = try CompactJWS("a.b") }?.reason == "malformed")
        #expect(oidcError { _ = try CompactJWS(good + ".x") }?.reason == "malformed")
        #expect(oidcError { _ = try CompactJWS(good + "=") }?.reason == "malformed")
        #expect(oidcError { _ = try CompactJWS(String(repeating: "a", count: 16 * 1024 + 1)) }?.reason == "too_large")
        let crit = segment(["alg": "RS256", "crit": ["exp"]]) + ".e30.AAAA"
        #expect(oidcError { _ = try CompactJWS(crit) } == .malformed("header has crit"))
    }

    @Test func base64URLIsStrict() {
        #expect(Base64URL.encode(Array("any carnal pleas".utf8)) == "YW55IGNhcm5hbCBwbGVhcw")
        #expect(Base64URL.decode("YW55IGNhcm5hbCBwbGVhcw") == Array("any carnal pleas".utf8))
        #expect(Base64URL.encode([0xfb, 0xff]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xfb, 0xff])
        #expect(Base64URL.decode("-_9") == nil)  // non-zero unused bits
        #expect(Base64URL.decode("YQ==") == nil)
        #expect(Base64URL.decode("Y+8") == nil)
        #expect(Base64URL.decode("YWJjZ") == nil)
    }
}

@Suite("JSON Web Key Sets")
struct KeySetTests {
    @Test func unsupportedAndUnusableKeysAreSkipped() throws {
        let document: [String: Any] = ["keys": [
            ["kty": "oct", "k": "c2VjcmV0", "kid": "hmac"],
            Keys.rsa.jwk(kid: "enc", extra: ["use": "enc"]),
            Keys.rsa.jwk(kid: "oaep", alg: "RSA-OAEP"),
            Keys.rsa.jwk(kid: "rs384", alg: "RS384"),
            ["kty": "EC", "crv": "P-384", "kid": "p384", "x": Base64URL.encode([UInt8](repeating: 1, count: 48)), "y": Base64URL.encode([UInt8](repeating: 1, count: 48))],
            ["kty": "RSA", "kid": "short", "n": Base64URL.encode([0xc1] + [UInt8](repeating: 0xff, count: 127)), "e": "AQAB"],
            Keys.ec.jwk(kid: "off-curve", extra: ["y": Base64URL.encode([UInt8](repeating: 7, count: 32))]),
            Keys.rsa.jwk(kid: "rsa-1", alg: "RS256", extra: ["use": "sig"]),
            Keys.ec.jwk(kid: "ec-1", alg: "ES256"),
        ]]
        let set = try JSONWebKeySet(json: json(document))
        #expect(set.keys.map(\.keyID) == ["rsa-1", "ec-1"])
        #expect(set.skippedCount == 7)
        #expect(try CompactJWS(token(idClaims(), key: Keys.ec)).verify(with: set).keyID == "ec-1")
    }

    @Test func keyMaterialIsChecked() throws {
        guard case .rsa(let modulus, _) = Keys.rsa.material, case .ecP256(let x, let y) = Keys.ec.material else {
            Issue.record("wrong material")
            return
        }
        #expect(throws: OIDCError.self) { try JSONWebKey(material: .rsa(modulus: modulus, exponent: [2])) }
        #expect(throws: OIDCError.self) { try JSONWebKey(material: .rsa(modulus: Array(modulus.dropFirst(1)), exponent: [1, 0, 1])) }
        #expect(throws: OIDCError.self) { try JSONWebKey(material: .ecP256(x: Array(x.dropFirst()), y: y)) }
        #expect(throws: OIDCError.self) { try JSONWebKey(material: .ecP256(x: y, y: x)) }
        #expect(throws: OIDCError.self) { try JSONWebKey(material: .ecP256(x: x, y: y), algorithm: .rs256) }
        #expect(try JSONWebKey(material: .ecP256(x: x, y: y), keyID: "k").keyType == .ecP256)
        #expect(try JSONWebKey(material: .rsa(modulus: [0] + modulus, exponent: [0, 1, 0, 1])).keyType == .rsa)
    }

    @Test func setsOverTheLimitsAreRefused() throws {
        let many = [[String: Any]](repeating: Keys.ec.jwk(kid: "k"), count: 101)
        #expect(oidcError { _ = try JSONWebKeySet(json: json(["keys": many])) }?.reason == "too_large")
        let big = [UInt8](repeating: UInt8(ascii: " "), count: 256 * 1024 + 1)
        #expect(oidcError { _ = try JSONWebKeySet(json: big) }?.reason == "too_large")
        #expect(oidcError { _ = try JSONWebKeySet(json: Array("{\"keys\": 3}".utf8)) }?.reason == "malformed")
        #expect(oidcError { _ = try JSONWebKeySet(json: Array("[]".utf8)) }?.reason == "malformed")
    }
}
