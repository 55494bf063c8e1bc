import CareHubCore
import Foundation

/// Ends an account's live sessions in this process after a change to the account (disabled, role
/// changed, second factor reset), whether the change was made here or read from the
/// ``ChangeJournal``: each session is audited as `session.revoked` before its connections hear
/// `session_expired` `revoked`.
struct SessionRevoker: Sendable {
    let sessions: any SessionStore
    let audit: any AuditLog
    let events: any PipelineEvents

    func revoke(_ user: String, in org: OrgID, reason: String) async {
        for session in sessions.sessions(of: org) where session.principal.isStaff && session.principal.displayName == user {
            guard sessions.remove(session.token) != nil else { continue }
            try? await audit.record(AuditEvent(
                at: Date(), org: org, actor: "system", address: "", action: "session.revoked", target: user, detail: "reason=\(reason)"))
            events.emit(.sessionExpired(session, .revoked))
        }
    }
}
