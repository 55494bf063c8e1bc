import CareHubCore
import Foundation

/// The decisions of one connection's life, as a value that says what to do and does none of it
/// (in the manner of swift-websocket's state machines): ``ConnectionHandler`` carries the actions
/// out against the registry, the transport and the audit log.
///
/// ```
///  admitted ──opened──▶ open ──closed──▶ ended
///      └── over the address limit ──▶ refused
/// ```
struct ConnectionLifecycle: Sendable, Equatable {
    enum State: Sendable, Equatable {
        /// Accepted by the transport, not yet registered.
        case admitted
        /// Registered: frames go to its inbox.
        case open
        /// Refused over the address limit; nothing more is done with it.
        case refused
        /// Closed; its session's end was decided once.
        case ended
    }

    /// What the handler must do.
    enum Action: Sendable, Equatable {
        /// Tell the client why (`rate_limited`) and close with 1008, policy violation.
        case refuse(PipelineError)
        /// Stop taking frames at once (the hub is draining).
        case closeInbox
        /// Record the end of the connection's staff session.
        case record(AuditEvent)
        /// Colleagues may see the staff member go offline.
        case announcePresence(OrgID)
    }

    private(set) var state: State = .admitted

    /// The registry added the connection (`registered`), or found its address at `limit`.
    mutating func opened(registered: Bool, limit: Int, draining: Bool) -> [Action] {
        guard state == .admitted else { return [] }
        guard registered else {
            state = .refused
            return [.refuse(PipelineError(.rateLimited, "too many connections from this address (at most \(limit))"))]
        }
        state = .open
        return draining ? [.closeInbox] : []
    }

    /// The connection's last frame is handled and it is gone, with the session it was bound to
    /// (already removed from the session store by the handler, or nil). A staff session that ends
    /// this way is audited like every other end of one: `session.expired` when it had already
    /// passed its idle timeout or lifetime (a console that locked itself and closed before the
    /// hub's tick), else `session.ended` with `reason=disconnect`.
    mutating func closed(session: Session?, peer: String, at now: Date) -> [Action] {
        guard state == .open else { return [] }
        state = .ended
        guard let session, session.principal.isStaff else { return [] }
        let expiry = session.idlePolicy?.expiry(of: session, at: now)
        let event = AuditEvent(
            at: now, org: session.org, actor: session.principal.displayName, address: peer,
            action: expiry == nil ? "session.ended" : "session.expired", detail: "reason=\(expiry?.rawValue ?? "disconnect")")
        return [.record(event), .announcePresence(session.org)]
    }
}
