import CareHubCore
import CareHubCrypto
import CareHubStages
import CareHubStorage
import CareHubTransport
import Foundation
import Logging
import Synchronization

/// The running hub: the transport, the organisations' pipelines, and the adapters behind their ports.
///
/// Frames from one connection are handled in order (``ConnectionInbox``); different connections
/// run concurrently. The hub never logs message text, passwords or tokens.
public final class Hub: Sendable {
    private struct State {
        var config: HubConfig
        var pipelines: [OrgID: Pipeline]
        var draining = false
    }

    /// The options the hub was started with.
    public let options: HubOptions
    let logger: Logger
    let database: CareHubDatabase
    private let messages: SQLiteMessageStore
    private let sessions = InMemorySessionStore()
    private let registry: ConnectionRegistry
    let environment: StageEnvironment
    private let state: Mutex<State>
    private let transport = TransportSlot()
    private let ticker = Mutex<Task<Void, Never>?>(nil)
    private let events = HubEvents()
    private let metrics = HubMetrics()
    let audit: SQLiteAuditLog
    let conversations: SQLiteConversationStore
    private let outbox: SQLiteOutbox
    private let integrations = Integrations()
    private let dispatcher = Mutex<Task<Void, Never>?>(nil)
    private let backlog = Mutex(HubMetrics.Backlog())
    let scrypt: ScryptCredentials
    /// Audit writes and sealing started where nothing can wait for them; shutdown waits.
    private let pending = PendingWork()
    private let throttle: Throttle
    /// Signs the audit chain's checkpoints; the admin API verifies with it.
    let auditKey: SymmetricKey
    /// Set while an admin change to pipeline.conf is being checked, written and applied.
    let adminChangeRunning = Mutex(false)

    /// Opens the database and master key and loads pipeline.conf. Throws ``ConfigError``,
    /// ``HubError`` or a storage error, each with a readable description.
    public init(options: HubOptions, logger: Logger) throws {
        self.options = options
        self.logger = logger
        let config = try ConfigLoader.load(path: options.configPath)
        database = try CareHubDatabase(directory: options.dataDirectory, backgroundCheckpoints: true)
        let transport = self.transport
        registry = ConnectionRegistry(sessions: sessions) { handle, json in
            if OutgoingBatch.current?.add(json, to: handle) != true { transport.server?.send(json, to: handle) }
        }
        let master = try MasterKey.load(dataDirectory: options.dataDirectory)
        auditKey = try MasterKey.auditKey(from: master)
        let anchor = try AuditAnchor(path: options.auditAnchorPath, logger: logger)
        audit = SQLiteAuditLog(database: database, checkpointKey: auditKey, sink: anchor)
        messages = SQLiteMessageStore(database: database, audit: audit)
        conversations = SQLiteConversationStore(database: database)
        outbox = SQLiteOutbox(database: database)
        scrypt = try ScryptCredentials()
        throttle = Throttle(hub: options.limits)
        environment = StageEnvironment(
            clock: SystemClock(),
            conversations: ConversationCache(conversations),
            messages: messages,
            users: SQLiteUserDirectory(database: database, audit: audit),
            credentials: scrypt,
            cipher: EnvelopeCipher(master: master, store: SQLiteKeyStore(database: database)),
            sessions: sessions,
            rooms: registry,
            notifier: outbox,
            events: events,
            audit: audit,
            exporter: HubTranscriptExporter(integrations: integrations),
            replies: SQLiteCannedReplies(database: database, audit: audit),
            throttle: throttle)
        state = Mutex(State(config: config, pipelines: [:]))
        state.withLock { $0.pipelines = Self.pipelines(for: config, environment: environment, timer: metrics) }
        events.handler.withLock { [registry, sessions, logger] handler in
            handler = { event in Self.handle(event, registry: registry, sessions: sessions, logger: logger) }
        }
    }

    /// The configuration in force.
    public var config: HubConfig { state.withLock { $0.config } }

    /// Starts listening and returns the bound port.
    public func start() throws -> Int {
        let server = WebSocketServer(
            configuration: WebSocketServer.Configuration(
                host: options.host, port: options.port, webSocketPath: "/ws", staticRoot: options.staticRoot,
                maxMessageBytes: options.maxFrameBytes, tlsCertificatePath: options.tlsCertificatePath,
                tlsPrivateKeyPath: options.tlsPrivateKeyPath,
                textRoutes: ["/metrics": { [self] in self.renderMetrics() }],
                admit: { [self] info in self.admit(info) })
        ) { [self] handle, event in
            self.receive(event, from: handle)
        }
        transport.server = server
        let port: Int
        do {
            port = try server.start()
        } catch {
            transport.server = nil
            throw HubError.listen("\(error)")
        }
        let task = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let now = Date()
                for pipeline in state.withLock({ Array($0.pipelines.values) }) { await pipeline.tick(at: now) }
            }
        }
        ticker.withLock { $0 = task }
        let dispatch = Task { [self] in
            var round = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                await dispatchNotifications(at: Date())
                if round % 5 == 0 { await refreshBacklog() }
                round += 1
            }
        }
        dispatcher.withLock { $0 = dispatch }
        logger.info("listening", metadata: ["listen.address": "\(server.listeningAddress.map { "\($0)" } ?? "\(options.host):\(port)")", "tls": "\(options.tlsCertificatePath != nil)"])
        return port
    }

    /// Re-reads pipeline.conf and applies it to new requests without dropping connections.
    /// If the file is invalid the configuration in force stays, and the errors are returned.
    @discardableResult
    public func reload() -> Result<HubConfig, ConfigError> {
        do {
            let config = try ConfigLoader.load(path: options.configPath)
            for org in apply(config) {
                // Edited on the host: what the organisation stored before is sealed now, and the
                // log says when it is done.
                pending.start { [self] in
                    do {
                        _ = try await sealEarlierRecords(of: org, actor: ("system", "local"))
                    } catch {
                        logger.error("sealing the records kept before HIPAA mode failed; reload again to retry", metadata: [
                            "org.id": "\(org)", "error.type": "\(type(of: error))",
                        ])
                    }
                }
            }
            logger.info("configuration reloaded", metadata: ["config.orgs": "\(config.orgs.count)"])
            return .success(config)
        } catch let error as ConfigError {
            logger.error("configuration refused; keeping the one in force", metadata: ["config.errors": "\(error.issues.count)"])
            for issue in error.issues { logger.error("\(issue)") }
            return .failure(error)
        } catch {
            let issue = ConfigIssue(file: options.configPath, line: 0, message: "\(error)")
            logger.error("\(issue)")
            return .failure(ConfigError([issue]))
        }
    }

    /// Puts a checked configuration in force: new pipelines take the next request, live
    /// connections stay, organisations entering HIPAA mode start over, and each organisation's
    /// change is audited: `admin`'s organisation in the admin's name, any other (edited on the
    /// host and not reloaded yet) as `system`.
    /// Returns the organisations that entered HIPAA mode; their earlier records are sealed by
    /// ``sealEarlierRecords(of:actor:)``, which the caller runs.
    @discardableResult
    func apply(_ config: HubConfig, admin: (org: OrgID, user: String, address: String)? = nil) -> [OrgID] {
        let actor = { (org: OrgID) -> (String, String) in
            admin.map { $0.org == org ? ($0.user, $0.address) : ("system", "local") } ?? ("system", "local")
        }
        let pipelines = Self.pipelines(for: config, environment: environment, timer: metrics)
        let previous = state.withLock { state -> HubConfig in
            defer {
                state.config = config
                state.pipelines = pipelines
            }
            return state.config
        }
        endSessionsOfOrgsEnteringHIPAAMode(from: previous, to: config, actor: actor)
        recordConfigurationChanges(from: previous, to: config, actor: actor)
        return config.orgs.filter { $0.settings.hipaa && previous.org($0.settings.id)?.settings.hipaa == false }.map(\.settings.id)
    }

    /// Seals every message and pre-chat form `org` stored in plain text before it entered HIPAA
    /// mode (``EncryptStage/sealStored(org:environment:)``), leaving no plain copy in the
    /// database, its WAL or its free pages, and audits `hipaa.sealed` with the counts.
    func sealEarlierRecords(of org: OrgID, actor: (name: String, address: String), alreadySealed: (messages: Int, forms: Int) = (0, 0)) async throws -> (messages: Int, forms: Int) {
        let sealed = try await EncryptStage.sealStored(org: org, environment: environment)
        try await database.truncateLog()
        let total = (messages: sealed.messages + alreadySealed.messages, forms: sealed.forms + alreadySealed.forms)
        try await audit.record(AuditEvent(
            at: Date(), org: org, actor: actor.name, address: actor.address, action: "hipaa.sealed",
            detail: "messages=\(total.messages) forms=\(total.forms)"))
        logger.notice("records kept before HIPAA mode are sealed", metadata: [
            "org.id": "\(org)", "messages": "\(total.messages)", "forms": "\(total.forms)",
        ])
        return total
    }

    /// Ends `user`'s live sessions in `org` at once, after an admin changed the account through the
    /// admin API (disabled it, changed its role, reset its second factor): each is audited as
    /// `session.revoked` before its connections hear `session_expired` `revoked`. Changes made
    /// with `carehub user …` in another process are found by the auth stage's check every few
    /// seconds.
    func revokeSessions(of user: String, in org: OrgID, reason: String) async {
        for session in sessions.sessions(of: org) where session.principal.isStaff && session.principal.displayName == user {
            guard sessions.remove(session.token) != nil else { continue }
            try? await audit.record(AuditEvent(
                at: Date(), org: org, actor: "system", address: "", action: "session.revoked", target: user, detail: "reason=\(reason)"))
            events.emit(.sessionExpired(session, .revoked))
        }
    }

    /// Audits each organisation whose pipeline changed, with a line diff of its summary (stage
    /// names and parameters only; pipeline.conf holds no PHI).
    private func recordConfigurationChanges(from previous: HubConfig, to config: HubConfig, actor: (OrgID) -> (String, String)) {
        let now = Date()
        var events: [AuditEvent] = []
        let ids = Set(previous.orgs.map(\.settings.id)).union(config.orgs.map(\.settings.id)).sorted()
        for id in ids {
            let old = previous.org(id)?.summaryLines ?? []
            let new = config.org(id)?.summaryLines ?? []
            guard old != new else { continue }
            let diff = old.filter { !new.contains($0) }.map { "-" + $0 } + new.filter { !old.contains($0) }.map { "+" + $0 }
            let (name, address) = actor(id)
            events.append(AuditEvent(at: now, org: id, actor: name, address: address, action: "config.changed", detail: diff.joined(separator: "; ")))
        }
        let audit = self.audit
        pending.start { [events] in for event in events { try? await audit.record(event) } }
    }

    /// An organisation switched into HIPAA mode starts over under its rules: every live session of
    /// it (staff and visitors) ends now, and staff log in again with its second factor.
    private func endSessionsOfOrgsEnteringHIPAAMode(from previous: HubConfig, to config: HubConfig, actor: (OrgID) -> (String, String)) {
        let now = Date()
        for org in config.orgs where org.settings.hipaa && previous.org(org.settings.id)?.settings.hipaa == false {
            let live = sessions.sessions(of: org.settings.id)
            var ended: [AuditEvent] = []
            for session in live where sessions.remove(session.token) != nil {
                if session.principal.isStaff {
                    ended.append(AuditEvent(
                        at: now, org: org.settings.id, actor: session.principal.displayName, address: "",
                        action: "session.expired", detail: "reason=\(SessionExpiry.hipaaMode.rawValue)"))
                }
                events.emit(.sessionExpired(session, .hipaaMode))
            }
            let audit = self.audit
            let (name, address) = actor(org.settings.id)
            let event = AuditEvent(
                at: now, org: org.settings.id, actor: name, address: address, action: "hipaa.enabled",
                detail: "sessions_ended=\(live.count)")
            pending.start { [ended] in for event in ended + [event] { try? await audit.record(event) } }
            logger.notice("organisation entered HIPAA mode; its sessions were ended", metadata: ["org.id": "\(org.settings.id)", "sessions": "\(live.count)"])
        }
    }

    /// Graceful stop: refuse new frames, finish the ones being handled, flush every queued reply,
    /// close the connections, and close the database.
    public func shutdown() async {
        state.withLock { $0.draining = true }
        ticker.withLock { $0?.cancel() }
        dispatcher.withLock { $0?.cancel() }
        logger.info("shutting down", metadata: ["connections": "\(registry.count)"])
        let inboxes = registry.allInboxes()
        for inbox in inboxes { inbox.close() }
        for inbox in inboxes { await inbox.finished() }
        let server = transport.take()
        server?.shutdown(drainTimeout: .seconds(5))
        integrations.shutdown()
        // Audit rows of the sessions that just ended, and any sealing under way, before the close.
        await pending.drain()
        scrypt.shutdown()
        do {
            try audit.checkpoint()
            try database.close()
        } catch {
            logger.error("closing the database failed", metadata: ["error": "\(error)"])
        }
        logger.info("stopped", metadata: ["messages.committed": "\(messages.statistics.messages)", "commits": "\(messages.statistics.commits)"])
    }

    /// Open WebSocket connections.
    public var connectionCount: Int { registry.count }

    private static func pipelines(for config: HubConfig, environment: StageEnvironment, timer: any StageTimer) -> [OrgID: Pipeline] {
        Dictionary(uniqueKeysWithValues: config.orgs.map { ($0.settings.id, $0.makePipeline(environment: environment, timer: timer)) })
    }

    // MARK: Transport events (called on the transport's service thread; must not block)

    private func receive(_ event: WebSocketEvent, from handle: ConnectionHandle) {
        let id = ConnectionID(handle.rawValue)
        switch event {
        case .opened(let info):
            let client = resolve(info)
            let inbox = ConnectionInbox(
                handler: { [self] item in await process(item, from: id) },
                finisher: { [self] in disconnect(id) })
            let entry = ConnectionRegistry.Entry(handle: handle, peer: client.address, channel: client.channel, inbox: inbox)
            // The transport refused most connections over the limit before the upgrade; this
            // catches the ones that were being upgraded together.
            guard registry.add(id, entry, limit: options.limits.connectionsPerAddress) else {
                refuseConnection(handle)
                return
            }
            if state.withLock({ $0.draining }) { inbox.close() }
            logger.debug("connection opened", metadata: ["connection.id": "\(id)"])
        case .text(let bytes):
            registry.inbox(of: id)?.push(.text(bytes))
        case .binary:
            registry.inbox(of: id)?.push(.binary)
        case .oversized(let count):
            registry.inbox(of: id)?.push(.oversized(count))
        case .closed:
            registry.inbox(of: id)?.close()
        }
    }

    /// Who is at the other end of a connection, through the listed proxies.
    private func resolve(_ info: ConnectionInfo) -> ClientAddress {
        ClientAddress(
            peer: info.peer, forwardedFor: info.forwardedFor, forwardedProto: info.forwardedProto, tls: info.tls,
            origin: info.origin, host: info.host, trustedProxies: options.trustedProxies)
    }

    /// Admission before the WebSocket upgrade (on the service thread: a lookup, no waiting): an
    /// address at its connection limit is refused with HTTP 429.
    private func admit(_ info: ConnectionInfo) -> Bool {
        let address = resolve(info).address
        guard registry.connections(from: address) < options.limits.connectionsPerAddress else {
            throttle.limiter.countRefusal("connections_address")
            return false
        }
        return true
    }

    /// A connection over the per-address limit is told why and closed (1008, policy violation).
    private func refuseConnection(_ handle: ConnectionHandle) {
        throttle.limiter.countRefusal("connections_address")
        let error = PipelineError(.rateLimited, "too many connections from this address (at most \(options.limits.connectionsPerAddress))")
        transport.server?.send(ServerFrame.error(id: nil, error: error).json(), to: handle)
        transport.server?.close(handle, code: 1008)
    }

    /// A closed connection ends its session. A staff session that ends this way is audited like
    /// every other end of one: `session.expired` when it had already passed its idle timeout or
    /// lifetime (a console that locked itself and closed before the hub's tick), else
    /// `session.ended` with `reason=disconnect`. Whoever removes a session records its end, so
    /// each session ends on the record exactly once.
    private func disconnect(_ id: ConnectionID) {
        let peer = registry.peer(of: id)
        if let token = registry.remove(id), let session = sessions.remove(token), session.principal.isStaff {
            let now = Date()
            let expiry = session.idlePolicy?.expiry(of: session, at: now)
            let event = AuditEvent(
                at: now, org: session.org, actor: session.principal.displayName, address: peer,
                action: expiry == nil ? "session.ended" : "session.expired", detail: "reason=\(expiry?.rawValue ?? "disconnect")")
            let audit = self.audit
            pending.start { try? await audit.record(event) }
            environment.announcePresence(org: session.org)
        }
        logger.debug("connection closed", metadata: ["connection.id": "\(id)"])
    }

    // MARK: Requests

    private func process(_ input: ConnectionInbox.Item, from id: ConnectionID) async {
        switch input {
        case .binary:
            metrics.record(org: nil, type: "undecodable", seconds: 0, error: .binaryFrame)
            reply(.error(id: nil, error: PipelineError(.binaryFrame, "binary frames are not accepted; send JSON text frames")), to: id)
        case .oversized(let count):
            metrics.record(org: nil, type: "undecodable", seconds: 0, error: .tooLarge)
            reply(.error(id: nil, error: PipelineError(.tooLarge, "a message of \(count) bytes exceeds the limit of \(options.maxFrameBytes) bytes")), to: id)
        case .text(let bytes):
            switch Envelope.decode(bytes) {
            case .failure(let failure):
                metrics.record(org: nil, type: "undecodable", seconds: 0, error: failure.error.code)
                reply(.error(id: failure.id, error: failure.error), to: id)
            case .success(let envelope):
                if case .admin = envelope.frame {
                    // An admin operation may run long (a purge tells each room as it goes).
                    await dispatch(envelope, from: id)
                    return
                }
                let batch = OutgoingBatch()
                await OutgoingBatch.$current.withValue(batch) { await dispatch(envelope, from: id) }
                transport.server?.send(batch.flush())
            }
        }
    }

    /// `GET /metrics`, in the Prometheus text format.
    func renderMetrics() -> String {
        metrics.render(
            backlog: backlog.withLock { $0 }, connections: registry.count, sessions: sessions.all, storage: messages.statistics,
            refusals: throttle.limiter.refusals)
    }

    private func dispatch(_ envelope: Envelope, from id: ConnectionID) async {
        let started = ContinuousClock.now
        var org: OrgID?
        var failure: ErrorCode?
        defer {
            let elapsed = ContinuousClock.now - started
            metrics.record(org: org, type: envelope.frame.kind.rawValue, seconds: elapsed.seconds, error: failure)
        }
        do {
            let token = registry.sessionToken(of: id)
            let session = token.flatMap(sessions.session)
            if token != nil && session == nil {
                registry.bind(id, token: nil)
                throw PipelineError.sessionExpired(.idle)
            }
            let target: OrgID
            switch envelope.frame {
            case .hello(let frameOrg, _, _, _), .login(let frameOrg, _, _, _):
                target = session?.org ?? frameOrg
            case .availability(let frameOrg):
                // Public, and asked before any session: the organisation named.
                target = frameOrg
            default:
                guard let session else { throw PipelineError.unauthenticated }
                target = session.org
            }
            let (pipeline, draining) = state.withLock { ($0.pipelines[target], $0.draining) }
            guard !draining else { throw PipelineError(.unavailable, "the hub is shutting down; reconnect shortly") }
            guard let pipeline else { throw PipelineError(.unknownOrg, "no organisation '\(target)' on this hub") }
            org = target

            let client = registry.client(of: id)
            var request = Request(
                connection: id, peer: client.peer, id: envelope.id, frame: envelope.frame, receivedAt: Date(), session: session)
            request.channel = client.channel
            let outcome = try await pipeline.run(request)
            let frame = try outcome.reply(to: request)
            if let bound = outcome.bind { registry.bind(id, token: bound.token) }
            if outcome.unbind { registry.bind(id, token: nil) }
            if let frame { reply(frame, to: id) }
            for frame in outcome.followUps { reply(frame, to: id) }
            if case .admin(let operation) = envelope.frame, let session {
                reply(await administer(operation, session: session, address: request.peer, id: envelope.id), to: id)
            }
        } catch let error as PipelineError {
            failure = error.code
            if error.code == .sessionExpired { registry.bind(id, token: nil) }
            if error == .internal { logger.error("request failed", metadata: ["connection.id": "\(id)", "frame.type": "\(envelope.frame.kind.rawValue)"]) }
            reply(.error(id: envelope.id, error: error), to: id)
        } catch {
            // Storage or crypto failures: the type says enough; descriptions never hold message text.
            logger.error("request failed", metadata: [
                "connection.id": "\(id)", "frame.type": "\(envelope.frame.kind.rawValue)", "error.type": "\(type(of: error))",
            ])
            failure = .internal
            reply(.error(id: envelope.id, error: .internal), to: id)
        }
    }

    private func reply(_ frame: ServerFrame, to id: ConnectionID) {
        registry.send(frame.json(), to: id)
    }

    // MARK: Pipeline events

    private static func handle(_ event: PipelineEvent, registry: ConnectionRegistry, sessions: any SessionStore, logger: Logger) {
        switch event {
        case .sessionExpired(let session, let expiry):
            let expired = ServerFrame.sessionExpired(reason: expiry).json()
            for connection in registry.connections(boundTo: session.token) {
                registry.bind(connection, token: nil)
                registry.send(expired, to: connection)
            }
            logger.info("session expired", metadata: ["org.id": "\(session.org)", "session.expiry": "\(expiry.rawValue)"])
        case .notificationFailed(let org, let conversation):
            logger.error("notification could not be queued", metadata: ["org.id": "\(org)", "conversation.id": "\(conversation)"])
        case .purgeDeferred(let org, let conversation, let attempts):
            logger.warning("transcript export failed; the conversation is kept until it succeeds", metadata: [
                "org.id": "\(org)", "conversation.id": "\(conversation)", "attempts": "\(attempts)",
            ])
        }
    }
}

extension Hub {
    /// Sends due notifications from the outbox, each rendered now under the organisation's
    /// settings in force, to integrations that may receive them now.
    func dispatchNotifications(at now: Date) async {
        guard let due = try? await outbox.due(at: now, limit: 50) else { return }
        let config = self.config
        for item in due {
            let notification = item.notification
            guard let org = config.org(notification.org)?.settings else {
                try? await outbox.markRefused(item.id, reason: "organisation no longer configured", at: now)
                continue
            }
            guard let integration = org.integration(item.integration) else {
                try? await outbox.markRefused(item.id, reason: "integration '\(item.integration)' no longer configured", at: now)
                continue
            }
            if let refusal = integration.refusal(for: org) {
                try? await outbox.markRefused(item.id, reason: refusal, at: now)
                logger.warning("notification refused", metadata: ["org.id": "\(org.id)", "integration": "\(integration.name)", "reason": "\(refusal)"])
                continue
            }
            let link = (options.publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? "") + "/staff.html#room=\(notification.conversation.rawValue)"
            let rendered = NotificationTemplate.render(notification, org: org, link: link)
            do {
                switch integration.kind {
                case .webhook: try await integrations.post(rendered.json, to: integration)
                case .email: try await integrations.mail(to: integration.to ?? "", subject: rendered.subject, text: rendered.text, via: integration)
                }
                try? await outbox.markSent(item.id, at: Date())
            } catch {
                let attempts = item.attempts + 1
                let reason = "\(error)"
                if attempts >= Self.notificationAttempts {
                    try? await outbox.markFailed(item.id, reason: reason, at: Date())
                    logger.error("notification given up", metadata: ["org.id": "\(org.id)", "integration": "\(integration.name)", "attempts": "\(attempts)"])
                } else {
                    let delay = min(5 * pow(2, Double(attempts - 1)), 15 * 60)
                    try? await outbox.retry(item.id, attempts: attempts, next: Date().addingTimeInterval(delay), reason: reason)
                    logger.warning("notification failed; will retry", metadata: [
                        "org.id": "\(org.id)", "integration": "\(integration.name)", "attempts": "\(attempts)", "error": "\(reason)",
                    ])
                }
            }
        }
    }

    /// Attempts before a notification is given up (about 4 hours of back-off).
    static let notificationAttempts = 20

    /// Re-reads the purge and outbox backlogs for /metrics.
    func refreshBacklog() async {
        guard let purges = try? await conversations.pendingPurgeCounts(), let queued = try? await outbox.counts() else { return }
        backlog.withLock { $0 = HubMetrics.Backlog(pendingPurges: purges, outbox: queued) }
    }
}

/// The ``PipelineEvents`` adapter: forwards to the handler the hub installs.
final class HubEvents: PipelineEvents {
    let handler = Mutex<(@Sendable (PipelineEvent) -> Void)?>(nil)

    func emit(_ event: PipelineEvent) {
        handler.withLock { $0 }?(event)
    }
}

/// The running WebSocket server, shared between the hub and the closure that sends replies.
private final class TransportSlot: Sendable {
    private let slot = Mutex<WebSocketServer?>(nil)

    var server: WebSocketServer? {
        get { slot.withLock { $0 } }
        set { slot.withLock { $0 = newValue } }
    }

    func take() -> WebSocketServer? {
        slot.withLock { server in
            defer { server = nil }
            return server
        }
    }
}
