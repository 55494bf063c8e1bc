import CareHubCore
import CareHubCrypto
import CareHubStages
import CareHubStorage
import CareHubTransport
import Foundation
import Logging
import Synchronization

/// The running hub: the composition root that builds the adapters behind the stages' ports and
/// the parts that serve, and the lifecycle of connections.
///
/// - ``HubConfiguration``: pipeline.conf in force, reloads, the HIPAA switch's session ends.
/// - ``FrameRouter``: every frame from a connection, to its pipeline or the admin API.
/// - ``AdminService``: the admin API.
/// - ``NotificationDispatcher``: the outbox's sends and retries.
/// - ``OrgTicker``: each organisation's time-driven work.
///
/// Frames from one connection are handled in order (``ConnectionInbox``, bounded: a full inbox
/// pauses reading the connection); different connections run concurrently. The hub never logs
/// message text, passwords or tokens.
public final class Hub: Sendable {
    /// The options the hub was started with.
    public let options: HubOptions
    let logger: Logger
    let database: CareHubDatabase
    private let messages: SQLiteMessageStore
    /// What only this process knows: the multi-node work replaces it.
    private let local: NodeLocalState
    private var sessions: InMemorySessionStore { local.sessions }
    let registry: ConnectionRegistry
    let environment: StageEnvironment
    let configuration: HubConfiguration
    let admin: AdminService
    private let router: FrameRouter
    private let ticker: OrgTicker
    let follower: ChangeFollower
    private let dispatcher: NotificationDispatcher
    private let transport = TransportSlot()
    private let outbound: any HubOutbound
    private let backlogTask = Mutex<Task<Void, Never>?>(nil)
    private let events = HubEvents()
    private let metrics = HubMetrics()
    let audit: SQLiteAuditLog
    let conversations: SQLiteConversationStore
    private let outbox: SQLiteOutbox
    private let integrations = Integrations()
    private let backlog = Mutex(HubMetrics.Backlog())
    let scrypt: ScryptCredentials
    /// Work that blocks (pipeline.conf's write and fsync, the transport's drain at shutdown, the
    /// database's last checkpoint and close), off Swift's cooperative pool.
    private let io = BlockingPool(name: "carehub-io", threads: 1, queueLimit: 64)
    /// Audit writes and sealing started where nothing can wait for them; shutdown waits.
    private let pending = PendingWork()
    private var throttle: Throttle { local.throttle }
    /// Signs the audit chain's checkpoints; the admin API verifies with it.
    let auditKey: SymmetricKey

    /// Opens the database and master key and loads pipeline.conf. Throws ``ConfigError``,
    /// ``HubError`` or a storage error, each with a readable description.
    public convenience init(options: HubOptions, logger: Logger) throws {
        try self.init(options: options, logger: logger, outbound: nil)
    }

    /// As ``init(options:logger:)``; frames leave through `outbound` instead of the transport
    /// when one is given (a test reads them there).
    init(options: HubOptions, logger: Logger, outbound: (any HubOutbound)?) throws {
        self.options = options
        self.logger = logger
        let config = try ConfigLoader.load(path: options.configPath)
        database = try CareHubDatabase(directory: options.dataDirectory, backgroundCheckpoints: true)
        let outbound = outbound ?? transport
        self.outbound = outbound
        let local = NodeLocalState(throttle: Throttle(hub: options.limits))
        self.local = local
        let sessions = local.sessions
        registry = ConnectionRegistry(sessions: sessions) { handle, json in
            if OutgoingBatch.current?.add(json, to: handle) != true { outbound.send(json, to: handle) }
        }
        let master = try MasterKey.load(dataDirectory: options.dataDirectory)
        auditKey = try MasterKey.auditKey(from: master)
        let anchor = try AuditAnchor(path: options.auditAnchorPath, logger: logger)
        audit = SQLiteAuditLog(database: database, checkpointKey: auditKey, sink: anchor)
        messages = SQLiteMessageStore(database: database, audit: audit)
        conversations = SQLiteConversationStore(database: database)
        outbox = SQLiteOutbox(database: database)
        scrypt = try ScryptCredentials()
        // This process's name in the change journal, so that it skips the changes it made itself.
        let origin = "hub-" + Hex.encode(SecureRandom.bytes(8))
        let journal = SQLiteChangeJournal(database: database)
        let cache = ConversationCache(conversations)
        environment = StageEnvironment(
            clock: SystemClock(),
            conversations: cache,
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
            local: local,
            journal: journal,
            origin: origin)
        configuration = HubConfiguration(
            config: config, path: options.configPath, environment: environment, events: events, database: database, timer: metrics,
            pending: pending, logger: logger)
        let revoker = SessionRevoker(sessions: sessions, audit: audit, events: events)
        let accounts = StaffAccounts(
            database: database, audit: audit, credentials: scrypt, journal: journal, origin: origin
        ) { user, org, reason in await revoker.revoke(user, in: org, reason: reason) }
        admin = AdminService(
            configuration: configuration, configPath: options.configPath, database: database, audit: audit, conversations: conversations,
            environment: environment, accounts: accounts, auditKey: auditKey, events: events, io: io, logger: logger)
        router = FrameRouter(
            registry: registry, sessions: sessions, configuration: configuration, admin: admin, metrics: metrics, outbound: outbound,
            maxFrameBytes: options.maxFrameBytes, logger: logger)
        let configuration = self.configuration
        ticker = OrgTicker(pipelines: { configuration.pipelines }, logger: logger)
        follower = ChangeFollower(
            journal: journal, origin: origin, revoker: revoker, cache: cache, environment: environment, config: { configuration.config },
            logger: logger)
        let integrations = self.integrations
        dispatcher = NotificationDispatcher(
            outbox: outbox, config: { configuration.config }, publicURL: options.publicURL, logger: logger
        ) { rendered, integration in
            switch integration.kind {
            case .webhook: try await integrations.post(rendered.json, to: integration)
            case .email: try await integrations.mail(to: integration.to ?? "", subject: rendered.subject, text: rendered.text, via: integration)
            }
        }
        events.handler.withLock { [registry, sessions, logger] handler in
            handler = { event in Self.handle(event, registry: registry, sessions: sessions, logger: logger) }
        }
    }

    /// The configuration in force.
    public var config: HubConfig { configuration.config }

    /// Re-reads pipeline.conf and applies it to new requests without dropping connections.
    /// If the file is invalid the configuration in force stays, and the errors are returned.
    @discardableResult
    public func reload() async -> Result<HubConfig, ConfigError> { await configuration.reload() }

    /// Starts listening and returns the bound port.
    public func start() throws -> Int {
        var transportConfiguration = WebSocketServer.Configuration(
            host: options.host, port: options.port, webSocketPath: "/ws", staticRoot: options.staticRoot,
            maxMessageBytes: options.maxFrameBytes, tlsCertificatePath: options.tlsCertificatePath,
            tlsPrivateKeyPath: options.tlsPrivateKeyPath,
            textRoutes: ["/metrics": { [self] in self.renderMetrics() }],
            admit: { [self] info in self.admit(info) })
        transportConfiguration.maxSendQueueBytes = options.maxSendQueueBytes
        let server = WebSocketServer(configuration: transportConfiguration) { [self] handle, event in
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
        startBackgroundWork()
        logger.info("listening", metadata: ["listen.address": "\(server.listeningAddress.map { "\($0)" } ?? "\(options.host):\(port)")", "tls": "\(options.tlsCertificatePath != nil)"])
        return port
    }

    /// The ticks, the notification dispatcher and the metrics' backlog refresh.
    func startBackgroundWork() {
        ticker.start()
        follower.start()
        dispatcher.start()
        let refresh = Task { [self] in
            while !Task.isCancelled {
                await refreshBacklog()
                try? await Task.sleep(for: .seconds(5))
            }
        }
        backlogTask.withLock { $0 = refresh }
    }

    /// Graceful stop: refuse new frames, finish the ones being handled, flush every queued reply,
    /// close the connections, wait for background work, and close the database.
    public func shutdown() async {
        configuration.beginDraining()
        logger.info("shutting down", metadata: ["connections": "\(registry.count)"])
        let inboxes = registry.allInboxes()
        for inbox in inboxes { inbox.close() }
        for inbox in inboxes { await inbox.finished() }
        // The transport's shutdown waits for its queues to drain (up to 5 s): off the cooperative pool.
        if let server = transport.take() {
            do {
                try await io.run { server.shutdown(drainTimeout: .seconds(5)) }
            } catch {
                server.shutdown(drainTimeout: .seconds(5))
            }
        }
        // Background work stops before what it uses closes.
        await ticker.stop()
        await follower.stop()
        await dispatcher.stop()
        let refresh = backlogTask.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            task?.cancel()
            return task
        }
        await refresh?.value
        integrations.shutdown()
        // Audit rows of the sessions that just ended, and any sealing under way, before the close.
        await pending.drain()
        scrypt.shutdown()
        do {
            try await io.run { [audit, database] in
                try audit.checkpoint()
                try database.close()
            }
        } catch {
            logger.error("closing the database failed", metadata: ["error": "\(error)"])
        }
        io.shutdown()
        logger.info("stopped", metadata: ["messages.committed": "\(messages.statistics.messages)", "commits": "\(messages.statistics.commits)"])
    }

    /// Open WebSocket connections.
    public var connectionCount: Int { registry.count }

    /// `GET /metrics`, in the Prometheus text format.
    func renderMetrics() -> String {
        let server = transport.server
        return metrics.render(
            backlog: backlog.withLock { $0 }, connections: registry.count, sessions: sessions.all, storage: messages.statistics,
            refusals: throttle.limiter.refusals,
            queues: HubMetrics.Queues(sendQueueBytes: server?.sendQueueBytes ?? 0, slowReaderCloses: server?.slowReaderCloses ?? 0))
    }

    /// Re-reads the purge and outbox backlogs for /metrics.
    func refreshBacklog() async {
        guard let purges = try? await conversations.pendingPurgeCounts(), let queued = try? await outbox.counts() else { return }
        backlog.withLock { $0 = HubMetrics.Backlog(pendingPurges: purges, outbox: queued) }
    }

    // MARK: Transport events (called on the transport's service thread; must not block)

    func receive(_ event: WebSocketEvent, from handle: ConnectionHandle) {
        let id = ConnectionID(handle.rawValue)
        switch event {
        case .opened(let info):
            let client = resolve(info)
            let inbox = ConnectionInbox(
                limits: options.inboxLimits,
                handler: { [router] item in await router.process(item, from: id) },
                finisher: { [self] in disconnect(id) },
                flow: { [metrics, outbound] receiving in
                    // A full inbox pauses reading the socket; the client waits in TCP, nothing is dropped.
                    if receiving {
                        metrics.receivingResumed()
                        outbound.resumeReceiving(handle)
                    } else {
                        metrics.receivingPaused()
                        outbound.pauseReceiving(handle)
                    }
                })
            let entry = ConnectionRegistry.Entry(handle: handle, peer: client.address, channel: client.channel, inbox: inbox)
            // The transport refused most connections over the limit before the upgrade; this
            // catches the ones that were being upgraded together.
            guard registry.add(id, entry, limit: options.limits.connectionsPerAddress) else {
                refuseConnection(handle)
                return
            }
            if configuration.draining { inbox.close() }
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
        outbound.send(ServerFrame.error(id: nil, error: error).json(), to: handle)
        outbound.close(handle, code: 1008)
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

/// The ``PipelineEvents`` adapter: forwards to the handler the hub installs.
final class HubEvents: PipelineEvents {
    let handler = Mutex<(@Sendable (PipelineEvent) -> Void)?>(nil)

    func emit(_ event: PipelineEvent) {
        handler.withLock { $0 }?(event)
    }
}

/// The running WebSocket server, shared between the hub and the closure that sends replies.
private final class TransportSlot: HubOutbound {
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

    func send(_ text: String, to handle: ConnectionHandle) { server?.send(text, to: handle) }
    func send(_ frames: [(text: String, handle: ConnectionHandle)]) { server?.send(frames) }
    func close(_ handle: ConnectionHandle, code: UInt16) { server?.close(handle, code: code) }
    func pauseReceiving(_ handle: ConnectionHandle) { server?.pauseReceiving(handle) }
    func resumeReceiving(_ handle: ConnectionHandle) { server?.resumeReceiving(handle) }
}
