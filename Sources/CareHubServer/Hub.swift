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
/// - ``ConnectionHandler``: each connection's life (``ConnectionLifecycle`` decides, it acts).
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
    private let connections: ConnectionHandler
    private let ticker: OrgTicker
    /// The time the pipelines and the ticks see: the system's, or a test's.
    private let clock: any WallClock
    let follower: ChangeFollower
    private let dispatcher: NotificationDispatcher
    /// Delivers webhook subscriptions' events.
    private let webhookDispatcher: WebhookDispatcher
    /// The webhook calls of the HTTP API.
    private let webhooks: WebhookSubscriptions
    /// Single sign-on's logins and back-channel logouts.
    private let ssoLogins: SSOLogins
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
    init(options: HubOptions, logger: Logger, outbound: (any HubOutbound)?, clock: any WallClock = SystemClock()) throws {
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
        self.clock = clock
        let ssoLogins = SSOLogins(
            tickets: local.ssoTickets, sessions: sessions, events: events, audit: audit, integrations: integrations, clock: clock, logger: logger)
        self.ssoLogins = ssoLogins
        environment = StageEnvironment(
            clock: clock,
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
            origin: origin,
            attachments: SQLiteAttachmentStore(database: database, audit: audit),
            // `engine=clamd` is the only engine the scan stage's configuration accepts.
            scanners: Scanners { _, address in ClamdScanner(address: address) },
            tokens: SQLiteAPITokenStore(database: database),
            webhooks: SQLiteWebhookOutbox(database: database),
            signOn: ssoLogins)
        configuration = HubConfiguration(
            config: config, path: options.configPath, environment: environment, events: events, database: database, timer: metrics,
            pending: pending, logger: logger)
        let revoker = SessionRevoker(sessions: sessions, audit: audit, events: events)
        let accounts = StaffAccounts(
            database: database, audit: audit, credentials: scrypt, journal: journal, origin: origin
        ) { user, org, reason in await revoker.revoke(user, in: org, reason: reason) }
        let inForce = configuration
        let tokens = APITokens(store: SQLiteAPITokenStore(database: database, audit: audit), config: { inForce.config })
        admin = AdminService(
            configuration: configuration, configPath: options.configPath, database: database, audit: audit, conversations: conversations,
            environment: environment, accounts: accounts, tokens: tokens, auditKey: auditKey, events: events, io: io, logger: logger)
        router = FrameRouter(
            registry: registry, sessions: sessions, configuration: configuration, admin: admin, metrics: metrics, outbound: outbound,
            maxFrameBytes: options.maxFrameBytes, clock: clock, logger: logger)
        connections = ConnectionHandler(
            registry: registry, router: router, configuration: configuration, sessions: sessions, environment: environment, audit: audit,
            pending: pending, throttle: local.throttle, metrics: metrics, outbound: outbound, options: options, logger: logger)
        let configuration = self.configuration
        ticker = OrgTicker(pipelines: { configuration.pipelines }, clock: clock, logger: logger)
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
            case .api: break  // never a notification route: the fan-out stage's configuration refuses it
            }
        }
        let signer = WebhookSigner(master: master)
        let webhookStore = SQLiteWebhookStore(database: database, audit: audit)
        webhooks = WebhookSubscriptions(store: webhookStore, signer: signer)
        webhookDispatcher = WebhookDispatcher(
            outbox: SQLiteWebhookOutbox(database: database), store: webhookStore, signer: signer, config: { configuration.config }, logger: logger
        ) { body, webhook, integration, headers in
            try await integrations.post(body, to: webhook, via: integration, headers: headers)
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
            admit: { [connections] info in connections.admit(info) })
        transportConfiguration.maxSendQueueBytes = options.maxSendQueueBytes
        AttachmentRoutes(configuration: configuration, metrics: metrics, clock: clock, trustedProxies: options.trustedProxies, logger: logger)
            .add(to: &transportConfiguration.routes)
        APIRoutes(
            configuration: configuration, admin: admin, audit: audit, metrics: metrics, clock: clock, trustedProxies: options.trustedProxies,
            openAPI: APIRoutes.description(), webhooks: webhooks, logger: logger
        ).add(to: &transportConfiguration.routes)
        SSORoutes(
            configuration: configuration, logins: ssoLogins, metrics: metrics, clock: clock, trustedProxies: options.trustedProxies,
            limiter: local.throttle.limiter, logger: logger)
            .add(to: &transportConfiguration.routes)
        HealthRoute(database: database, configuration: configuration, clock: clock).add(to: &transportConfiguration.routes)
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

    /// One round of every organisation's time-driven work at the hub's clock, waited for (as the
    /// once-a-second rounds run it; for a test that moves the clock).
    func tick() async {
        for task in ticker.round(at: clock.now) { await task.value }
    }

    /// The ticks, the notification dispatcher and the metrics' backlog refresh.
    func startBackgroundWork() {
        ticker.start()
        follower.start()
        dispatcher.start()
        webhookDispatcher.start()
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
        await webhookDispatcher.stop()
        await ssoLogins.shutdown()
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
        connections.receive(event, from: handle)
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
        case .webhookFailed(let org, let conversation):
            logger.error("webhook event could not be queued", metadata: ["org.id": "\(org)", "conversation.id": "\(conversation)"])
        case .purgeDeferred(let org, let conversation, let attempts):
            logger.warning("transcript export failed; the conversation is kept until it succeeds", metadata: [
                "org.id": "\(org)", "conversation.id": "\(conversation)", "attempts": "\(attempts)",
            ])
        case .scannerUnavailable(let org, let reason):
            logger.warning("malware scanner unavailable", metadata: ["org.id": "\(org)", "error.reason": "\(reason)"])
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
