import Foundation

/// An OpenID provider's discovery document (OpenID Connect Discovery 1.0 section 3), checked
/// against the configured issuer.
public struct OIDCProviderMetadata: Sendable, Hashable {
    /// The largest document accepted, in bytes.
    public static let maximumByteCount = 256 * 1024

    /// `issuer`, equal to the configured issuer.
    public let issuer: String
    /// `authorization_endpoint`.
    public let authorizationEndpoint: URL
    /// `token_endpoint`.
    public let tokenEndpoint: URL
    /// `jwks_uri`.
    public let jwksURI: URL
    /// `end_session_endpoint` (RP-Initiated Logout), if offered.
    public let endSessionEndpoint: URL?
    /// `device_authorization_endpoint` (RFC 8628), if offered.
    public let deviceAuthorizationEndpoint: URL?
    /// `id_token_signing_alg_values_supported`, as written.
    public let idTokenSigningAlgorithms: [String]
    /// `code_challenge_methods_supported`; empty when the provider does not say.
    public let codeChallengeMethods: [String]
    /// `backchannel_logout_supported`; false when absent.
    public let backChannelLogoutSupported: Bool

    /// The algorithms both the provider and this module support, in the provider's order.
    public var usableSigningAlgorithms: [JWSAlgorithm] {
        idTokenSigningAlgorithms.compactMap(JWSAlgorithm.init(name:))
    }

    /// Parses and checks a discovery document.
    ///
    /// - Parameter expectedIssuer: the configured issuer; `issuer` must equal it exactly,
    ///   trailing slash included (Discovery section 4.3).
    /// - Throws: ``OIDCError/tooLarge(_:)``, ``OIDCError/malformed(_:)`` for bad JSON or types,
    ///   ``OIDCError/invalidMetadata(_:)`` for a missing field, ``OIDCError/wrongIssuer``,
    ///   ``OIDCError/insecureEndpoint(_:)`` for an endpoint (or issuer) outside
    ///   ``EndpointPolicy``.
    public init(json bytes: some Collection<UInt8>, expectedIssuer: String) throws {
        let document = try JSONValue.object(from: bytes, limit: Self.maximumByteCount, what: "discovery document")
        func required(_ name: String) throws -> String {
            guard let value = try document.string(name), !value.isEmpty else { throw OIDCError.invalidMetadata("\(name) is missing") }
            return value
        }
        func endpoint(_ name: String) throws -> URL? {
            guard let value = try document.string(name) else { return nil }
            return try EndpointPolicy.check(value, field: name)
        }
        let issuer = try required("issuer")
        guard issuer == expectedIssuer else { throw OIDCError.wrongIssuer }
        _ = try EndpointPolicy.check(issuer, field: "issuer")
        guard !issuer.contains("?") else { throw OIDCError.invalidMetadata("issuer has a query") }
        self.issuer = issuer
        authorizationEndpoint = try EndpointPolicy.check(required("authorization_endpoint"), field: "authorization_endpoint")
        tokenEndpoint = try EndpointPolicy.check(required("token_endpoint"), field: "token_endpoint")
        jwksURI = try EndpointPolicy.check(required("jwks_uri"), field: "jwks_uri")
        endSessionEndpoint = try endpoint("end_session_endpoint")
        deviceAuthorizationEndpoint = try endpoint("device_authorization_endpoint")
        guard let algorithms = try document.strings("id_token_signing_alg_values_supported"), !algorithms.isEmpty else {
            throw OIDCError.invalidMetadata("id_token_signing_alg_values_supported is missing")
        }
        idTokenSigningAlgorithms = algorithms
        codeChallengeMethods = try document.strings("code_challenge_methods_supported") ?? []
        backChannelLogoutSupported = try document.bool("backchannel_logout_supported") ?? false
    }
}
