import CLibWebSockets
import Foundation
import Synchronization

/// Identifies one WebSocket connection for the lifetime of the server; never reused.
public struct ConnectionHandle: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "#\(rawValue)" }
}

/// What the transport reports about a connection, in order, on its service thread.
public enum WebSocketEvent: Sendable, Equatable {
    /// The WebSocket handshake on the configured path completed.
    case opened(ConnectionInfo)
    /// A complete text message (all fragments joined), as raw UTF-8 bytes.
    case text([UInt8])
    /// A complete binary message (its content is discarded).
    case binary
    /// A message longer than the configured limit; its bytes were discarded.
    case oversized(byteCount: Int)
    /// The connection is gone; no further events follow for it.
    case closed
}

/// Why the server could not start.
public enum TransportError: Error, Equatable, CustomStringConvertible {
    case invalidConfiguration(String)
    case cannotListen(String)
    case alreadyStarted

    public var description: String {
        switch self {
        case .invalidConfiguration(let text): text
        case .cannotListen(let text): text
        case .alreadyStarted: "the server was already started"
        }
    }
}

/// A WebSocket and static-file HTTP(S) server on libwebsockets.
///
/// libwebsockets runs on one service thread owned by this object. `send` and `close` may be
/// called from any thread: they queue a command and wake the service thread. Events are
/// delivered on the service thread, so `onEvent` must return quickly and never block.
public final class WebSocketServer: Sendable {
    public struct Configuration: Sendable {
        /// Address to bind, and only it: a numeric IPv4 address (`127.0.0.1`, `0.0.0.0` for every
        /// IPv4 interface), an IPv6 address with or without brackets (`::1`, `[::]` for every
        /// interface), or a name, resolved once to its first address. ``listeningAddress`` says
        /// which address was bound.
        public var host: String
        /// Port to bind; 0 picks a free one (see the value `start()` returns).
        public var port: Int
        /// The only path that accepts a WebSocket upgrade.
        public var webSocketPath: String
        /// Directory served over HTTP at `/`, with `index.html` as the default; nil serves nothing.
        public var staticRoot: String?
        /// Largest accepted message; longer ones are reported as `.oversized` and discarded.
        public var maxMessageBytes: Int
        /// Most bytes of messages that may wait for one connection behind the one being written
        /// (a reader that does not keep up); past it the connection's queue is dropped and it is
        /// closed with ``WebSocketServer/slowReaderCloseCode``. One message of any size is always
        /// written. Default 4 MiB.
        public var maxSendQueueBytes: Int = WebSocketServer.defaultMaxSendQueueBytes
        /// PEM certificate (chain) and private key; both set turns on TLS (https and wss).
        public var tlsCertificatePath: String?
        public var tlsPrivateKeyPath: String?
        /// Paths answered by a closure with a `text/plain` body (e.g. `/metrics`) to GET and HEAD.
        /// The closure runs in a task (not on the service thread); it must not block.
        public var textRoutes: [String: @Sendable () -> String]
        /// The HTTP routes, tried before ``textRoutes`` and the static files.
        public var routes: HTTPRouter
        /// What HTTP clients may hold of the server (header bytes, requests in progress, idle time).
        public var httpLimits: HTTPLimits
        /// Decides whether a WebSocket upgrade on the configured path goes ahead, before the
        /// handshake completes; nil admits every one. Called on the service thread, so it must be
        /// quick and must not block. A refused upgrade is answered `429 Too Many Requests` and closed, and
        /// reports no event.
        public var admit: (@Sendable (ConnectionInfo) -> Bool)?

        public init(
            host: String = "127.0.0.1", port: Int = 0, webSocketPath: String = "/ws", staticRoot: String? = nil,
            maxMessageBytes: Int = 64 * 1024, tlsCertificatePath: String? = nil, tlsPrivateKeyPath: String? = nil,
            textRoutes: [String: @Sendable () -> String] = [:], admit: (@Sendable (ConnectionInfo) -> Bool)? = nil,
            routes: HTTPRouter = HTTPRouter(), httpLimits: HTTPLimits = HTTPLimits()
        ) {
            self.textRoutes = textRoutes
            self.routes = routes
            self.httpLimits = httpLimits
            self.admit = admit
            self.host = host
            self.port = port
            self.webSocketPath = webSocketPath
            self.staticRoot = staticRoot
            self.maxMessageBytes = maxMessageBytes
            self.tlsCertificatePath = tlsCertificatePath
            self.tlsPrivateKeyPath = tlsPrivateKeyPath
        }

        func validate() throws {
            guard (0...65535).contains(port) else { throw TransportError.invalidConfiguration("port \(port) is out of range 0-65535") }
            guard webSocketPath.hasPrefix("/") else { throw TransportError.invalidConfiguration("WebSocket path must start with /") }
            guard maxMessageBytes > 0 else { throw TransportError.invalidConfiguration("message limit must be positive") }
            try httpLimits.validate()
            for route in routes.routes where !route.pattern.hasPrefix("/") {
                throw TransportError.invalidConfiguration("route \(route.pattern) must start with /")
            }
            var isDirectory: ObjCBool = false
            if let staticRoot, !(FileManager.default.fileExists(atPath: staticRoot, isDirectory: &isDirectory) && isDirectory.boolValue) {
                throw TransportError.invalidConfiguration("static directory \(staticRoot) does not exist")
            }
            switch (tlsCertificatePath, tlsPrivateKeyPath) {
            case (nil, nil): break
            case (let certificate?, let key?):
                for path in [certificate, key] where !FileManager.default.isReadableFile(atPath: path) {
                    throw TransportError.invalidConfiguration("TLS file \(path) is not readable")
                }
            default:
                throw TransportError.invalidConfiguration("TLS needs both a certificate and a private key")
            }
            guard maxSendQueueBytes > 0 else { throw TransportError.invalidConfiguration("send queue limit must be positive") }
        }
    }

    /// The Content-Security-Policy of every HTTP response: the pages load scripts, styles,
    /// fonts and images from the hub itself only, and open connections (WebSocket included) to
    /// the hub's own origin only.
    public static let contentSecurityPolicy =
        "default-src 'none'; img-src 'self' data: blob:; script-src 'self'; font-src 'self'; style-src 'self'; "
        + "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

    /// Strict-Transport-Security, sent on every HTTP response when TLS is on: one year.
    public static let strictTransportSecurity = "max-age=31536000"

    /// The headers every HTTP response carries (static files, text routes, errors).
    public static func responseHeaders(tls: Bool) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("Content-Security-Policy", contentSecurityPolicy),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "deny"),
            ("Referrer-Policy", "no-referrer"),
        ]
        if tls { headers.append(("Strict-Transport-Security", strictTransportSecurity)) }
        return headers
    }

    /// The default of ``Configuration/maxSendQueueBytes``: 4 MiB.
    public static let defaultMaxSendQueueBytes = 4 * 1024 * 1024

    /// The close code of a connection whose send queue passed ``Configuration/maxSendQueueBytes``
    /// (a private-use code, docs/PROTOCOL.md).
    public static let slowReaderCloseCode: UInt16 = 4001

    /// The reason in that close frame.
    public static let slowReaderCloseReason = "reading too slowly: send queue full"

    public let configuration: Configuration
    private let loop: ServiceLoop
    private let started = Atomic<Bool>(false)
    private let bound = Mutex<ListeningAddress?>(nil)

    public init(configuration: Configuration, onEvent: @escaping @Sendable (ConnectionHandle, WebSocketEvent) -> Void) {
        self.configuration = configuration
        self.loop = ServiceLoop(configuration: configuration, onEvent: onEvent)
    }

    /// Binds and starts serving on a new service thread. Returns the bound port.
    public func start() throws -> Int {
        try configuration.validate()
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { throw TransportError.alreadyStarted }
        let address = try loop.start()
        bound.withLock { $0 = address }
        return address.port
    }

    /// The numeric address and port the server listens on, once started.
    public var listeningAddress: ListeningAddress? { bound.withLock { $0 } }

    /// Queues a text message for a connection. Messages to one connection go out in order;
    /// a message for a connection that has closed is dropped. A connection with more than
    /// ``Configuration/maxSendQueueBytes`` waiting is closed (``slowReaderCloseCode``).
    public func send(_ text: String, to handle: ConnectionHandle) {
        loop.enqueue(.send(handle.rawValue, ServiceLoop.frame(Array(text.utf8))))
    }

    /// Queues several text messages in order, waking the service thread once.
    public func send(_ messages: [(text: String, handle: ConnectionHandle)]) {
        guard !messages.isEmpty else { return }
        loop.enqueue(sends: messages.map { .send($0.handle.rawValue, ServiceLoop.frame(Array($0.text.utf8))) })
    }

    /// Stops reading a connection's socket: no message of it is reported until
    /// ``resumeReceiving(_:)``, and what the client sends waits in its socket (TCP holds the
    /// client back). Called from the event handler, no further message is reported after the one
    /// being handled; from another thread, the messages already read may still follow.
    public func pauseReceiving(_ handle: ConnectionHandle) {
        loop.setReceiving(handle.rawValue, false)
    }

    /// Reads a paused connection again; its messages follow in order, none lost. Ignored for a
    /// connection that is not paused or has closed.
    public func resumeReceiving(_ handle: ConnectionHandle) {
        loop.setReceiving(handle.rawValue, true)
    }

    /// Closes a connection after the messages already queued for it have been written.
    public func close(_ handle: ConnectionHandle, code: UInt16 = 1000) {
        loop.enqueue(.close(handle.rawValue, code))
    }

    /// HTTP requests being read, handled or answered.
    public var httpRequestsInProgress: Int { loop.httpRequestsInProgress.load(ordering: .relaxed) }

    /// Bytes of streamed request bodies (``HTTPRoute/streamsBody``) read from clients and not
    /// yet taken by their handlers.
    public var bufferedRequestBodyBytes: Int { loop.bodyMetrics.buffered.load(ordering: .relaxed) }

    /// The most ``bufferedRequestBodyBytes`` has been since start.
    var bufferedRequestBodyPeak: Int { loop.bodyMetrics.peak.load(ordering: .relaxed) }

    /// Times since start that a socket stopped being read because its handler was behind.
    var requestBodyPauses: Int { loop.bodyMetrics.pauses.load(ordering: .relaxed) }

    /// Open WebSocket connections.
    public var connectionCount: Int { loop.openConnections.load(ordering: .relaxed) }

    /// Bytes of messages queued for connections and not yet written, over all connections.
    public var sendQueueBytes: Int { loop.outboxBytes.load(ordering: .relaxed) }

    /// Connections closed since start because they did not read fast enough
    /// (``Configuration/maxSendQueueBytes``).
    public var slowReaderCloses: Int { loop.slowReaderCloses.load(ordering: .relaxed) }

    /// Graceful stop: refuse new connections, write what is queued (waiting at most
    /// `drainTimeout`), close every connection with 1001 "going away", and stop the thread.
    /// Every open connection is reported `.closed` before this returns.
    public func shutdown(drainTimeout: Duration = .seconds(5)) {
        guard started.load(ordering: .acquiring) else { return }
        loop.enqueue(.stopAccepting)
        let clock = ContinuousClock()
        let deadline = clock.now + drainTimeout
        while loop.pendingMessages.load(ordering: .relaxed) > 0, clock.now < deadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
        loop.enqueue(.closeAll(1001))
        let closeDeadline = clock.now + .seconds(1)
        while loop.openConnections.load(ordering: .relaxed) > 0, clock.now < closeDeadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
        loop.stop()
    }

    deinit {
        loop.stop()
    }
}
