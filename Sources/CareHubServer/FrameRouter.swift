import CareHubCore
import CareHubTransport
import Foundation
import Logging

/// Where every frame from a connection goes: decoded, routed to its organisation's pipeline (or
/// the admin API), its outcome applied to the connection (bind, unbind), and every failure mapped
/// to a wire error with a stable code. The replies of one frame, and the deliveries it caused, go
/// to the transport together (``OutgoingBatch``).
final class FrameRouter: Sendable {
    private let registry: ConnectionRegistry
    private let sessions: any SessionStore
    private let configuration: HubConfiguration
    private let admin: AdminService
    private let metrics: HubMetrics
    private let outbound: any HubOutbound
    private let maxFrameBytes: Int
    private let logger: Logger
    /// When each frame is received (the hub's clock; a test's own).
    private let clock: any WallClock

    init(
        registry: ConnectionRegistry, sessions: any SessionStore, configuration: HubConfiguration, admin: AdminService,
        metrics: HubMetrics, outbound: any HubOutbound, maxFrameBytes: Int, clock: any WallClock, logger: Logger
    ) {
        self.clock = clock
        self.registry = registry
        self.sessions = sessions
        self.configuration = configuration
        self.admin = admin
        self.metrics = metrics
        self.outbound = outbound
        self.maxFrameBytes = maxFrameBytes
        self.logger = logger
    }

    /// Handles one item from a connection's inbox (frames of one connection come in order).
    func process(_ input: ConnectionInbox.Item, from id: ConnectionID) async {
        switch input {
        case .binary:
            metrics.record(org: nil, type: "undecodable", seconds: 0, error: .binaryFrame)
            reply(.error(id: nil, error: PipelineError(.binaryFrame, "binary frames are not accepted; send JSON text frames")), to: id)
        case .oversized(let count):
            metrics.record(org: nil, type: "undecodable", seconds: 0, error: .tooLarge)
            reply(.error(id: nil, error: PipelineError(.tooLarge, "a message of \(count) bytes exceeds the limit of \(maxFrameBytes) bytes")), to: id)
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
                outbound.send(batch.flush())
            }
        }
    }

    /// The organisation a frame is for: a session's own, or for the frames that come before one
    /// (`hello`, `login`, `sso`, `availability`) the one they name.
    static func target(of frame: ClientFrame, session: Session?) throws -> OrgID {
        switch frame {
        case .hello(let org, _, _, _), .login(let org, _, _, _), .sso(let org, _, _), .ssoDevice(let org):
            return session?.org ?? org
        case .availability(let org):
            // Public, and asked before any session: the organisation named.
            return org
        default:
            guard let session else { throw PipelineError.unauthenticated }
            return session.org
        }
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
            let target = try Self.target(of: envelope.frame, session: session)
            let (pipeline, draining) = configuration.pipeline(for: target)
            guard !draining else { throw PipelineError(.unavailable, "the hub is shutting down; reconnect shortly") }
            guard let pipeline else { throw PipelineError(.unknownOrg, "no organisation '\(target)' on this hub") }
            org = target

            let client = registry.client(of: id)
            var request = Request(
                connection: id, peer: client.peer, id: envelope.id, frame: envelope.frame, receivedAt: clock.now, session: session)
            request.channel = client.channel
            let outcome = try await pipeline.run(request)
            let frame = try outcome.reply(to: request)
            if let bound = outcome.bind { registry.bind(id, token: bound.token) }
            if outcome.unbind { registry.bind(id, token: nil) }
            if let frame { reply(frame, to: id) }
            for frame in outcome.followUps { reply(frame, to: id) }
            if case .admin(let operation) = envelope.frame, let session {
                reply(await admin.administer(operation, session: session, address: request.peer, id: envelope.id), to: id)
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
}

/// Where the hub's frames leave it: the WebSocket transport when it runs, or whatever a test
/// puts in its place.
protocol HubOutbound: Sendable {
    /// Sends one text frame to a connection.
    func send(_ text: String, to handle: ConnectionHandle)
    /// Sends frames to their connections, in order.
    func send(_ frames: [(text: String, handle: ConnectionHandle)])
    /// Closes a connection after its queued frames, with a WebSocket close code.
    func close(_ handle: ConnectionHandle, code: UInt16)
    /// Stops reading a connection until ``resumeReceiving(_:)`` (its inbox is full).
    func pauseReceiving(_ handle: ConnectionHandle)
    /// Reads a paused connection again.
    func resumeReceiving(_ handle: ConnectionHandle)
}
