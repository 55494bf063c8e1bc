import CareHubCore
import Foundation

/// Ends staff sessions that have been idle too long or have lived too long.
///
/// Only user actions (``ClientFrame/isUserAction``) reset the idle timer. Expiry is noticed both
/// when the session next sends a frame (which is then refused with `session_expired`) and by the
/// stage's tick, which emits ``PipelineEvent/sessionExpired(_:_:)`` so the hub can tell the
/// connection at once and stop delivering to it.
public struct IdleStage: Stage {
    /// Parameters of `stage idle`.
    public struct Configuration: StageConfiguration {
        /// `timeout=`: longest time between user actions (default 15m; at most 15m in a HIPAA org).
        public var timeout: Duration
        /// `lifetime=`: longest session, whatever the activity (default 12h).
        public var lifetime: Duration

        /// The longest idle timeout a HIPAA organisation may set.
        public static let hipaaMaximumTimeout = Duration.seconds(15 * 60)

        /// The accepted `timeout` and `lifetime`: 1 second to 30 days.
        public static let range = Duration.seconds(1)...Duration.seconds(30 * 86_400)

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            timeout = try parameters.duration("timeout", in: Self.range, default: .seconds(15 * 60))
            lifetime = try parameters.duration("lifetime", in: Self.range, default: .seconds(12 * 3600))
            if org.hipaa && timeout > Self.hipaaMaximumTimeout {
                throw parameters.error("HIPAA organisation '\(org.id)' needs idle timeout=15m or less, found timeout=\(ConfigValue.format(timeout))")
            }
            if lifetime < timeout {
                throw parameters.error("expected lifetime (\(ConfigValue.format(lifetime))) to be at least timeout (\(ConfigValue.format(timeout)))")
            }
        }

        public var summary: [String] { ["timeout=\(ConfigValue.format(timeout))", "lifetime=\(ConfigValue.format(lifetime))"] }

        /// The policy armed on sessions.
        public var policy: IdlePolicy { IdlePolicy(idleTimeout: timeout, lifetime: lifetime) }
    }

    public static let name = "idle"
    public static let rules = StageRules(after: ["auth"], requiredInHIPAA: true)

    private let policy: IdlePolicy
    private let org: OrgSettings
    private let environment: StageEnvironment

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.policy = configuration.policy
        self.org = org
        self.environment = environment
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        guard let session = request.session, session.principal.isStaff else {
            return try await next(request)
        }
        let now = environment.clock.now
        if let expiry = policy.expiry(of: session, at: now) {
            await expire(session, expiry, address: request.peer)
            throw PipelineError.sessionExpired(expiry)
        }
        let policy = self.policy
        let isUserAction = request.frame.isUserAction
        let updated = environment.sessions.update(session.token) { session in
            session.idlePolicy = policy
            if isUserAction { session.lastActionAt = now }
        }
        guard let updated else { throw PipelineError.sessionExpired(.idle) }
        var forwarded = request
        forwarded.session = updated
        return try await next(forwarded)
    }

    public func tick(at now: Date) async {
        for session in environment.sessions.sessions(of: org.id) where session.principal.isStaff {
            if let expiry = policy.expiry(of: session, at: now) {
                await expire(session, expiry, address: "")
            } else if session.idlePolicy != policy {
                // A reloaded configuration applies to live sessions at once.
                let policy = self.policy
                environment.sessions.update(session.token) { $0.idlePolicy = policy }
            }
        }
    }

    private func expire(_ session: Session, _ expiry: SessionExpiry, address: String) async {
        guard environment.sessions.remove(session.token) != nil else { return }
        // On the record before the connection hears of it. The session is gone whether or not
        // the audit write succeeds.
        try? await environment.audit.record(AuditEvent(
            at: environment.clock.now, org: org.id, actor: session.principal.displayName, address: address,
            action: "session.expired", detail: "reason=\(expiry.rawValue)"))
        environment.events.emit(.sessionExpired(session, expiry))
    }
}
