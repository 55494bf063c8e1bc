import Foundation

/// The port through which the hub keeps integration tokens: each record with the digest of its
/// secret (never the secret), and every change audited in the same commit as the change.
///
/// Implementations must guarantee:
/// - ``create(_:digest:recording:)``, ``decide(_:state:by:at:recording:)`` commit the change and
///   its audit events together, or neither;
/// - ``decide(_:state:by:at:recording:)`` changes nothing of a revoked token (revocation is for good)
///   and returns the record as it is afterwards, or nil if there is no such token;
/// - ``token(_:digest:)`` returns the record only when the digest is the one stored, compared in
///   constant time.
///
/// ```swift
/// try await tokens.create(token, digest: credentials.digest(secret), recording: [created])
/// let found = try await tokens.token(id, digest: credentials.digest(presented))
/// ```
public protocol APITokenStore: Sendable {
    /// Stores a new token with the digest of its secret.
    func create(_ token: APIToken, digest: [UInt8], recording events: [AuditEvent]) async throws
    /// The token `id` if `digest` is its secret's.
    func token(_ id: APITokenID, digest: [UInt8]) async throws -> APIToken?
    /// The token `id`, whatever its secret.
    func token(_ id: APITokenID) async throws -> APIToken?
    /// The organisation's tokens, newest first.
    func list(org: OrgID) async throws -> [APIToken]
    /// Approves (`active`) or revokes a token, recording who and when.
    func decide(_ id: APITokenID, state: APITokenState, by: String, at: Date, recording events: [AuditEvent]) async throws -> APIToken?
}
