import Foundation

/// The claims of a JWT payload (RFC 7519 section 4; OpenID Connect Core section 2; Back-Channel
/// Logout section 2.4). Registered claims are type-checked when the payload is decoded; any
/// other claim is read with ``string(_:)``, ``strings(_:)`` or ``subscript(_:)``.
///
/// Decoding checks types only; ``IDTokenValidator`` and ``LogoutTokenValidator`` decide whether
/// the values are acceptable.
public struct JWTClaims: Sendable, Hashable {
    /// Every member of the payload, registered or not.
    public let members: [String: JSONValue]

    /// `iss`.
    public let issuer: String?
    /// `sub`.
    public let subject: String?
    /// `aud`, a single string read as a one-element array; empty when absent.
    public let audience: [String]
    /// `azp`.
    public let authorizedParty: String?
    /// `exp`.
    public let expiresAt: Date?
    /// `iat`.
    public let issuedAt: Date?
    /// `nbf`.
    public let notBefore: Date?
    /// `nonce`.
    public let nonce: String?
    /// `amr`.
    public let authenticationMethods: [String]?
    /// `acr`.
    public let authenticationContextClass: String?
    /// `sid`.
    public let sessionID: String?
    /// `jti`.
    public let jwtID: String?
    /// `events` (Security Event Tokens, RFC 8417), keyed by event type URI.
    public let events: [String: JSONValue]?

    /// Decodes a payload.
    ///
    /// - Throws: ``OIDCError/malformed(_:)`` if the payload is not a JSON object, or a registered
    ///   claim has the wrong type (`exp` not a number, `amr` not an array of strings, …).
    public init(payload: some Collection<UInt8>) throws {
        try self.init(members: JSONValue.object(from: payload, limit: CompactJWS.maximumByteCount, what: "payload"))
    }

    /// Claims from an already parsed JSON object; the same type checks as ``init(payload:)``.
    public init(members: [String: JSONValue]) throws {
        self.members = members
        issuer = try members.string("iss")
        subject = try members.string("sub")
        audience = try members.strings("aud") ?? []
        authorizedParty = try members.string("azp")
        expiresAt = try members.number("exp").map(Date.init(timeIntervalSince1970:))
        issuedAt = try members.number("iat").map(Date.init(timeIntervalSince1970:))
        notBefore = try members.number("nbf").map(Date.init(timeIntervalSince1970:))
        nonce = try members.string("nonce")
        if case .array? = members["amr"] {
            authenticationMethods = try members.strings("amr")
        } else if members["amr"] == nil || members["amr"] == .null {
            authenticationMethods = nil
        } else {
            throw OIDCError.malformed("amr is not an array of strings")
        }
        authenticationContextClass = try members.string("acr")
        sessionID = try members.string("sid")
        jwtID = try members.string("jti")
        events = try members.object("events")
    }

    /// The raw value of claim `name`.
    public subscript(_ name: String) -> JSONValue? { members[name] }

    /// Claim `name` if it is a string (`email`, `preferred_username`, …); nil otherwise.
    public func string(_ name: String) -> String? {
        members[name]?.stringValue
    }

    /// Claim `name` as a list: a string gives one element, an array of strings its elements
    /// (`groups`, `roles`). Nil when absent or of another type, or when an element is not a string.
    public func strings(_ name: String) -> [String]? {
        try? members.strings(name)
    }
}

/// The claims of an ID token.
public typealias IDTokenClaims = JWTClaims
