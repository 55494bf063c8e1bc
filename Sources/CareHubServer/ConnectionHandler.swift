import CareHubCore
import CareHubStages
import CareHubTransport
import Foundation
import Logging
import Synchronization

/// Every connection's life, from the transport's events (on its service thread: nothing here
/// blocks or waits): admission before the upgrade, the bounded inbox that hands frames to the
/// ``FrameRouter`` in order and pauses reading the socket when full, refusal over the address
/// limit, and the end of the connection's session. What to do at each step is decided by the
/// connection's ``ConnectionLifecycle``; this type carries it out.
final class ConnectionHandler: Sendable {
    private let registry: ConnectionRegistry
    private let router: FrameRouter
    private let configuration: HubConfiguration
    private let sessions: any SessionStore
    private let environment: StageEnvironment
    private let audit: any AuditLog
    /// Audit writes of ends of sessions: nothing can wait for them here; shutdown waits.
    private let pending: PendingWork
    private let throttle: Throttle
    private let metrics: HubMetrics
    private let outbound: any HubOutbound
    private let options: HubOptions
    private let logger: Logger

    init(
        registry: ConnectionRegistry, router: FrameRouter, configuration: HubConfiguration, sessions: any SessionStore,
        environment: StageEnvironment, audit: any AuditLog, pending: PendingWork, throttle: Throttle, metrics: HubMetrics,
        outbound: any HubOutbound, options: HubOptions, logger: Logger
    ) {
        self.registry = registry
        self.router = router
        self.configuration = configuration
        self.sessions = sessions
        self.environment = environment
        self.audit = audit
        self.pending = pending
        self.throttle = throttle
        self.metrics = metrics
        self.outbound = outbound
        self.options = options
        self.logger = logger
    }

    func receive(_ event: WebSocketEvent, from handle: ConnectionHandle) {
        let id = ConnectionID(handle.rawValue)
        switch event {
        case .opened(let info):
            open(id, handle, resolve(info))
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

    /// Admission before the WebSocket upgrade (a lookup, no waiting): an address at its
    /// connection limit is refused with HTTP 429.
    func admit(_ info: ConnectionInfo) -> Bool {
        let address = resolve(info).address
        guard registry.connections(from: address) < options.limits.connectionsPerAddress else {
            throttle.limiter.countRefusal("connections_address")
            return false
        }
        return true
    }

    private func open(_ id: ConnectionID, _ handle: ConnectionHandle, _ client: ClientAddress) {
        let lifecycle = Lifecycle()
        let inbox = ConnectionInbox(
            limits: options.inboxLimits,
            handler: { [router] item in await router.process(item, from: id) },
            finisher: { [self] in closed(id, lifecycle) },
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
        let limit = options.limits.connectionsPerAddress
        let registered = registry.add(id, entry, limit: limit)
        let actions = lifecycle.state.withLock { $0.opened(registered: registered, limit: limit, draining: configuration.draining) }
        perform(actions, handle: handle, inbox: inbox)
        if registered { logger.debug("connection opened", metadata: ["connection.id": "\(id)"]) }
    }

    /// The inbox handled the last frame of a closed connection: it leaves the registry, and its
    /// session ends. Whoever removes a session records its end, so each session ends on the
    /// record exactly once.
    private func closed(_ id: ConnectionID, _ lifecycle: Lifecycle) {
        let peer = registry.peer(of: id)
        let session = registry.remove(id).flatMap { sessions.remove($0) }
        let actions = lifecycle.state.withLock { $0.closed(session: session, peer: peer, at: Date()) }
        perform(actions, handle: ConnectionHandle(rawValue: id.rawValue), inbox: nil)
        logger.debug("connection closed", metadata: ["connection.id": "\(id)"])
    }

    private func perform(_ actions: [ConnectionLifecycle.Action], handle: ConnectionHandle, inbox: ConnectionInbox?) {
        for action in actions {
            switch action {
            case .refuse(let error):
                throttle.limiter.countRefusal("connections_address")
                outbound.send(ServerFrame.error(id: nil, error: error).json(), to: handle)
                outbound.close(handle, code: 1008)
            case .closeInbox:
                inbox?.close()
            case .record(let event):
                let audit = self.audit
                pending.start { try? await audit.record(event) }
            case .announcePresence(let org):
                environment.announcePresence(org: org)
            }
        }
    }

    /// One connection's ``ConnectionLifecycle``, shared by its open and its inbox's finisher.
    private final class Lifecycle: Sendable {
        let state = Mutex(ConnectionLifecycle())
    }

    /// Who is at the other end of a connection, through the listed proxies.
    private func resolve(_ info: ConnectionInfo) -> ClientAddress {
        ClientAddress(
            peer: info.peer, forwardedFor: info.forwardedFor, forwardedProto: info.forwardedProto, tls: info.tls,
            origin: info.origin, host: info.host, trustedProxies: options.trustedProxies)
    }
}
