import CareHubCore
import CareHubCrypto
import CareHubOIDC
import CareHubTransport
import Foundation
import Logging
import Synchronization

/// The hub's side of OpenID Connect for staff: the authorization code flow with PKCE, `state`
/// and `nonce`, the ID token checked against the provider's keys, and back-channel logout.
///
/// 1. ``begin(org:provider:redirectURI:page:at:)`` keeps a pending login under a fresh `state`
///    and returns the provider's authorization URL.
/// 2. ``finish(org:provider:state:code:peer:at:)`` takes the pending login (once), trades the code
///    at the token endpoint (client_secret_basic, the secret read from its file each time),
///    validates the ID token (signature with RS256 or ES256, `iss`, `aud`, `azp`, `exp`, `iat`,
///    `nonce`; the key set is fetched again once for an unknown `kid`), and holds the verified
///    identity under a one-time ticket (``SSOTickets``) for the console's `sso` frame.
/// 3. ``logout(org:provider:token:peer:at:)`` checks a back-channel logout token and ends the
///    sessions it names.
///
/// Discovery documents and key sets are cached per provider for ``cacheLifetime``. Refusals are
/// audited with the provider, issuer and the reason, never a token.
final class SSOLogins: SignOn {
    /// Why a login or logout was refused: the audit's reason and the words the person sees.
    struct Refusal: Error, CustomStringConvertible {
        let reason: String
        let message: String
        /// Whether the refusal is on the audit record already.
        var audited = false
        var description: String { message }
    }

    private struct Pending {
        let org: OrgID
        let provider: String
        let nonce: String
        let verifier: String
        let redirectURI: String
        let page: String
        let expires: Date
    }

    private struct ProviderState {
        var metadata: OIDCProviderMetadata
        var keys: JSONWebKeySet?
        var fetchedAt: Date
        var keysFetchedAt: Date?
    }

    /// How long a discovery document and key set are used before they are fetched again.
    static let cacheLifetime: TimeInterval = 3600
    /// How soon an unknown `kid` may fetch the key set again.
    static let keyRefreshInterval: TimeInterval = 30
    /// How long the provider may take to send the person back.
    static let pendingLifetime: TimeInterval = 600
    /// Logins waiting for their callback at once; the oldest goes first.
    static let pendingCapacity = 10_000
    /// Logout token ids remembered against replay (for their maximum age).
    static let seenLogoutCapacity = 10_000

    private let tickets: SSOTickets
    private let sessions: any SessionStore
    private let events: any PipelineEvents
    private let audit: any AuditLog
    private let integrations: Integrations
    private let clock: any WallClock
    private let logger: Logger
    private let devices = Mutex<[String: Task<Void, Never>]>([:])
    private let pending = Mutex<[String: Pending]>([:])
    private let providers = Mutex<[String: ProviderState]>([:])
    private let seenLogouts = Mutex<[String: Date]>([:])

    init(
        tickets: SSOTickets, sessions: any SessionStore, events: any PipelineEvents, audit: any AuditLog, integrations: Integrations,
        clock: any WallClock, logger: Logger
    ) {
        self.clock = clock
        self.tickets = tickets
        self.sessions = sessions
        self.events = events
        self.audit = audit
        self.integrations = integrations
        self.logger = logger
    }

    // MARK: The login

    /// The provider's authorization URL for a new login that returns to `redirectURI`, and then
    /// to the console `page`.
    func begin(org: OrgID, provider: SSOProvider, redirectURI: String, page: String, at now: Date) async throws -> String {
        let metadata = try await metadata(of: provider, at: now)
        let pkce = PKCE.make()
        let state = AuthorizationRandom.state()
        let nonce = AuthorizationRandom.nonce()
        pending.withLock { pending in
            pending = pending.filter { $0.value.expires > now }
            if pending.count >= Self.pendingCapacity, let oldest = pending.min(by: { $0.value.expires < $1.value.expires })?.key {
                pending.removeValue(forKey: oldest)
            }
            pending[state] = Pending(
                org: org, provider: provider.name, nonce: nonce, verifier: pkce.verifier, redirectURI: redirectURI, page: page,
                expires: now.addingTimeInterval(Self.pendingLifetime))
        }
        let request = AuthorizationRequest(
            authorizationEndpoint: metadata.authorizationEndpoint, clientID: provider.clientID, redirectURI: redirectURI,
            scopes: provider.scopes, state: state, nonce: nonce, codeChallenge: pkce.challenge)
        return try request.url().absoluteString
    }

    /// The console page a pending login returns to, or nil for an unknown `state`.
    func page(of state: String) -> String? { pending.withLock { $0[state]?.page } }

    /// Completes a login: returns the ticket for the console and the page to return to. Every
    /// refusal is audited, the provider's unreachable discovery or keys included.
    func finish(org: OrgID, provider: SSOProvider, state: String, code: String, peer: String, at now: Date) async throws -> (ticket: String, page: String) {
        do {
            return try await exchange(org: org, provider: provider, state: state, code: code, peer: peer, at: now)
        } catch let refusal as Refusal where !refusal.audited {
            try await record(org, provider, peer, at: now, action: "login.failure",
                             detail: "reason=\(refusal.reason) via=sso provider=\(provider.name) issuer=\(provider.issuer)")
            throw refusal
        }
    }

    private func exchange(org: OrgID, provider: SSOProvider, state: String, code: String, peer: String, at now: Date) async throws -> (ticket: String, page: String) {
        guard let login = pending.withLock({ $0.removeValue(forKey: state) }), login.expires > now, login.org == org, login.provider == provider.name else {
            try await refuse(org, provider, peer, at: now, reason: "state", "This sign-in link was already used or has expired. Start again.")
        }
        let metadata = try await metadata(of: provider, at: now)
        let secret = try clientSecret(provider)
        let body = TokenRequest.authorizationCodeBody(code: code, redirectURI: login.redirectURI, codeVerifier: login.verifier)
        let answer: HTTPClient.Response
        do {
            answer = try await send(
                "POST", metadata.tokenEndpoint, provider: provider, body: Array(body.utf8), contentType: TokenRequest.contentType,
                headers: [("Authorization", TokenRequest.basicAuthorization(clientID: provider.clientID, clientSecret: secret)),
                          ("Accept", "application/json")],
                limit: TokenResponse.maximumByteCount)
        } catch {
            logger.warning("SSO token endpoint unreachable", metadata: ["org.id": "\(org)", "sso.provider": "\(provider.name)", "error": "\(error)"])
            try await refuse(org, provider, peer, at: now, reason: "token_endpoint", "\(provider.name) could not be reached. Try again in a moment.")
        }
        let tokens: TokenResponse
        do {
            tokens = try TokenResponse(json: answer.body)
        } catch {
            // The provider's own error code (invalid_grant, …) is safe to record; the body is not kept.
            try await refuse(org, provider, peer, at: now, reason: "token_endpoint status=\(answer.status)", "\(provider.name) refused this sign-in. Start again.")
        }
        guard (200..<300).contains(answer.status), let idToken = tokens.idToken else {
            try await refuse(org, provider, peer, at: now, reason: "token_endpoint status=\(answer.status)", "\(provider.name) refused this sign-in. Start again.")
        }
        let validator = IDTokenValidator(issuer: provider.issuer, clientID: provider.clientID)
        let claims: IDTokenClaims
        // Judged at the time the token arrived, not when the browser came back.
        let received = clock.now
        do {
            claims = try await verified(provider, at: received) { keys in try validator.validate(idToken, nonce: login.nonce, keys: keys, now: received) }
        } catch let error as OIDCError {
            try await refuse(org, provider, peer, at: now, reason: error.reason, "The sign-in from \(provider.name) could not be verified. Start again.")
        }
        let assertion = try await assertion(of: claims, org: org, provider: provider, peer: peer, at: now)
        let ticket = Base64URL.encode(SecureRandom.bytes(32))
        tickets.insert(ticket, assertion, at: now)
        return (ticket, login.page)
    }

    /// The verified claims as the auth stage takes them: the subject (auditable as it is) and
    /// the `claim_user` account name are required.
    private func assertion(of claims: IDTokenClaims, org: OrgID, provider: SSOProvider, peer: String, at now: Date) async throws -> SSOAssertion {
        guard let subject = claims.subject, Self.isAuditable(subject) else {
            try await refuse(org, provider, peer, at: now, reason: "invalid_subject", "The sign-in from \(provider.name) could not be verified. Start again.")
        }
        guard let user = claims.string(provider.userClaim), StaffUser.isValidName(user) else {
            try await refuse(org, provider, peer, at: now, reason: "claim_user subject=\(subject)",
                             "\(provider.name) did not say which CareHub account this is (\(provider.userClaim)). Ask your admin.")
        }
        return SSOAssertion(
            org: org, identity: SSOIdentity(provider: provider.name, issuer: provider.issuer, subject: subject, sessionID: claims.sessionID.flatMap { Self.isAuditable($0) ? $0 : nil }),
            user: user, roles: provider.roleClaim.flatMap { claims.strings($0) } ?? [],
            amr: claims.authenticationMethods ?? [], acr: claims.authenticationContextClass,
            displayName: claims.string("name"))
    }

    // MARK: Device sign-in (terminal consoles)

    /// Device sign-ins waiting for their person at once.
    static let deviceCapacity = 100

    /// Starts the provider's device authorization (RFC 8628) and polls its token endpoint in the
    /// background until the person finishes, refuses, or the code expires; the ticket is
    /// pending until then.
    func startDevice(org: OrgID, provider: SSOProvider, peer: String, at now: Date) async throws -> DeviceSignIn {
        let metadata = try await metadata(of: provider, at: now)
        guard let endpoint = metadata.deviceAuthorizationEndpoint else {
            throw PipelineError(.forbidden, "\(provider.name) offers no sign-in for terminals; log in at the web console")
        }
        guard devices.withLock({ $0.count }) < Self.deviceCapacity else {
            throw PipelineError.rateLimited("too many terminal sign-ins are waiting on this hub", retryAfter: 30)
        }
        let secret = try clientSecret(provider)
        let authorization = TokenRequest.basicAuthorization(clientID: provider.clientID, clientSecret: secret)
        let body = FormEncoding.encode([("client_id", provider.clientID), ("scope", provider.scopes.joined(separator: " "))])
        let answer: HTTPClient.Response
        do {
            answer = try await send("POST", endpoint, provider: provider, body: Array(body.utf8), contentType: TokenRequest.contentType,
                                    headers: [("Authorization", authorization), ("Accept", "application/json")], limit: 64 * 1024)
        } catch {
            throw PipelineError(.unavailable, "\(provider.name) could not be reached; try again in a moment")
        }
        guard answer.status == 200,
              let fields = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any],
              let deviceCode = fields["device_code"] as? String, let userCode = fields["user_code"] as? String,
              let verification = fields["verification_uri"] as? String, EndpointPolicy.isAllowed(verification),
              deviceCode.utf8.count <= 1024, userCode.utf8.count <= 64
        else {
            try await record(org, provider, peer, at: now, action: "login.failure",
                             detail: "reason=device_authorization status=\(answer.status) via=sso provider=\(provider.name) issuer=\(provider.issuer)")
            throw PipelineError(.unavailable, "\(provider.name) did not start the sign-in; try again in a moment")
        }
        let complete = (fields["verification_uri_complete"] as? String).flatMap { EndpointPolicy.isAllowed($0) ? $0 : nil }
        let expiresIn = min(max((fields["expires_in"] as? NSNumber)?.intValue ?? 600, 60), 1800)
        let interval = min(max((fields["interval"] as? NSNumber)?.intValue ?? 5, 1), 60)
        let ticket = Base64URL.encode(SecureRandom.bytes(32))
        let deadline = now.addingTimeInterval(TimeInterval(expiresIn))
        tickets.reserve(ticket, org: org, until: deadline, at: now)
        let task = Task { [self] in
            await pollDevice(org: org, provider: provider, deviceCode: deviceCode, ticket: ticket, interval: interval, deadline: deadline,
                             authorization: authorization, endpoint: metadata.tokenEndpoint, peer: peer)
            _ = devices.withLock { $0.removeValue(forKey: ticket) }
        }
        devices.withLock { $0[ticket] = task }
        return DeviceSignIn(
            verificationURI: verification, verificationURIComplete: complete, userCode: userCode, ticket: ticket, expiresIn: expiresIn,
            interval: interval)
    }

    private func pollDevice(
        org: OrgID, provider: SSOProvider, deviceCode: String, ticket: String, interval: Int, deadline: Date,
        authorization: String, endpoint: URL, peer: String
    ) async {
        var wait = interval
        let body = FormEncoding.encode([("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", deviceCode),
                                        ("client_id", provider.clientID)])
        while !Task.isCancelled, clock.now < deadline {
            try? await Task.sleep(for: .seconds(wait))
            guard !Task.isCancelled else { return }
            let now = clock.now
            let answer: HTTPClient.Response
            do {
                answer = try await send("POST", endpoint, provider: provider, body: Array(body.utf8), contentType: TokenRequest.contentType,
                                        headers: [("Authorization", authorization), ("Accept", "application/json")],
                                        limit: TokenResponse.maximumByteCount)
            } catch {
                continue  // the provider is unreachable for now: ask again at the next interval
            }
            let tokens: TokenResponse
            do {
                tokens = try TokenResponse(json: answer.body)
            } catch OIDCError.tokenEndpoint(let error, _) where error == "authorization_pending" {
                continue
            } catch OIDCError.tokenEndpoint(let error, _) where error == "slow_down" {
                wait += 5
                continue
            } catch {
                let code = (error as? OIDCError).map { error -> String in
                    if case .tokenEndpoint(let code, _) = error { return String(code.prefix(64).filter { $0.isLetter || $0 == "_" }) }
                    return error.reason
                } ?? "token_endpoint"
                tickets.consume(ticket)
                try? await record(org, provider, peer, at: now, action: "login.failure",
                                  detail: "reason=device error=\(code) via=sso provider=\(provider.name) issuer=\(provider.issuer)")
                return
            }
            guard let idToken = tokens.idToken else {
                tickets.consume(ticket)
                try? await record(org, provider, peer, at: now, action: "login.failure",
                                  detail: "reason=token_endpoint via=sso provider=\(provider.name) issuer=\(provider.issuer)")
                return
            }
            let validator = IDTokenValidator(issuer: provider.issuer, clientID: provider.clientID)
            do {
                let claims = try await verified(provider, at: now) { keys in try validator.validate(idToken, nonce: nil, keys: keys, now: now) }
                tickets.fulfil(ticket, try await assertion(of: claims, org: org, provider: provider, peer: peer, at: now), at: now)
            } catch {
                tickets.consume(ticket)
                if let error = error as? OIDCError {
                    try? await record(org, provider, peer, at: now, action: "login.failure",
                                      detail: "reason=\(error.reason) via=sso provider=\(provider.name) issuer=\(provider.issuer)")
                }
            }
            return
        }
        tickets.consume(ticket)
    }

    /// Stops the device sign-ins still waiting (the hub is stopping).
    func shutdown() async {
        let waiting = devices.withLock { devices -> [Task<Void, Never>] in
            defer { devices = [:] }
            return Array(devices.values)
        }
        for task in waiting { task.cancel() }
        for task in waiting { await task.value }
    }

    /// The provider sent the person back with an OAuth `error` (they cancelled, or it refused
    /// them): the pending login ends, and the error's code is audited.
    func cancel(org: OrgID, provider: SSOProvider, state: String, error code: String, peer: String, at now: Date) async {
        _ = pending.withLock { $0.removeValue(forKey: state) }
        try? await record(org, provider, peer, at: now, action: "login.failure",
                          detail: "reason=provider_error error=\(code.isEmpty ? "unknown" : code) via=sso provider=\(provider.name) issuer=\(provider.issuer)")
    }

    // MARK: Back-channel logout

    /// Checks a back-channel logout token and ends every session of `org` it names (by `sid`, or
    /// by `sub` when it names no session); returns how many ended.
    func logout(org: OrgID, provider: SSOProvider, token: String, peer: String, at now: Date) async throws -> Int {
        let validator = LogoutTokenValidator(issuer: provider.issuer, clientID: provider.clientID)
        let logout: LogoutToken
        do {
            logout = try await verified(provider, at: now) { keys in try validator.validate(token, keys: keys, now: now) }
        } catch let error as OIDCError {
            try await record(org, provider, peer, at: now, action: "sso.logout_refused", detail: "reason=\(error.reason)")
            throw Refusal(reason: error.reason, message: "the logout token was refused: \(error.reason)", audited: true)
        } catch let refusal as Refusal {
            try await record(org, provider, peer, at: now, action: "sso.logout_refused", detail: "reason=\(refusal.reason)")
            throw refusal
        }
        let replayed = seenLogouts.withLock { seen -> Bool in
            seen = seen.filter { $0.value > now }
            if seen[logout.jwtID] != nil { return true }
            if seen.count >= Self.seenLogoutCapacity, let oldest = seen.min(by: { $0.value < $1.value })?.key { seen.removeValue(forKey: oldest) }
            seen[logout.jwtID] = now.addingTimeInterval(validator.maximumAge + validator.clockSkew)
            return false
        }
        if replayed {
            try await record(org, provider, peer, at: now, action: "sso.logout_refused", detail: "reason=replayed")
            throw Refusal(reason: "replayed", message: "this logout token was already used")
        }
        let subject = logout.subject.flatMap { Self.isAuditable($0) ? $0 : nil }
        let named = sessions.sessions(of: org).filter { session in
            guard let identity = session.sso, identity.provider == provider.name, identity.issuer == logout.issuer else { return false }
            if let sid = logout.sessionID {
                return identity.sessionID == sid && (logout.subject == nil || identity.subject == logout.subject)
            }
            return identity.subject == logout.subject
        }
        // On the record before anyone's console hears of it.
        try await record(org, provider, peer, at: now, action: "sso.logout",
                         detail: "issuer=\(provider.issuer)" + (subject.map { " subject=\($0)" } ?? "") + " sessions=\(named.count)")
        var ended = 0
        for session in named {
            guard sessions.remove(session.token) != nil, let identity = session.sso else { continue }
            ended += 1
            try? await audit.record(AuditEvent(
                at: now, org: org, actor: "sso:\(provider.name)", address: peer, action: "session.revoked",
                target: session.principal.displayName, detail: "reason=sso_logout subject=\(identity.subject)"))
            events.emit(.sessionExpired(session, .revoked))
        }
        return ended
    }

    // MARK: The provider

    /// The provider's discovery document, fetched when missing or older than ``cacheLifetime``.
    func metadata(of provider: SSOProvider, at now: Date) async throws -> OIDCProviderMetadata {
        let key = Self.key(provider)
        if let state = providers.withLock({ $0[key] }), now.timeIntervalSince(state.fetchedAt) < Self.cacheLifetime { return state.metadata }
        let base = provider.issuer.hasSuffix("/") ? String(provider.issuer.dropLast()) : provider.issuer
        guard let url = URL(string: base + "/.well-known/openid-configuration") else {
            throw Refusal(reason: "discovery", message: "the issuer of \(provider.name) is not a URL")
        }
        let metadata: OIDCProviderMetadata
        do {
            let answer = try await send("GET", url, provider: provider, limit: OIDCProviderMetadata.maximumByteCount)
            guard answer.status == 200 else { throw Refusal(reason: "discovery", message: "discovery answered HTTP \(answer.status)") }
            metadata = try OIDCProviderMetadata(json: answer.body, expectedIssuer: provider.issuer)
        } catch {
            logger.warning("SSO discovery failed", metadata: ["sso.provider": "\(provider.name)", "sso.issuer": "\(provider.issuer)", "error": "\(error)"])
            throw Refusal(reason: "discovery", message: "\(provider.name) could not be reached. Try again in a moment.")
        }
        providers.withLock { $0[key] = ProviderState(metadata: metadata, keys: nil, fetchedAt: now, keysFetchedAt: nil) }
        return metadata
    }

    /// Runs `check` with the provider's key set; on an unknown `kid` fetches the set again (at
    /// most every ``keyRefreshInterval``) and runs it once more.
    private func verified<T>(_ provider: SSOProvider, at now: Date, _ check: (JSONWebKeySet) throws -> T) async throws -> T {
        var keys = try await keySet(of: provider, at: now, refresh: false)
        do {
            return try check(keys)
        } catch OIDCError.unknownKey {
            keys = try await keySet(of: provider, at: now, refresh: true)
            return try check(keys)
        }
    }

    private func keySet(of provider: SSOProvider, at now: Date, refresh: Bool) async throws -> JSONWebKeySet {
        let key = Self.key(provider)
        let metadata = try await metadata(of: provider, at: now)
        if let state = providers.withLock({ $0[key] }), let keys = state.keys, let fetched = state.keysFetchedAt {
            let fresh = now.timeIntervalSince(fetched) < (refresh ? Self.keyRefreshInterval : Self.cacheLifetime)
            if fresh { return keys }
        }
        let keys: JSONWebKeySet
        do {
            let answer = try await send("GET", metadata.jwksURI, provider: provider, limit: JSONWebKeySet.maximumByteCount)
            guard answer.status == 200 else { throw Refusal(reason: "jwks", message: "the key set answered HTTP \(answer.status)") }
            keys = try JSONWebKeySet(json: answer.body)
        } catch {
            logger.warning("SSO key set fetch failed", metadata: ["sso.provider": "\(provider.name)", "error": "\(error)"])
            throw Refusal(reason: "jwks", message: "\(provider.name) could not be reached. Try again in a moment.")
        }
        providers.withLock { providers in
            providers[key]?.keys = keys
            providers[key]?.keysFetchedAt = now
        }
        return keys
    }

    private func send(
        _ method: String, _ url: URL, provider: SSOProvider, body: [UInt8]? = nil, contentType: String? = nil,
        headers: [(name: String, value: String)] = [], limit: Int
    ) async throws -> HTTPClient.Response {
        guard let target = WebhookURL(url.absoluteString), EndpointPolicy.isAllowed(url) else {
            throw Refusal(reason: "insecure_endpoint", message: "\(url.absoluteString) is not an https:// URL")
        }
        let client = try integrations.client(caFile: provider.caFile)
        return try await client.send(
            method: method, host: target.host, port: target.port, path: target.path, tls: target.isHTTPS, body: body,
            contentType: contentType, headers: headers, maxResponseBytes: limit)
    }

    /// The client secret, read from its file at each use (so a rotated secret needs no reload).
    private func clientSecret(_ provider: SSOProvider) throws -> String {
        guard let data = FileManager.default.contents(atPath: provider.clientSecretFile), let text = String(data: data, encoding: .utf8) else {
            logger.error("SSO client secret file unreadable", metadata: ["sso.provider": "\(provider.name)", "file": "\(provider.clientSecretFile)"])
            throw Refusal(reason: "client_secret", message: "Single sign-on is not set up correctly on this hub. Tell your admin.")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func key(_ provider: SSOProvider) -> String { "\(provider.issuer)|\(provider.clientID)|\(provider.caFile ?? "")" }

    /// A subject that can stand in an audit row as it is: printable ASCII, no spaces, at most 255.
    static func isAuditable(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 255 && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 }
    }

    // MARK: Audit

    private func refuse(_ org: OrgID, _ provider: SSOProvider, _ peer: String, at now: Date, reason: String, _ message: String) async throws -> Never {
        try await record(org, provider, peer, at: now, action: "login.failure", detail: "reason=\(reason) via=sso provider=\(provider.name) issuer=\(provider.issuer)")
        throw Refusal(reason: reason, message: message, audited: true)
    }

    private func record(_ org: OrgID, _ provider: SSOProvider, _ peer: String, at now: Date, action: String, detail: String) async throws {
        try await audit.record(AuditEvent(at: now, org: org, actor: "sso:\(provider.name)", address: peer, action: action, target: "", detail: detail))
    }
}
