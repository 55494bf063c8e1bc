import CareHubCrypto
import CareHubOIDC
import COpenSSL
import Foundation

/// A private key made with OpenSSL for the tests, and a JWS signer over it.
final class TestKey: @unchecked Sendable {
    enum Kind { case rsa2048, p256 }

    let kind: Kind
    private let pointer: OpaquePointer

    init(_ kind: Kind) {
        self.kind = kind
        let context = EVP_PKEY_CTX_new_from_name(nil, kind == .rsa2048 ? "RSA" : "EC", nil)
        precondition(context != nil && EVP_PKEY_keygen_init(context) == 1)
        defer { EVP_PKEY_CTX_free(context) }
        switch kind {
        case .rsa2048:
            var bits: UInt32 = 2048
            let status = "bits".withCString { name in
                var params = [OSSL_PARAM_construct_uint(name, &bits), OSSL_PARAM_construct_end()]
                return EVP_PKEY_CTX_set_params(context, &params)
            }
            precondition(status == 1)
        case .p256:
            precondition(EVP_PKEY_CTX_set_group_name(context, "P-256") == 1)
        }
        var key: OpaquePointer?
        guard EVP_PKEY_generate(context, &key) == 1, let key else { preconditionFailure("EVP_PKEY_generate failed") }
        pointer = key
    }

    deinit { EVP_PKEY_free(pointer) }

    /// The public half as JWK material, read back from OpenSSL.
    var material: JSONWebKey.Material {
        switch kind {
        case .rsa2048: .rsa(modulus: bigNumber("n", padTo: nil), exponent: bigNumber("e", padTo: nil))
        case .p256: .ecP256(x: bigNumber("qx", padTo: 32), y: bigNumber("qy", padTo: 32))
        }
    }

    /// The public key's SubjectPublicKeyInfo DER.
    var publicKeyDER: [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(pointer, &out)
        precondition(length > 0 && out != nil)
        defer { CRYPTO_free(out, #file, #line) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    /// A JWK JSON object for the public key; `extra` members are added or replace computed ones.
    func jwk(kid: String?, alg: String? = nil, extra: [String: Any] = [:]) -> [String: Any] {
        var object: [String: Any] = [:]
        switch material {
        case .rsa(let modulus, let exponent):
            object["kty"] = "RSA"
            object["n"] = Base64URL.encode(modulus)
            object["e"] = Base64URL.encode(exponent)
        case .ecP256(let x, let y):
            object["kty"] = "EC"
            object["crv"] = "P-256"
            object["x"] = Base64URL.encode(x)
            object["y"] = Base64URL.encode(y)
        }
        if let kid { object["kid"] = kid }
        if let alg { object["alg"] = alg }
        return object.merging(extra) { _, replacement in replacement }
    }

    /// The JWS signature of `message`: PKCS #1 v1.5 for RSA, `r ‖ s` for P-256.
    func sign(_ message: [UInt8]) -> [UInt8] {
        let context = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(context) }
        precondition(EVP_DigestSignInit(context, nil, EVP_sha256(), nil, pointer) == 1)
        var length = 0
        precondition(EVP_DigestSign(context, nil, &length, message, message.count) == 1)
        var signature = [UInt8](repeating: 0, count: length)
        precondition(EVP_DigestSign(context, &signature, &length, message, message.count) == 1)
        signature.removeSubrange(length...)
        return kind == .p256 ? Self.rawECDSA(fromDER: signature) : signature
    }

    private func bigNumber(_ name: String, padTo width: Int?) -> [UInt8] {
        var number: OpaquePointer?
        precondition(EVP_PKEY_get_bn_param(pointer, name, &number) == 1)
        defer { BN_free(number) }
        let count = width ?? (Int(BN_num_bits(number)) + 7) / 8
        var bytes = [UInt8](repeating: 0, count: count)
        precondition(BN_bn2binpad(number, &bytes, Int32(count)) == Int32(count))
        return bytes
    }

    /// SEQUENCE { INTEGER r, INTEGER s } → r ‖ s, 32 bytes each.
    static func rawECDSA(fromDER der: [UInt8]) -> [UInt8] {
        precondition(der[0] == 0x30)
        var index = der[1] & 0x80 == 0 ? 2 : 2 + Int(der[1] & 0x7f)
        var out: [UInt8] = []
        for _ in 0..<2 {
            precondition(der[index] == 0x02)
            let length = Int(der[index + 1])
            let integer = Array(der[(index + 2)..<(index + 2 + length)].drop { $0 == 0 })
            out += [UInt8](repeating: 0, count: 32 - integer.count) + integer
            index += 2 + length
        }
        return out
    }
}

/// The keys every test uses, made once.
enum Keys {
    static let rsa = TestKey(.rsa2048)
    static let otherRSA = TestKey(.rsa2048)
    static let ec = TestKey(.p256)

    /// A set with `rsa` as kid "rsa-1" and `ec` as kid "ec-1".
    static var set: JSONWebKeySet {
        get throws { try JSONWebKeySet(json: json(["keys": [rsa.jwk(kid: "rsa-1", alg: "RS256"), ec.jwk(kid: "ec-1")]])) }
    }
}

/// `object` as JSON; the tests only pass objects JSONSerialization can write.
func json(_ object: Any) -> [UInt8] {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
        preconditionFailure("not a JSON object: \(object)")
    }
    return Array(data)
}

func segment(_ object: Any) -> String {
    Base64URL.encode(json(object))
}

/// A compact JWS of `claims`, signed by `key` unless a signature is given.
func token(_ claims: [String: Any], key: TestKey = Keys.rsa, header: [String: Any]? = nil) -> String {
    let header = header ?? ["alg": key.kind == .rsa2048 ? "RS256" : "ES256", "kid": key.kind == .rsa2048 ? "rsa-1" : "ec-1", "typ": "JWT"]
    let input = segment(header) + "." + segment(claims)
    return input + "." + Base64URL.encode(key.sign(Array(input.utf8)))
}

let issuer = "https://id.example.org/realms/clinic"
let clientID = "carehub"
let now = Date(timeIntervalSince1970: 1_750_000_000)

/// Claims of a valid ID token at `now`, with `changes` applied (NSNull removes a claim).
func idClaims(_ changes: [String: Any] = [:]) -> [String: Any] {
    var claims: [String: Any] = [
        "iss": issuer, "sub": "u-42", "aud": clientID, "exp": now.timeIntervalSince1970 + 300,
        "iat": now.timeIntervalSince1970 - 5, "nonce": "n-0S6_WzA2Mj", "email": "dr.who@example.org",
        "groups": ["nurses", "triage"], "roles": "admin", "amr": ["pwd", "otp"], "sid": "s-1",
    ]
    for (name, value) in changes {
        claims[name] = value is NSNull ? nil : value
    }
    return claims
}

/// Claims of a valid logout token at `now`, with `changes` applied (NSNull removes a claim).
func logoutClaims(_ changes: [String: Any] = [:]) -> [String: Any] {
    var claims: [String: Any] = [
        "iss": issuer, "sub": "u-42", "aud": [clientID], "iat": now.timeIntervalSince1970 - 2, "jti": "j-77",
        "sid": "s-1", "events": [LogoutToken.backChannelLogoutEvent: [String: Any]()],
    ]
    for (name, value) in changes {
        claims[name] = value is NSNull ? nil : value
    }
    return claims
}

/// The OIDCError `body` throws, or nil.
func oidcError(_ body: () throws -> Void) -> OIDCError? {
    do {
        try body()
        return nil
    } catch let error as OIDCError {
        return error
    } catch {
        return .malformed("not an OIDCError: \(error)")
    }
}
