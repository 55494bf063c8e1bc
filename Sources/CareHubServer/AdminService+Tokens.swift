import CareHubCore
import CareHubStages
import Foundation

/// The admin API's integration tokens (`tokens.list|create|approve|revoke`), by the rules of
/// ``APITokens``. A token's secret is in the reply to `tokens.create` only; no list, audit event
/// or log line carries it.
///
/// The admin who made a token that waits for approval may approve it only with a current code
/// from their own authenticator (`totp`), checked against their sealed secret like a login's and
/// accepted once; a missing, wrong or replayed code is refused (`forbidden`, `auth_failed`) and
/// audited as `token.approval_refused`. Another admin approves without a code.
extension AdminService {
    /// Codes an admin may try for approvals in a minute, before `rate_limited`.
    static let approvalCodesPerMinute = 5

    func tokensJSON(_ org: OrgID) async throws -> String {
        let listed = try await tokens.list(org: org)
        let settings = config.org(org)?.settings
        let now = environment.clock.now
        var w = JSONWriter()
        w.array("tokens", listed) { element, token in Self.write(token, at: now, to: &element) }
        w.array("integrations", settings?.integrations.filter { $0.kind == .api } ?? []) { element, integration in
            element.field("name", integration.name)
            element.field("baa", integration.baa)
        }
        w.array("scopes", APIScope.allCases) { element, scope in
            element.field("scope", scope.rawValue)
            element.field("risk", scope.risk.rawValue)
        }
        w.field("hipaa", settings?.hipaa ?? false)
        return w.finish()
    }

    func createToken(
        _ org: OrgID, integration: String, scopes: [APIScope], days: Int, allowFrom: [CIDRBlock], actor: String, address: String
    ) async throws -> String {
        let now = environment.clock.now
        let made = try await tokens.create(
            org: org, integration: integration, scopes: scopes, lifetime: TimeInterval(days) * 86_400, allowFrom: allowFrom,
            by: actor, address: address, at: now)
        var w = JSONWriter()
        w.object("token") { Self.write(made.token, at: now, to: &$0) }
        w.field("secret", made.secret)
        return w.finish()
    }

    func approveToken(_ org: OrgID, _ id: APITokenID, code: String?, actor: String, address: String) async throws -> String {
        let now = environment.clock.now
        let token = try await tokens.token(org: org, id: id)
        var confirmed = false
        if token.createdBy == actor && token.state == .awaitingApproval {
            try await confirmOwnApproval(org, token: id, code: code, actor: actor, address: address, at: now)
            confirmed = true
        }
        let approved = try await tokens.approve(org: org, id: id, by: actor, address: address, at: now, confirmedSecondFactor: confirmed)
        var w = JSONWriter()
        w.object("token") { Self.write(approved, at: now, to: &$0) }
        return w.finish()
    }

    func revokeToken(_ org: OrgID, _ id: APITokenID, actor: String, address: String) async throws -> String {
        let now = environment.clock.now
        let revoked = try await tokens.revoke(org: org, id: id, by: actor, address: address, at: now)
        var w = JSONWriter()
        w.object("token") { Self.write(revoked, at: now, to: &$0) }
        return w.finish()
    }

    /// Checks the code of the admin approving a token they made, or refuses and audits why.
    private func confirmOwnApproval(_ org: OrgID, token: APITokenID, code: String?, actor: String, address: String, at now: Date) async throws {
        func refuse(_ reason: String, _ error: PipelineError) async throws -> Never {
            try await audit.record(AuditEvent(
                at: now, org: org, actor: actor, address: address, action: "token.approval_refused", target: token.rawValue,
                detail: "reason=\(reason)"))
            throw error
        }
        guard let code, !code.isEmpty else {
            try await refuse("code_missing", PipelineError(
                .forbidden, "you made token \(token): confirm your approval with a current code from your authenticator (totp), or ask another admin to approve it"))
        }
        let key = RateLimiter.Key("token_approval_code", "\(org.rawValue)|\(actor)")
        if let wait = environment.throttle.limiter.take(key, rate: .perMinute(Self.approvalCodesPerMinute), at: now) {
            try await refuse("rate_limited", PipelineError.rateLimited("too many approval codes tried", retryAfter: wait))
        }
        guard let sealed = try await environment.users.user(org: org, name: actor)?.secondFactor.secret else {
            try await refuse("no_second_factor", PipelineError(.authFailed, "your account has no authenticator enrolled, so it cannot confirm an approval"))
        }
        switch try await AccountTOTP(org: org, user: actor, environment: environment).check(code, against: sealed, at: now) {
        case .accepted: return
        case .replayed: try await refuse("code_replayed", PipelineError(.authFailed, "that code was used already; wait for the next one"))
        case .wrong: try await refuse("code", PipelineError(.authFailed, "that is not your authenticator's current code"))
        }
    }

    /// A token's JSON view; `expired`: active but past its expiry.
    static func write(_ token: APIToken, at now: Date, to w: inout JSONWriter) {
        w.field("id", token.id.rawValue)
        w.field("integration", token.integration)
        w.strings("scopes", token.scopes.map(\.rawValue))
        w.field("risk", token.risk.rawValue)
        w.field("state", token.state.rawValue)
        w.field("expired", token.state == .active && now >= token.expiresAt)
        w.field("createdBy", token.createdBy)
        w.field("createdAt", token.createdAt.epochMilliseconds)
        w.field("expiresAt", token.expiresAt.epochMilliseconds)
        w.strings("allowFrom", token.allowFrom.map(\.description))
        if let decidedBy = token.decidedBy { w.field("decidedBy", decidedBy) } else { w.null("decidedBy") }
        if let decidedAt = token.decidedAt { w.field("decidedAt", decidedAt.epochMilliseconds) } else { w.null("decidedAt") }
    }
}
