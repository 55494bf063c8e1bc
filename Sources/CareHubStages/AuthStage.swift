import CareHubCore
import Foundation
import Synchronization

/// Who may speak, and for whom.
///
/// - `hello` starts a visitor conversation (with a fresh reconnect token, stored only as a digest)
///   or resumes one with its token, unless it has ended or sat idle past `visitor_idle`.
/// - `login` checks a staff password (scrypt, through ``Credentials``) and, where the organisation
///   requires it or the account has one, a TOTP code or a recovery code. An account without a
///   second factor where one is required gets `enroll` and can do nothing else until it sends a
///   valid code. Failures back off exponentially and lock the account after `lockout` of them.
///   Every way of failing looks the same on the wire (`auth_failed`); the audit log says why.
/// - Every other frame needs a session, and a frame naming a room is checked against it: a visitor
///   reaches only its own room, staff only rooms of their organisation.
public struct AuthStage: Stage {
    /// When a second factor is needed at login.
    public enum TwoFactor: String, Sendable {
        /// Every staff account; those without one enrol at their next login.
        case required
        /// Accounts that have enrolled use it; others log in with the password alone.
        case optional
        /// Never asked for.
        case off
    }

    /// Parameters of `stage auth`.
    public struct Configuration: StageConfiguration {
        /// `visitors=on|off`: whether anonymous visitors may start conversations (default on).
        public var visitors: Bool
        /// `twofactor=required|optional|off` (default required in HIPAA mode, else optional).
        public var twoFactor: TwoFactor
        /// `lockout=N`: failed logins in a row that lock an account (default 5).
        public var lockoutAttempts: Int
        /// `lockout_time=D`: how long a locked account stays locked unless an admin unlocks it (default 15m).
        public var lockoutTime: Duration
        /// `allow=CIDR,…`: addresses staff may log in from (default: anywhere).
        public var allow: [CIDRBlock]
        /// `visitor_idle=D`: a visitor's reconnect token stops working after this long without a message (default 30m).
        public var visitorIdle: Duration
        /// `api_calls=N`: HTTP API calls one integration token may make per minute (default 600).
        public var apiCallsPerMinute: Int
        /// `sso=NAME`: the organisation's `sso NAME …` provider staff may log in with, beside
        /// the password (default: none).
        public var sso: SSOProvider?

        /// The accepted `lockout_time`: 1 minute to 30 days.
        public static let lockoutTimeRange = Duration.seconds(60)...Duration.seconds(30 * 86_400)
        /// The accepted `visitor_idle`: 1 minute to 30 days.
        public static let visitorIdleRange = Duration.seconds(60)...Duration.seconds(30 * 86_400)

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            visitors = try parameters.flag("visitors", default: true)
            let twoFactor = try parameters.choice("twofactor", ["required", "optional", "off"], default: org.hipaa ? "required" : "optional")
            if org.hipaa && twoFactor != "required" {
                throw parameters.error("HIPAA organisation '\(org.id)' needs twofactor=required, found twofactor=\(twoFactor)")
            }
            self.twoFactor = TwoFactor(rawValue: twoFactor)!
            lockoutAttempts = try parameters.integer("lockout", in: 3...20, default: 5)
            lockoutTime = try parameters.duration("lockout_time", in: Self.lockoutTimeRange, default: .seconds(15 * 60))
            allow = try parameters.cidrList("allow")
            visitorIdle = try parameters.duration("visitor_idle", in: Self.visitorIdleRange, default: .seconds(30 * 60))
            apiCallsPerMinute = try parameters.integer("api_calls", in: 10...100_000, default: 600)
            if let name = parameters.string("sso") {
                guard let provider = org.ssoProvider(name) else {
                    let declared = org.sso.map(\.name)
                    throw parameters.error("sso=\(name) names no 'sso \(name) issuer=…' line in [org \(org.id)]"
                        + (declared.isEmpty ? "" : "; declared: \(declared.joined(separator: ", "))"))
                }
                sso = provider
            }
        }

        public var summary: [String] {
            var parts = ["visitors=\(visitors ? "on" : "off")", "twofactor=\(twoFactor.rawValue)",
                         "lockout=\(lockoutAttempts)", "lockout_time=\(ConfigValue.format(lockoutTime))",
                         "visitor_idle=\(ConfigValue.format(visitorIdle))", "api_calls=\(apiCallsPerMinute)"]
            if !allow.isEmpty { parts.append("allow=\(allow.map(\.description).joined(separator: ","))") }
            if let sso { parts.append("sso=\(sso.name)") }
            return parts
        }
    }

    public static let name = "auth"
    public static let rules = StageRules(required: true, requiredInHIPAA: true)

    private let configuration: Configuration
    private let org: OrgSettings
    private let environment: StageEnvironment
    private let lastRevalidation = RevalidationClock()

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.configuration = configuration
        self.org = org
        self.environment = environment
    }

    /// How often live staff sessions are checked against their accounts.
    static let revalidationInterval: TimeInterval = 5

    /// Ends staff sessions whose account was disabled or deleted, or whose role or second factor
    /// an admin changed since login (changes made with `carehub user …` in another process).
    public func tick(at now: Date) async {
        guard lastRevalidation.due(at: now, every: Self.revalidationInterval) else { return }
        for session in environment.sessions.sessions(of: org.id) {
            guard case .staff(let user, let role) = session.principal else { continue }
            let account: StaffUser?
            do {
                account = try await environment.users.user(org: org.id, name: user)
            } catch {
                continue  // storage trouble: check again at the next round
            }
            let reason: String
            if let account {
                if account.disabled {
                    reason = "disabled"
                } else if account.role != role {
                    reason = "role_changed"
                } else if needsSecondFactor(account) && !account.secondFactor.isEnrolled && !session.secondFactorByProvider {
                    reason = "2fa_reset"
                } else {
                    continue
                }
            } else {
                reason = "removed"
            }
            guard environment.sessions.remove(session.token) != nil else { continue }
            // On the record before the connection hears of it; the session is gone either way.
            try? await environment.audit.record(AuditEvent(
                at: now, org: org.id, actor: "system", address: "", action: "session.revoked", target: user, detail: "reason=\(reason)"))
            environment.events.emit(.sessionExpired(session, .revoked))
        }
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        // An HTTP API call carries an integration token instead of a session.
        if request.session == nil, let credential = request.credential, APIToken.id(ofSecret: credential) != nil {
            return try await integration(request, secret: credential, next: next)
        }
        switch request.frame {
        case .hello(_, let token, _, let offline):
            return try await hello(request, token: token, offline: offline, next: next)
        case .login(_, let user, let password, let code):
            return try await login(request, user: user, password: password, code: code, next: next)
        case .sso(_, let ticket, let code):
            return try await ssoLogin(request, ticket: ticket, code: code, next: next)
        case .ssoDevice:
            return try await ssoDevice(request)
        case .availability:
            return try await availability(request, next: next)
        case .rooms, .subscribe, .unsubscribe, .send, .end, .typing, .activity, .logout, .transcript, .assign, .admin,
             .presence, .team, .claim, .transfer, .read, .replies:
            return try await authorise(request, next: next)
        case .attach, .download:
            return try await bearer(request, next: next)
        case .api:
            throw PipelineError(.unauthenticated, "send an integration token as Authorization: Bearer chk_…")
        }
    }

    /// Availability checks from one address per minute (the widget asks once a minute while its form shows).
    static let availabilityChecksPerMinute = 60

    /// Whether the organisation is open and anyone can take a chat: asked before a chat starts,
    /// with no session, by whoever may start one here.
    private func availability(_ request: Request, next: Next) async throws -> Outcome {
        try checkChannel(request, widget: true)
        guard configuration.visitors else {
            throw PipelineError.forbidden("this organisation does not take visitor chats")
        }
        try take(RateLimiter.Key("availability_address", "\(org.id.rawValue)|\(request.peer)"),
                 Rate.perMinute(Self.availabilityChecksPerMinute), "too many availability checks from this address")
        var outcome = try await next(request)
        let now = environment.clock.now
        let open = org.hours?.isOpen(at: now) ?? true
        outcome.availability = Availability(
            open: open, staffAvailable: environment.staffAvailable(in: org.id), opensAt: open ? nil : org.hours?.nextOpening(after: now),
            hours: org.hours?.description, timeZone: org.hours?.timeZoneIdentifier)
        return outcome
    }

    // MARK: Visitors

    private func hello(_ request: Request, token: String?, offline: Bool, next: Next) async throws -> Outcome {
        guard request.session == nil else {
            throw PipelineError(.alreadyAuthenticated, "this connection already has a session")
        }
        try checkChannel(request, widget: true)
        let now = environment.clock.now
        let conversation: Conversation
        let reconnectToken: String
        if let token {
            conversation = try await resumable(token, at: now)
            reconnectToken = token
        } else {
            guard configuration.visitors else {
                throw PipelineError.forbidden("this organisation does not take visitor chats")
            }
            // A script opening chats by the thousand would bury real patients on every console.
            let limits = org.limits
            try take(RateLimiter.Key("conversations_address", "\(org.id.rawValue)|\(request.peer)"),
                     Rate.perMinute(limits.conversationsPerAddressPerMinute), "too many new conversations from this address")
            try take(RateLimiter.Key("conversations_org", org.id.rawValue), Rate.perMinute(limits.conversationsPerMinute),
                     "too many new conversations in this organisation right now")
            reconnectToken = environment.credentials.newToken()
            conversation = try await environment.conversations.create(
                org: org.id, tokenDigest: environment.credentials.digest(reconnectToken), at: now, offline: offline)
        }
        let session = Session(token: environment.credentials.newToken(), org: org.id, principal: .visitor(conversation.id), createdAt: now)
        environment.sessions.insert(session)

        var forwarded = request
        forwarded.session = session
        forwarded.conversation = conversation
        forwarded.startsConversation = token == nil
        var outcome = try await next(forwarded)
        outcome.bind = environment.sessions.session(session.token) ?? session
        outcome.conversation = conversation
        outcome.visitorToken = reconnectToken
        return outcome
    }

    /// The conversation a visitor's reconnect token stands for, while it can still be resumed:
    /// not ended, and written in within the stage's `visitor_idle`.
    private func resumable(_ token: String, at now: Date) async throws -> Conversation {
        guard let found = try await environment.conversations.find(org: org.id, tokenDigest: environment.credentials.digest(token)),
              !found.hasEnded
        else { throw PipelineError.authFailed }
        let lastMessage = try await environment.messages.history(of: found.id, limit: 1).last?.at
        guard now.timeIntervalSince(max(found.startedAt, lastMessage ?? found.startedAt)) < configuration.visitorIdle.seconds else {
            throw PipelineError.authFailed
        }
        return found
    }

    // MARK: Staff

    /// What every way of logging in checks first: no session yet, a console's channel, and the
    /// address's login allowance.
    private func admitLogin(_ request: Request, charged: Bool = true) throws {
        guard request.session == nil else {
            throw PipelineError(.alreadyAuthenticated, "this connection already has a session")
        }
        try checkChannel(request, widget: false)
        guard charged else { return }
        try take(RateLimiter.Key("login_address", request.peer), Rate.perMinute(environment.throttle.hub.loginsPerAddressPerMinute),
                 "too many login attempts from this address")
    }

    private func login(_ request: Request, user: String, password: Password, code: String?, next: Next) async throws -> Outcome {
        // Limits first: a stranger's login costs a memory-hard hash, so nobody gets more of them
        // than the limits allow, whatever the account.
        try admitLogin(request)
        try take(RateLimiter.Key("login_hub", ""), Rate.perMinute(environment.throttle.hub.loginsPerMinute), "too many login attempts on this hub")
        // One attempt at a time per account, so each sees the failures and back-off the one
        // before it recorded: a burst cannot share one back-off window.
        let busy = PipelineError.rateLimited("too many login attempts for this account at once", retryAfter: 2)
        return try await environment.throttle.accounts.run("\(org.id.rawValue)|\(user)", full: busy) {
            try await attempt(request, user: user, password: password, code: code, next: next)
        }
    }

    /// How the connection reached the hub, before anyone speaks on it: a HIPAA organisation only
    /// over TLS (or from loopback, or through a listed proxy that terminated TLS); a browser page
    /// only from the hub's own origin, or for the widget from one of the organisation's
    /// `widget_origins`. A client that sends no `Origin` is not a browser, and no page can make
    /// it act for someone else.
    private func checkChannel(_ request: Request, widget: Bool) throws {
        let channel = request.channel
        if org.hipaa && !channel.secure {
            throw PipelineError(.insecureTransport, "\(org.displayName) is reached only over TLS (wss://); this connection is plain ws://")
        }
        guard let sent = channel.origin else { return }
        // Compared as pipeline.conf's widget_origins were stored: normalised by the same rule.
        // An Origin that is no origin at all ("null" from a sandboxed frame) matches nothing.
        let origin = ConfigValue.origin(sent)
        if let origin, origin == channel.ownOrigin.flatMap(ConfigValue.origin) { return }
        if widget, let origin, org.widgetOrigins.contains(origin) { return }
        throw PipelineError(.originRefused, widget
            ? "this page's site may not start chats with \(org.displayName); its admin lists the sites that may (widget_origins)"
            : "staff consoles are used only from this hub's own pages")
    }

    /// Refuses with `rate_limited` when `key`'s bucket is empty.
    private func take(_ key: RateLimiter.Key, _ rate: Rate, _ what: String) throws {
        if let wait = environment.throttle.limiter.take(key, rate: rate, at: environment.clock.now) {
            throw PipelineError.rateLimited(what, retryAfter: wait)
        }
    }

    private func attempt(_ request: Request, user: String, password: Password, code: String?, next: Next) async throws -> Outcome {
        let now = environment.clock.now
        let users = environment.users
        let account = try await users.user(org: org.id, name: user)
        guard addressAllowed(request.peer) else {
            try await audit(request, "login.failure", actor: user, detail: "reason=address")
            throw PipelineError.authFailed
        }
        // The account's own throttle before the hash: a locked or backing-off account costs nothing.
        if let account, !account.disabled {
            if account.throttle.isLocked(at: now) {
                try await audit(request, "login.failure", actor: user, detail: "reason=locked")
                throw PipelineError.authFailed
            }
            if let allowed = account.throttle.nextAttemptAllowed(), allowed > now {
                try await audit(request, "login.failure", actor: user, detail: "reason=backoff")
                throw PipelineError.authFailed
            }
        }
        // A missing or disabled account is checked against a decoy hash, so timing does not tell
        // which part was wrong.
        let usable = account.flatMap { $0.disabled ? nil : Optional($0.passwordHash) }
        let passwordMatches = try await environment.credentials.verify(password, against: usable)
        guard let account else {
            try await audit(request, "login.failure", actor: user, detail: "reason=unknown_user")
            throw PipelineError.authFailed
        }
        guard !account.disabled else {
            try await audit(request, "login.failure", actor: user, detail: "reason=disabled")
            throw PipelineError.authFailed
        }
        guard passwordMatches else { return try await fail(request, account, reason: "password") }

        return try await finishLogin(request, account, code: code, now: now, next: next)
    }

    /// The second factor and the session, after the first factor passed: the password, or the
    /// identity provider (`sso`), whose `amr`/`acr` may stand for the second factor too
    /// (`providerSecondFactor`). `missingCode` is thrown, uncounted, when a code is needed and
    /// none came; without it a missing code is a failed login.
    private func finishLogin(
        _ request: Request, _ account: StaffUser, code: String?, now: Date, sso: SSOIdentity? = nil, providerSecondFactor: Bool = false,
        missingCode: PipelineError? = nil, via: String = "", next: Next
    ) async throws -> Outcome {
        let users = environment.users
        var outcome = Outcome()
        let needsSecondFactor = needsSecondFactor(account)
        if needsSecondFactor && !providerSecondFactor {
            let totp = AccountTOTP(org: org.id, user: account.name, environment: environment)
            if let sealed = account.secondFactor.secret {
                guard let code else {
                    if let missingCode { throw missingCode }
                    return try await fail(request, account, reason: "code_missing")
                }
                switch try await totp.check(code, against: sealed, at: now) {
                case .accepted: break
                case .replayed: return try await fail(request, account, reason: "code_replayed")
                case .wrong:
                    guard try await users.consumeRecoveryCode(org: org.id, name: account.name, digest: environment.credentials.digest(Self.normalised(code))) else {
                        return try await fail(request, account, reason: "code")
                    }
                    try await audit(request, "recovery_code.used", actor: account.name, target: account.name,
                                    detail: "remaining=\(account.secondFactor.recoveryCodeDigests.count - 1)")
                }
            } else {
                // Enrolment: hand out a secret, then accept the first valid code for it.
                if let code, let pending = account.secondFactor.pendingSecret {
                    let secret = try await totp.open(pending)
                    guard let counter = environment.credentials.totpCounter(code, secret: secret, at: now) else {
                        return try await fail(request, account, reason: "enrolment_code")
                    }
                    let recoveryCodes = environment.credentials.newRecoveryCodes()
                    try await users.confirmEnrollment(
                        org: org.id, name: account.name, counter: counter,
                        recoveryCodeDigests: recoveryCodes.map { environment.credentials.digest(Self.normalised($0)) })
                    try await audit(request, "enrolment.completed", actor: account.name, target: account.name)
                    outcome.recoveryCodes = recoveryCodes
                } else {
                    let secret: [UInt8]
                    if let pending = account.secondFactor.pendingSecret {
                        secret = try await totp.open(pending)
                    } else {
                        secret = environment.credentials.newTOTPSecret()
                        try await users.setPendingSecret(org: org.id, name: account.name, secret: await totp.seal(secret))
                        try await audit(request, "enrolment.started", actor: account.name, target: account.name)
                    }
                    outcome.enrollment = environment.credentials.enrollment(secret: secret, issuer: org.displayName, account: account.name)
                    return outcome
                }
            }
        }

        try await users.recordSuccess(org: org.id, name: account.name)
        let twoFactors = needsSecondFactor || providerSecondFactor
        var session = Session(
            token: environment.credentials.newToken(), org: org.id,
            principal: .staff(user: account.name, role: account.role), createdAt: now, secondFactor: twoFactors,
            staffDisplayName: account.displayName)
        session.sso = sso
        session.secondFactorByProvider = providerSecondFactor && needsSecondFactor
        environment.sessions.insert(session)
        var detail = twoFactors ? "factors=2" : "factors=1"
        if providerSecondFactor { detail += " second_factor=provider" }
        try await audit(request, "login.success", actor: account.name, detail: detail + via)
        var forwarded = request
        forwarded.session = session
        var result = try await next(forwarded)
        result.bind = environment.sessions.session(session.token) ?? session
        result.recoveryCodes = outcome.recoveryCodes
        return result
    }

    // MARK: Single sign-on

    /// A login with the ticket the SSO callback page made after it verified the provider's ID
    /// token: the provider stands for the password. The account the token names must exist and
    /// be enabled (or is made, with `accounts=create`); where a second factor is needed and the
    /// token's `amr`/`acr` show none, the account's own TOTP is asked for (`code_required`).
    /// Logins, refusals and new accounts are audited with the issuer and subject.
    private func ssoLogin(_ request: Request, ticket: String, code: String?, next: Next) async throws -> Outcome {
        try admitLogin(request, charged: false)
        guard let provider = configuration.sso else {
            throw PipelineError.forbidden("\(org.displayName) has no single sign-on; log in with your password")
        }
        let now = environment.clock.now
        let lookup = environment.local.ssoTickets.lookup(ticket, org: org.id, at: now)
        // A console asking after its own device sign-in (a ticket only it was given) is waiting,
        // not guessing: that costs no login allowance.
        if lookup == .pending {
            throw PipelineError(.signInPending, "finish signing in at \(provider.name) in your browser, then this console continues")
        }
        try admitLogin(request)
        guard case .ready(let assertion)? = lookup, assertion.identity.provider == provider.name else {
            try await audit(request, "login.failure", actor: "sso:\(provider.name)", detail: "reason=sso_ticket")
            throw PipelineError(.authFailed, "this sign-on has expired or was already used; sign in again")
        }
        let busy = PipelineError.rateLimited("too many login attempts for this account at once", retryAfter: 2)
        return try await environment.throttle.accounts.run("\(org.id.rawValue)|\(assertion.user)", full: busy) {
            try await ssoAttempt(request, provider, assertion, ticket: ticket, code: code, now: now, next: next)
        }
    }

    /// Device sign-ins a console may start from one address per minute.
    static let deviceSignInsPerMinute = 6

    /// Starts a device sign-in for a terminal console: the provider's page and code for the
    /// person, and the ticket the console sends in `sso` frames until they have finished.
    private func ssoDevice(_ request: Request) async throws -> Outcome {
        try admitLogin(request)
        try take(RateLimiter.Key("sso_device", request.peer), Rate.perMinute(Self.deviceSignInsPerMinute),
                 "too many sign-ins started from this address")
        guard let provider = configuration.sso else {
            throw PipelineError.forbidden("\(org.displayName) has no single sign-on; log in with your password")
        }
        var outcome = Outcome()
        outcome.deviceSignIn = try await environment.signOn.startDevice(org: org.id, provider: provider, peer: request.peer, at: environment.clock.now)
        return outcome
    }

    private func ssoAttempt(
        _ request: Request, _ provider: SSOProvider, _ assertion: SSOAssertion, ticket: String, code: String?, now: Date, next: Next
    ) async throws -> Outcome {
        let identity = assertion.identity
        let via = " via=sso provider=\(provider.name) issuer=\(identity.issuer) subject=\(identity.subject)"
            + (identity.sessionID.map { " sid=\($0)" } ?? "")
        func refuse(_ reason: String) async throws -> Never {
            environment.local.ssoTickets.consume(ticket)
            try await audit(request, "login.failure", actor: assertion.user, detail: "reason=\(reason)" + via)
            throw PipelineError.authFailed
        }
        guard addressAllowed(request.peer) else { try await refuse("address") }
        var account = try await environment.users.user(org: org.id, name: assertion.user)
        if account == nil {
            guard provider.accounts == .create else { try await refuse("sso_no_account") }
            let role: Role = provider.adminGroup.map { assertion.roles.contains($0) } == true ? .admin : .staff
            let created = StaffUser(
                org: org.id, name: assertion.user, role: role, passwordHash: StaffUser.noPassword,
                displayName: assertion.displayName.flatMap(StaffUser.displayName(from:)))
            try await environment.users.add(created, at: now, audit: AuditEvent(
                at: now, org: org.id, actor: "sso:\(provider.name)", address: request.peer, action: "user.created",
                target: created.name, detail: "role=\(role.rawValue)" + via))
            account = created
        }
        guard let account else { try await refuse("sso_no_account") }
        guard !account.disabled else { try await refuse("disabled") }
        if account.throttle.isLocked(at: now) { try await refuse("locked") }
        let providerSecondFactor = provider.showsSecondFactor(amr: assertion.amr, acr: assertion.acr)
        let missing = PipelineError(.codeRequired, "\(provider.name) did not confirm a second factor; enter the code from your authenticator app")
        let outcome = try await finishLogin(
            request, account, code: code, now: now, sso: identity, providerSecondFactor: providerSecondFactor,
            missingCode: missing, via: via, next: next)
        if outcome.bind != nil { environment.local.ssoTickets.consume(ticket) }
        return outcome
    }

    /// Whether `account` logs in with a second factor: always where it is required; where it is
    /// optional, for accounts that enrolled and for every admin (the admin API needs one).
    private func needsSecondFactor(_ account: StaffUser) -> Bool {
        switch configuration.twoFactor {
        case .required: return true
        case .optional: return account.secondFactor.isEnrolled || account.role == .admin
        case .off: return false
        }
    }

    /// Counts a failure (locking the account at the limit), audits it, and refuses.
    private func fail(_ request: Request, _ account: StaffUser, reason: String) async throws -> Outcome {
        let throttle = try await environment.users.recordFailure(
            org: org.id, name: account.name, at: environment.clock.now,
            lockAfter: configuration.lockoutAttempts, lockFor: configuration.lockoutTime.seconds)
        try await audit(request, "login.failure", actor: account.name, detail: "reason=\(reason) failures=\(throttle.failures)")
        if throttle.failures == configuration.lockoutAttempts {
            try await audit(request, "account.locked", actor: "system", target: account.name, detail: "failures=\(throttle.failures)")
        }
        throw PipelineError.authFailed
    }

    private func addressAllowed(_ peer: String) -> Bool {
        guard !configuration.allow.isEmpty else { return true }
        guard let address = IPAddress(peer) else { return false }
        return configuration.allow.contains { $0.contains(address) }
    }

    /// Recovery codes are compared without dashes, spaces or case.
    static func normalised(_ code: String) -> String {
        code.lowercased().filter { $0.isLetter || $0.isNumber }
    }

    private func audit(_ request: Request, _ action: String, actor: String, target: String = "", detail: String = "") async throws {
        try await environment.audit.record(AuditEvent(
            at: environment.clock.now, org: org.id, actor: actor, address: request.peer, action: action, target: target, detail: detail))
    }

    // MARK: Everything else

    // MARK: HTTP requests

    /// An attachment's upload or download, over HTTP with a bearer token instead of a connection's
    /// session: a staff session's token (from `session`), or the visitor's reconnect token (from
    /// `welcome`), which stands for the visitor while its chat could still be resumed. Then the
    /// same checks as a frame's: the channel, the room, the sender's allowance.
    private func bearer(_ request: Request, next: Next) async throws -> Outcome {
        guard let credential = request.credential, !credential.isEmpty else {
            throw PipelineError(.unauthenticated, "send the session's token or the chat's token as Authorization: Bearer …")
        }
        let staff = environment.sessions.session(credential).flatMap { $0.org == org.id && $0.principal.isStaff ? $0 : nil }
        try checkChannel(request, widget: staff == nil)
        let session: Session
        if let staff {
            session = staff
        } else {
            let now = environment.clock.now
            let conversation = try await resumable(credential, at: now)
            // Stands for the visitor in this request only; never stored, never bound.
            session = Session(token: "", org: org.id, principal: .visitor(conversation.id), createdAt: now)
        }
        var forwarded = request
        forwarded.session = session
        if case .attach = request.frame, org.attachments == nil {
            throw PipelineError.forbidden("this organisation does not take attachments")
        }
        if case .download(let id) = request.frame {
            guard let attachment = try await environment.attachments.attachment(id), attachment.org == org.id else {
                throw PipelineError(.notFound, "no such attachment in this organisation (it may have been erased with its chat)")
            }
            forwarded.conversation = try await readableRoom(attachment.conversation, for: session)
        }
        return try await authorise(forwarded, next: next)
    }

    // MARK: Integrations

    /// An HTTP API call with an integration token (`Authorization: Bearer chk_…`): the token must
    /// be this organisation's, approved, unexpired, used from an allowed address, of an
    /// integration still declared (with a BAA for high-risk scopes in HIPAA mode), and hold the
    /// one scope the call needs (``APIScope/required(for:)``). Then the same checks as a frame's:
    /// the room, and the sender's allowance. No idle rule applies: a token is no person at a
    /// console. A call that reaches PHI is audited with the integration, the route and the time.
    private func integration(_ request: Request, secret: String, next: Next) async throws -> Outcome {
        guard let tokens = environment.tokens else { throw PipelineError(.unauthenticated, "this hub takes no integration tokens") }
        if org.hipaa && !request.channel.secure {
            throw PipelineError(.insecureTransport, "\(org.displayName) is reached only over TLS (https://); this request is plain http://")
        }
        try checkChannel(request, widget: false)
        // Guesses cost a lookup each: a limit per address before any.
        try take(RateLimiter.Key("api_address", "\(org.id.rawValue)|\(request.peer)"), Rate.perMinute(configuration.apiCallsPerMinute * 2),
                 "too many API calls from this address")
        let now = environment.clock.now
        guard let id = APIToken.id(ofSecret: secret), let token = try await tokens.token(id, digest: environment.credentials.digest(secret)),
              token.org == org.id
        else { throw PipelineError(.authFailed, "this is not a token of this organisation") }
        let actor = Principal.integration(name: token.integration, token: token.id, scopes: token.scopes).displayName
        if let refusal = token.refusal(from: IPAddress(request.peer), at: now, in: org) {
            try await audit(request, "api.refused", actor: actor, target: token.id.rawValue, detail: "reason=\(refusal.rawValue)")
            throw PipelineError(.authFailed, refusal.message(token))
        }
        try take(RateLimiter.Key("api_token", token.id.rawValue), Rate.perMinute(configuration.apiCallsPerMinute),
                 "too many API calls with this token")
        guard let needed = APIScope.required(for: request.frame) else {
            throw PipelineError.forbidden("integration tokens may not do '\(request.frame.kind.rawValue)'")
        }
        guard token.scopes.contains(needed) else {
            try await audit(request, "api.refused", actor: actor, target: token.id.rawValue, detail: "reason=scope scope=\(needed.rawValue)")
            throw PipelineError.forbidden("this token does not hold the scope \(needed.rawValue), which this call needs")
        }
        let session = Session(
            token: "", org: org.id, principal: .integration(name: token.integration, token: token.id, scopes: token.scopes), createdAt: now,
            staffDisplayName: org.displayName)
        var forwarded = request
        forwarded.session = session
        var outcome: Outcome
        switch request.frame {
        case .api(.open(let text)):
            outcome = try await open(forwarded, text: text, next: next)
        case .download(let id):
            guard let attachment = try await environment.attachments.attachment(id), attachment.org == org.id else {
                throw PipelineError(.notFound, "no such attachment in this organisation (it may have been erased with its chat)")
            }
            forwarded.conversation = try await readableRoom(attachment.conversation, for: session)
            outcome = try await next(forwarded)
        default:
            if let room = request.frame.room { forwarded.conversation = try await readableRoom(room, for: session) }
            outcome = try await next(forwarded)
            if outcome.conversation == nil { outcome.conversation = forwarded.conversation }
        }
        outcome.caller = session
        if needed.risk == .high {
            let room = outcome.conversation?.id.rawValue ?? forwarded.conversation?.id.rawValue ?? ""
            try await audit(request, "api.phi", actor: actor, target: room, detail: "token=\(token.id) scope=\(needed.rawValue) \(Self.route(request.endpoint))")
        }
        return outcome
    }

    /// Opens a conversation to a patient with the integration's first message: a conversation
    /// as a visitor's `hello` starts one (same limits, a fresh reconnect token for the patient),
    /// then the message goes down the chain as a `send`, sealed, stored and fanned out like any.
    private func open(_ request: Request, text: String, next: Next) async throws -> Outcome {
        let limits = org.limits
        try take(RateLimiter.Key("conversations_org", org.id.rawValue), Rate.perMinute(limits.conversationsPerMinute),
                 "too many new conversations in this organisation right now")
        let now = environment.clock.now
        let reconnectToken = environment.credentials.newToken()
        let conversation = try await environment.conversations.create(
            org: org.id, tokenDigest: environment.credentials.digest(reconnectToken), at: now, offline: false)
        var forwarded = request
        forwarded.frame = .send(room: conversation.id, text: text)
        forwarded.conversation = conversation
        forwarded.startsConversation = true
        var outcome = try await next(forwarded)
        outcome.conversation = conversation
        outcome.visitorToken = reconnectToken
        return outcome
    }

    /// `method=GET route=/api/v1/…` for the audit trail.
    private static func route(_ endpoint: String?) -> String {
        guard let endpoint, let space = endpoint.firstIndex(of: " ") else { return "route=unknown" }
        return "method=\(endpoint[..<space]) route=\(endpoint[endpoint.index(after: space)...])"
    }

    /// `room` if `session` may read it: its own room for a visitor; under `staff_access=assigned`
    /// only rooms assigned to a staff member (admins reach every room, they assign).
    private func readableRoom(_ room: ConversationID, for session: Session) async throws -> Conversation {
        guard session.principal.mayAccess(room) else {
            throw PipelineError.forbidden("a visitor may only use its own room")
        }
        guard let conversation = try await environment.conversations.conversation(room), conversation.org == org.id else {
            throw PipelineError.notFound(room)
        }
        guard org.mayRead(conversation, as: session.principal) else {
            throw PipelineError.forbidden("this conversation is not assigned to you")
        }
        return conversation
    }

    private func authorise(_ request: Request, next: Next) async throws -> Outcome {
        guard let session = request.session else { throw PipelineError.unauthenticated }
        var forwarded = request
        switch request.frame {
        case .rooms, .subscribe, .unsubscribe, .activity, .presence, .team, .claim, .transfer, .read:
            guard session.principal.isStaff else {
                throw PipelineError.forbidden("only staff may do '\(request.frame.kind.rawValue)'; a visitor is in its own room")
            }
        case .replies:
            guard session.principal.isStaff else { throw PipelineError.forbidden("only staff may list canned replies") }
        case .transcript:
            guard !session.principal.isStaff else {
                throw PipelineError.forbidden("only the visitor may ask for a transcript copy")
            }
        case .assign:
            guard session.principal.role == .admin else { throw PipelineError.forbidden("only an admin may assign conversations") }
        case .admin:
            guard session.principal.role == .admin else { throw PipelineError.forbidden("only an admin may use the admin API") }
            guard session.secondFactor else {
                throw PipelineError.forbidden("the admin API needs a login with a second factor, which twofactor=off in this organisation's auth stage does not ask for")
            }
        default:
            break
        }
        if let room = request.frame.room {
            // Minimum necessary: see ``readableRoom(_:for:)``.
            forwarded.conversation = try await readableRoom(room, for: session)
        }
        // Counted only once the sender may use the room, so nobody can spend another's allowance.
        switch request.frame {
        case .send(let room, _), .attach(let room, _):
            let limits = org.limits
            try take(RateLimiter.Key("messages_conversation", room.rawValue),
                     Rate(limits.messagesPerSecond, per: 1, burst: limits.messageBurst), "too many messages in this conversation")
        default:
            break
        }
        var outcome = try await next(forwarded)
        if outcome.conversation == nil { outcome.conversation = forwarded.conversation }
        if case .logout = request.frame {
            environment.sessions.remove(session.token)
            outcome.unbind = true
            if session.principal.isStaff {
                environment.announcePresence(org: org.id)
                try await audit(request, "logout", actor: session.principal.displayName)
            }
        }
        return outcome
    }
}

/// When the auth stage last checked live sessions against their accounts.
final class RevalidationClock: Sendable {
    private let last = Mutex<Date?>(nil)

    /// True (and records `now`) if at least `interval` passed since the last time it said true.
    func due(at now: Date, every interval: TimeInterval) -> Bool {
        last.withLock { last in
            if let previous = last, now.timeIntervalSince(previous) < interval { return false }
            last = now
            return true
        }
    }
}
