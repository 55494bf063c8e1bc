import CareHubCore
import CareHubCrypto
import Foundation

/// Integration tokens: made, approved, revoked and checked by the same rules whether an admin
/// works from the hub's host (`carehub tokens …`) or from the admin console (the admin API's
/// `tokens.*` operations).
///
/// - A token belongs to one organisation and one `integration NAME type=api` it declares, and has
///   scopes, an expiry (1 day to 1 year, 90 days by default) and an optional source allow-list.
/// - Its secret is shown once, when it is made; only its SHA-256 is kept.
/// - A token with a high-risk scope (PHI) opens nothing until an admin other than the one who made
///   it approves it (or the same admin confirming with a second factor, where the organisation
///   has only one admin). In a HIPAA organisation only an integration with `baa=yes` may hold one.
/// - Every step is audited (`token.created`, `token.approved`, `token.revoked`), never the secret.
public struct APITokens: Sendable {
    /// The longest and the default life of a token.
    public static let longestLife: TimeInterval = 365 * 86_400
    public static let defaultLife: TimeInterval = 90 * 86_400

    /// A token just made, with its secret (shown once).
    public struct Created: Sendable {
        public let token: APIToken
        public let secret: String
    }

    private let store: any APITokenStore
    private let config: @Sendable () -> HubConfig

    /// Tokens in `store`, checked against the organisations `config` gives (the one in force).
    public init(store: any APITokenStore, config: @escaping @Sendable () -> HubConfig) {
        self.store = store
        self.config = config
    }

    /// Makes a token for `integration` of `org`.
    public func create(
        org: OrgID, integration name: String, scopes: [APIScope], lifetime: TimeInterval = defaultLife, allowFrom: [CIDRBlock] = [],
        by actor: String, address: String, at now: Date
    ) async throws -> Created {
        let settings = try organisation(org)
        let integration = try apiIntegration(name, of: settings)
        guard !scopes.isEmpty else { throw PipelineError(.invalidField, "give the token at least one scope") }
        guard (86_400...Self.longestLife).contains(lifetime) else {
            throw PipelineError(.invalidField, "a token lives from 1 day to 365 days")
        }
        let sorted = Array(Set(scopes)).sorted()
        let token = APIToken(
            id: .random(), org: org, integration: integration.name, scopes: sorted, allowFrom: allowFrom, createdBy: actor,
            createdAt: now, expiresAt: now.addingTimeInterval(lifetime), state: sorted.contains { $0.risk == .high } ? .awaitingApproval : .active)
        try Self.checkBAA(token, integration, settings)
        let secret = APIToken.secret(for: token.id, random: Base32.encode(SecureRandom.bytes(32)).lowercased())
        let detail = [
            "integration=\(token.integration)", "scopes=\(sorted.map(\.rawValue).joined(separator: ","))", "risk=\(token.risk.rawValue)",
            "state=\(token.state.rawValue)", "expires=\(Int(token.expiresAt.timeIntervalSince1970))",
            "allow=\(allowFrom.isEmpty ? "any" : allowFrom.map(\.description).joined(separator: ","))",
        ].joined(separator: " ")
        try await store.create(token, digest: Self.digest(secret), recording: [AuditEvent(
            at: now, org: org, actor: actor, address: address, action: "token.created", target: token.id.rawValue, detail: detail)])
        return Created(token: token, secret: secret)
    }

    /// Approves a token that waits for approval. `confirmedSecondFactor`: the approver just gave
    /// a second factor, which lets the one admin of an organisation approve a token they made.
    public func approve(
        org: OrgID, id: APITokenID, by actor: String, address: String, at now: Date, confirmedSecondFactor: Bool = false
    ) async throws -> APIToken {
        let settings = try organisation(org)
        let token = try await existing(id, of: org)
        guard token.state == .awaitingApproval else {
            throw PipelineError(.conflict, "token \(id) is \(token.state.rawValue.replacingOccurrences(of: "_", with: " ")), not awaiting approval")
        }
        guard actor != token.createdBy || confirmedSecondFactor else {
            throw PipelineError(.forbidden, "token \(id) reaches PHI: an admin other than \(token.createdBy), who made it, must approve it")
        }
        try Self.checkBAA(token, try apiIntegration(token.integration, of: settings), settings)
        guard now < token.expiresAt else { throw PipelineError(.conflict, "token \(id) expired before it was approved") }
        let event = AuditEvent(
            at: now, org: org, actor: actor, address: address, action: "token.approved", target: id.rawValue,
            detail: "integration=\(token.integration) scopes=\(token.scopes.map(\.rawValue).joined(separator: ",")) second_factor=\(confirmedSecondFactor ? "yes" : "no")")
        guard let approved = try await store.decide(id, state: .active, by: actor, at: now, recording: [event]), approved.state == .active else {
            throw PipelineError(.conflict, "token \(id) was revoked meanwhile")
        }
        return approved
    }

    /// Revokes a token for good.
    public func revoke(org: OrgID, id: APITokenID, by actor: String, address: String, at now: Date) async throws -> APIToken {
        let token = try await existing(id, of: org)
        guard token.state != .revoked else { throw PipelineError(.conflict, "token \(id) is already revoked") }
        let event = AuditEvent(
            at: now, org: org, actor: actor, address: address, action: "token.revoked", target: id.rawValue, detail: "integration=\(token.integration)")
        guard let revoked = try await store.decide(id, state: .revoked, by: actor, at: now, recording: [event]) else { throw Self.unknown(id) }
        return revoked
    }

    /// The token `id` of `org`, or `not_found`.
    public func token(org: OrgID, id: APITokenID) async throws -> APIToken {
        try await existing(id, of: org)
    }

    /// The organisation's tokens, newest first.
    public func list(org: OrgID) async throws -> [APIToken] {
        _ = try organisation(org)
        return try await store.list(org: org)
    }

    /// The token a presented secret opens for a call to `org` from `address`, or `auth_failed`
    /// saying why not (never which part of the secret was wrong).
    public func authenticate(_ secret: String, org: OrgID, address: IPAddress?, at now: Date) async throws -> APIToken {
        guard let id = APIToken.id(ofSecret: secret), let token = try await store.token(id, digest: Self.digest(secret)), token.org == org else {
            throw PipelineError(.authFailed, "this is not a token of this organisation")
        }
        if let refusal = token.refusal(from: address, at: now, in: try organisation(org)) {
            throw PipelineError(.authFailed, refusal.message(token))
        }
        return token
    }

    // MARK: Rules

    /// A high-risk scope needs a BAA in a HIPAA organisation.
    static func checkBAA(_ token: APIToken, _ integration: Integration, _ org: OrgSettings) throws {
        if token.refusal(in: org) == .noBAA { throw PipelineError(.forbidden, APIToken.Refusal.noBAA.message(token)) }
    }

    private func organisation(_ org: OrgID) throws -> OrgSettings {
        guard let settings = config().org(org)?.settings else { throw PipelineError(.unknownOrg, "no organisation '\(org)' on this hub") }
        return settings
    }

    private func apiIntegration(_ name: String, of org: OrgSettings) throws -> Integration {
        guard let integration = org.integrations.first(where: { $0.name == name }), integration.kind == .api else {
            throw PipelineError(.notFound, "[org \(org.id)] declares no 'integration \(name) type=api …'; tokens belong to such an integration")
        }
        return integration
    }

    private func existing(_ id: APITokenID, of org: OrgID) async throws -> APIToken {
        guard let token = try await store.token(id), token.org == org else { throw Self.unknown(id) }
        return token
    }

    private static func unknown(_ id: APITokenID) -> PipelineError { PipelineError(.notFound, "no token \(id) in this organisation") }

    static func digest(_ secret: String) -> [UInt8] { SHA256.hash(Array(secret.utf8)) }
}
