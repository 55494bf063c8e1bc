/// Why a token, key set, discovery document or token response was refused.
///
/// Every case has a stable, short ``reason`` for audit rows and metrics; the ``description`` is
/// for logs and names no token contents beyond what identifies the failure (a key id, a claim
/// name, the provider's OAuth error code).
///
/// ``unknownKey(_:)`` is the one failure a caller should answer by refetching the provider's
/// key set once and validating again: the provider may have rotated its keys.
public enum OIDCError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The input is not what it claims to be (not three base64url parts, not JSON, a claim of
    /// the wrong type); the text names what was wrong.
    case malformed(String)
    /// The input is larger than the limit, in bytes or entries.
    case tooLarge(String)
    /// The token's `alg` is not one this module verifies, or not one the caller allows.
    case unsupportedAlgorithm(String)
    /// No key in the set has the token's `kid` (or, without a `kid`, none fits its `alg`).
    /// Refetch the key set once and retry.
    case unknownKey(String?)
    /// A key with the token's `kid` exists but its type or `alg` does not fit the token's `alg`.
    case keyMismatch(String)
    /// A JSON Web Key cannot be used: bad encoding, wrong size, or a point not on the curve.
    case invalidKey(String)
    /// The signature does not verify under the selected key.
    case badSignature
    /// `iss` is not the configured issuer.
    case wrongIssuer
    /// `aud` does not contain the client id.
    case wrongAudience
    /// `azp` is present and not the client id, or missing although there are several audiences.
    case wrongAuthorizedParty
    /// `exp` lies before now minus the clock skew.
    case expired
    /// `nbf` lies after now plus the clock skew.
    case notYetValid
    /// `iat` lies after now plus the clock skew.
    case issuedInFuture
    /// `iat` lies further back than the maximum age plus the clock skew.
    case tooOld
    /// `nonce` is missing or not the nonce sent with the authorization request.
    case nonceMismatch
    /// `sub` is missing or empty.
    case missingSubject
    /// `sub` is longer than 255 bytes.
    case invalidSubject
    /// A claim the token must carry is missing; the text names it.
    case missingClaim(String)
    /// A logout token's `events` lacks the back-channel logout event.
    case missingLogoutEvent
    /// A logout token carries a `nonce`, which the specification forbids.
    case unexpectedNonce
    /// A logout token carries neither `sub` nor `sid`.
    case missingSubjectAndSession
    /// A discovery document is incomplete or inconsistent; the text names the field.
    case invalidMetadata(String)
    /// An endpoint is not an absolute `https` URL (nor `http` on a loopback host); the text
    /// names the field.
    case insecureEndpoint(String)
    /// The token endpoint answered with an OAuth error (RFC 6749 section 5.2).
    case tokenEndpoint(error: String, description: String?)

    /// A stable snake_case word for audit rows, one per case.
    public var reason: String {
        switch self {
        case .malformed: "malformed"
        case .tooLarge: "too_large"
        case .unsupportedAlgorithm: "unsupported_algorithm"
        case .unknownKey: "unknown_key"
        case .keyMismatch: "key_mismatch"
        case .invalidKey: "invalid_key"
        case .badSignature: "bad_signature"
        case .wrongIssuer: "wrong_issuer"
        case .wrongAudience: "wrong_audience"
        case .wrongAuthorizedParty: "wrong_authorized_party"
        case .expired: "expired"
        case .notYetValid: "not_yet_valid"
        case .issuedInFuture: "issued_in_future"
        case .tooOld: "too_old"
        case .nonceMismatch: "nonce_mismatch"
        case .missingSubject: "missing_subject"
        case .invalidSubject: "invalid_subject"
        case .missingClaim: "missing_claim"
        case .missingLogoutEvent: "missing_logout_event"
        case .unexpectedNonce: "unexpected_nonce"
        case .missingSubjectAndSession: "missing_subject_and_session"
        case .invalidMetadata: "invalid_metadata"
        case .insecureEndpoint: "insecure_endpoint"
        case .tokenEndpoint: "token_endpoint_error"
        }
    }

    public var description: String {
        switch self {
        case .malformed(let what): "malformed: \(what)"
        case .tooLarge(let what): "too large: \(what)"
        case .unsupportedAlgorithm(let alg): "unsupported algorithm \(Self.quoted(alg))"
        case .unknownKey(let kid?): "no key with kid \(Self.quoted(kid))"
        case .unknownKey(nil): "no key fits the token and it names no kid"
        case .keyMismatch(let kid): "key \(Self.quoted(kid)) does not fit the token's algorithm"
        case .invalidKey(let what): "invalid key: \(what)"
        case .badSignature: "signature does not verify"
        case .wrongIssuer: "issuer is not the configured issuer"
        case .wrongAudience: "audience does not contain the client id"
        case .wrongAuthorizedParty: "authorized party is not the client id"
        case .expired: "token has expired"
        case .notYetValid: "token is not valid yet"
        case .issuedInFuture: "token was issued in the future"
        case .tooOld: "token was issued too long ago"
        case .nonceMismatch: "nonce does not match the request"
        case .missingSubject: "subject is missing"
        case .invalidSubject: "subject is longer than 255 bytes"
        case .missingClaim(let name): "claim \(name) is missing"
        case .missingLogoutEvent: "events lack the back-channel logout event"
        case .unexpectedNonce: "logout token carries a nonce"
        case .missingSubjectAndSession: "logout token has neither sub nor sid"
        case .invalidMetadata(let field): "discovery document: \(field)"
        case .insecureEndpoint(let field): "\(field) is not an https URL (or http on a loopback host)"
        case .tokenEndpoint(let error, let description?): "token endpoint error \(Self.quoted(error)): \(Self.quoted(description))"
        case .tokenEndpoint(let error, nil): "token endpoint error \(Self.quoted(error))"
        }
    }

    /// Text from the token or the provider, shortened and without control characters.
    private static func quoted(_ text: String) -> String {
        let cleaned = text.unicodeScalars.prefix(100).map { $0.properties.generalCategory == .control ? "?" : String($0) }.joined()
        return "\"" + cleaned + (text.unicodeScalars.count > 100 ? "…" : "") + "\""
    }
}
