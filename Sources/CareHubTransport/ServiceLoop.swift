import CLibWebSockets
import Foundation
import Synchronization

/// The libwebsockets context and everything its callbacks touch.
///
/// Fields under "service thread only" are read and written solely from callbacks, which lws runs
/// on the thread inside `lws_service`; other threads talk to it through `commands` and
/// `lws_cancel_service`, the one lws call that is safe off that thread.
final class ServiceLoop: @unchecked Sendable {
    enum Command {
        case send(UInt64, [UInt8])
        /// Reading the connection's socket resumes (true) or pauses (false).
        case receiving(UInt64, Bool)
        case close(UInt64, UInt16)
        case closeAll(UInt16)
        case stopAccepting
        /// A handler's answer to the HTTP request with this exchange id.
        case respond(UInt64, HTTPResponse)
        /// The handler has taken enough of a streamed request body: read its socket again.
        case resumeBody(UInt64)
        /// The next chunk of a streamed response body.
        case responseChunk(UInt64, HTTPExchange.Pull)
    }

    /// One open WebSocket (service thread only).
    final class Connection {
        let wsi: OpaquePointer
        /// Frames with `LWS_PRE` bytes of headroom, the next one to write first.
        var outbox = FIFO<[UInt8]>()
        /// Payload bytes of the frames in the outbox.
        var outboxBytes = 0
        var message: [UInt8] = []
        var messageByteCount = 0
        var closeCode: UInt16?
        /// The close frame's reason, if any.
        var closeReason: [UInt8] = []
        /// Closed as a slow reader: what the client still sends is read and dropped, so that the
        /// socket closes with nothing unread (an unread byte turns the close into a reset, which
        /// discards the close frame on the client's side).
        var discardsInput = false

        init(wsi: OpaquePointer) { self.wsi = wsi }
        var hasOutput: Bool { !outbox.isEmpty }
        /// Payload bytes waiting behind the frame to be written next.
        var bytesBehindHead: Int { outbox.first.map { outboxBytes - ($0.count - ServiceLoop.pre) } ?? 0 }
    }

    static let pre = Int(carehub_lws_pre())

    let configuration: WebSocketServer.Configuration
    /// Payload bytes in every connection's outbox.
    let outboxBytes = Atomic<Int>(0)
    /// Connections closed because their outbox passed ``WebSocketServer/Configuration/maxSendQueueBytes``.
    let slowReaderCloses = Atomic<Int>(0)
    let onEvent: @Sendable (ConnectionHandle, WebSocketEvent) -> Void
    let openConnections = Atomic<Int>(0)
    let pendingMessages = Atomic<Int>(0)
    /// HTTP requests being read, handled or answered (a copy of ``requestCount`` for other threads).
    let httpRequestsInProgress = Atomic<Int>(0)
    /// Streamed request bodies' bytes held for their handlers.
    let bodyMetrics = HTTPBodyMetrics()
    private let thread = ServiceThread<Command>()

    // Service thread only.
    private var connections: [UInt64: Connection] = [:]
    var nextID: UInt64 = 1
    private var accepting = true
    /// The routes, text routes and static files, built when the context is created.
    var router = HTTPRouter()
    /// HTTP requests in progress by exchange id, and the exchange of each connection (or HTTP/2 stream).
    var httpExchanges: [UInt64: HTTPExchange] = [:]
    var httpExchangeByConnection: [OpaquePointer: UInt64] = [:]
    /// Requests counted against ``HTTPLimits``, in all and per peer address.
    var requestCount = 0
    var requestsByPeer: [String: Int] = [:]
    /// Where a body chunk is put together before `lws_write` (with `LWS_PRE` bytes in front).
    var httpScratch = [UInt8](repeating: 0, count: ServiceLoop.pre + ServiceLoop.httpChunkBytes)

    // C strings and structs handed to lws; they must outlive the context.
    private var cStrings: [UnsafeMutablePointer<CChar>] = []
    private let protocols = UnsafeMutablePointer<lws_protocols>.allocate(capacity: 2)
    private let mount = UnsafeMutablePointer<lws_http_mount>.allocate(capacity: 1)
    private var mountInitialized = false
    private let defaultOption = UnsafeMutablePointer<lws_protocol_vhost_options>.allocate(capacity: 1)
    private let protocolOption = UnsafeMutablePointer<lws_protocol_vhost_options>.allocate(capacity: 1)
    /// The headers lws adds to every HTTP response (`info.headers`), a linked list.
    private var responseHeaders: UnsafeMutablePointer<lws_protocol_vhost_options>?
    private var responseHeaderCount = 0

    init(configuration: WebSocketServer.Configuration, onEvent: @escaping @Sendable (ConnectionHandle, WebSocketEvent) -> Void) {
        self.configuration = configuration
        self.onEvent = onEvent
    }

    deinit {
        for string in cStrings { free(string) }
        protocols.deallocate()
        if mountInitialized { mount.deinitialize(count: 1) }
        mount.deallocate()
        defaultOption.deallocate()
        protocolOption.deallocate()
        responseHeaders?.deinitialize(count: responseHeaderCount)
        responseHeaders?.deallocate()
    }

    static func frame(_ payload: [UInt8]) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: pre)
        frame.reserveCapacity(pre + payload.count)
        frame.append(contentsOf: payload)
        return frame
    }

    private func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
        let pointer = strdup(text)!
        cStrings.append(pointer)
        return pointer
    }

    // MARK: Any thread

    func enqueue(_ command: Command) {
        if case .send = command { pendingMessages.add(1, ordering: .relaxed) }
        if !thread.enqueue(command), case .send = command { pendingMessages.subtract(1, ordering: .relaxed) }
    }

    /// Queues several sends in order with one wake-up.
    func enqueue(sends: [Command]) {
        pendingMessages.add(sends.count, ordering: .relaxed)
        if !thread.enqueue(contentsOf: sends) { pendingMessages.subtract(sends.count, ordering: .relaxed) }
    }

    /// Pauses or resumes reading a connection. On the service thread (from an event handler) it
    /// applies at once, so no further message of the connection is reported after the one being
    /// handled; from another thread it goes through the command queue.
    func setReceiving(_ id: UInt64, _ enabled: Bool) {
        if thread.isCurrent {
            applyReceiving(id, enabled)
        } else {
            enqueue(.receiving(id, enabled))
        }
    }

    /// Creates the context on a new service thread and waits until it listens (or failed).
    func start() throws -> ListeningAddress {
        let host = try ListeningAddress.resolve(configuration.host)
        // Woken every second so that the HTTP idle timeouts fire when due on a quiet server too.
        return try thread.start(name: "carehub-lws", wakeEvery: 1, create: { try self.createContext(on: $0, host: host).get() }) { [self] leftover in
            let unsent = leftover.filter { if case .send = $0 { true } else { false } }.count
            pendingMessages.subtract(unsent, ordering: .relaxed)
        }
    }

    /// Stops the service thread and destroys the context (idempotent).
    func stop() { thread.stop() }

    /// Creates the context listening on `host` (numeric) only.
    private func createContext(on eventLoop: ServiceThread<Command>.EventLoop, host: String) -> Result<(OpaquePointer, ListeningAddress), TransportError> {
        carehub_ignore_sigpipe()
        lws_set_log_level(LLL_ERR, { _, line in
            guard let line else { return }
            let text = "libwebsockets: " + String(cString: line)
            FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
        })

        protocols.initialize(repeating: lws_protocols(), count: 2)
        protocols[0].name = UnsafePointer(cString("carehub"))
        protocols[0].callback = { wsi, reason, user, input, length in
            carehubServiceCallback(wsi, reason, user, input, length)
        }
        protocols[0].per_session_data_size = MemoryLayout<UInt64>.size
        protocols[0].rx_buffer_size = 0

        defaultOption.initialize(to: lws_protocol_vhost_options())
        defaultOption.pointee.name = UnsafePointer(cString("default"))
        defaultOption.pointee.value = UnsafePointer(cString("1"))
        protocolOption.initialize(to: lws_protocol_vhost_options())
        protocolOption.pointee.name = UnsafePointer(cString("carehub"))
        protocolOption.pointee.options = UnsafePointer(defaultOption)

        var info = lws_context_creation_info()
        info.port = Int32(configuration.port)
        // lws binds `iface` (an interface name or a numeric address) on an IPv6 socket unless
        // IPv6 is disabled, and an IPv4 address given to an IPv6 socket is dropped there: the
        // socket then listened on every interface. An IPv4 address gets an IPv4 socket.
        info.iface = UnsafePointer(cString(host))
        info.protocols = UnsafePointer(protocols)
        info.pvo = UnsafePointer(protocolOption)
        info.gid = -1
        info.uid = -1
        info.user = Unmanaged.passUnretained(self).toOpaque()
        // Our own list rather than LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE,
        // whose policy lets pages connect to any ws: or wss: host, and whose STS option sends a
        // six-month max-age.
        info.headers = UnsafePointer(makeResponseHeaders(tls: configuration.tlsCertificatePath != nil))
        info.options = 0
        if !host.contains(":") { info.options |= UInt64(LWS_SERVER_OPTION_DISABLE_IPV6) }
        eventLoop.configure(&info)
        // Every HTTP request goes to this protocol's callback, which routes it (the static files
        // included: lws' own file mount follows symbolic links out of the root).
        var resolvedRoot: String?
        if let root = configuration.staticRoot {
            guard let resolved = WebRoot.resolve(root) else {
                return .failure(.invalidConfiguration("static directory \(root) cannot be resolved"))
            }
            resolvedRoot = resolved
        }
        router = configuration.router(resolvedStaticRoot: resolvedRoot)
        mount.initialize(to: lws_http_mount())
        mountInitialized = true
        mount.pointee.mountpoint = UnsafePointer(cString("/"))
        mount.pointee.mountpoint_len = 1
        mount.pointee.origin = UnsafePointer(cString("carehub"))
        mount.pointee.origin_protocol = UInt8(LWSMPRO_CALLBACK.rawValue)
        info.mounts = UnsafePointer(mount)
        info.max_http_header_data = UInt16(configuration.httpLimits.maxHeaderBytes)
        if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsPrivateKeyPath {
            info.options |= UInt64(LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT)
            info.ssl_cert_filepath = UnsafePointer(cString(certificate))
            info.ssl_private_key_filepath = UnsafePointer(cString(key))
        }
        guard let context = lws_create_context(&info) else {
            let address = ListeningAddress(host: host, port: configuration.port)
            return .failure(.cannotListen("cannot listen on \(address) (address in use, not local, or TLS files invalid)"))
        }
        guard let vhost = lws_get_vhost_by_name(context, "default") else {
            lws_context_destroy(context)
            return .failure(.cannotListen("libwebsockets created no default vhost"))
        }
        return .success((context, ListeningAddress(host: host, port: Int(lws_get_vhost_listen_port(vhost)))))
    }

    /// Builds the `info.headers` list from ``WebSocketServer/responseHeaders(tls:)``.
    private func makeResponseHeaders(tls: Bool) -> UnsafeMutablePointer<lws_protocol_vhost_options> {
        let headers = WebSocketServer.responseHeaders(tls: tls)
        let list = UnsafeMutablePointer<lws_protocol_vhost_options>.allocate(capacity: headers.count)
        list.initialize(repeating: lws_protocol_vhost_options(), count: headers.count)
        for (index, header) in headers.enumerated() {
            list[index].name = UnsafePointer(cString(header.name.lowercased() + ":"))
            list[index].value = UnsafePointer(cString(header.value))
            list[index].next = index + 1 < headers.count ? UnsafePointer(list + index + 1) : nil
        }
        responseHeaders = list
        responseHeaderCount = headers.count
        return list
    }

    // MARK: Service thread

    func callback(_ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
                  _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        switch reason {
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            drainCommands()
            return 0

        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            guard accepting, let wsi, requestPath(wsi) == configuration.webSocketPath else { return 1 }
            // An over-long header refuses the upgrade rather than reaching the rules cut short.
            guard let info = connectionInfo(wsi) else { return refuse(wsi, status: UInt32(HTTP_STATUS_FORBIDDEN.rawValue)) }
            guard configuration.admit?(info) ?? true else { return refuse(wsi, status: 429) }
            return 0

        case LWS_CALLBACK_ESTABLISHED:
            guard let wsi, let user else { return -1 }
            let id = nextID
            nextID += 1
            user.storeBytes(of: id, as: UInt64.self)
            connections[id] = Connection(wsi: wsi)
            openConnections.add(1, ordering: .relaxed)
            // The request headers are still attached here; they were checked at the filter.
            let info = connectionInfo(wsi) ?? ConnectionInfo(peer: peerAddress(wsi), tls: lws_is_ssl(wsi) != 0)
            onEvent(ConnectionHandle(rawValue: id), .opened(info))
            return 0

        case LWS_CALLBACK_RECEIVE:
            guard let wsi, let id = user?.load(as: UInt64.self), let connection = connections[id] else { return -1 }
            receive(wsi, id: id, connection: connection, input: input, length: length)
            return 0

        case LWS_CALLBACK_SERVER_WRITEABLE:
            guard let id = user?.load(as: UInt64.self), let connection = connections[id] else { return -1 }
            return write(connection)

        case LWS_CALLBACK_HTTP:
            guard let wsi else { return -1 }
            return httpRequestArrived(wsi)

        case LWS_CALLBACK_HTTP_BODY:
            guard let wsi else { return -1 }
            return httpBodyArrived(wsi, input, length)

        case LWS_CALLBACK_HTTP_BODY_COMPLETION:
            guard let wsi else { return -1 }
            return httpBodyCompleted(wsi)

        case LWS_CALLBACK_HTTP_WRITEABLE:
            guard let wsi else { return -1 }
            return httpWriteable(wsi)

        case LWS_CALLBACK_CLOSED_HTTP, LWS_CALLBACK_HTTP_DROP_PROTOCOL:
            if let wsi { httpConnectionGone(wsi) }
            return lws_callback_http_dummy(wsi, reason, user, input, length)

        case LWS_CALLBACK_CLOSED:
            guard let id = user?.load(as: UInt64.self), let connection = connections.removeValue(forKey: id) else { return 0 }
            dropOutbox(connection)
            openConnections.subtract(1, ordering: .relaxed)
            onEvent(ConnectionHandle(rawValue: id), .closed)
            return 0

        default:
            return lws_callback_http_dummy(wsi, reason, user, input, length)
        }
    }

    private func receive(_ wsi: OpaquePointer, id: UInt64, connection: Connection, input: UnsafeMutableRawPointer?, length: Int) {
        guard !connection.discardsInput else { return }
        connection.messageByteCount += length
        if connection.messageByteCount <= configuration.maxMessageBytes, let input, length > 0 {
            connection.message.append(contentsOf: UnsafeRawBufferPointer(start: input, count: length))
        } else if connection.messageByteCount > configuration.maxMessageBytes {
            connection.message = []
        }
        guard lws_is_final_fragment(wsi) != 0, lws_remaining_packet_payload(wsi) == 0 else { return }
        let event: WebSocketEvent
        if connection.messageByteCount > configuration.maxMessageBytes {
            event = .oversized(byteCount: connection.messageByteCount)
        } else if lws_frame_is_binary(wsi) != 0 {
            event = .binary
        } else {
            event = .text(connection.message)
        }
        connection.message = []
        connection.messageByteCount = 0
        onEvent(ConnectionHandle(rawValue: id), event)
    }

    /// Frames written in one WRITEABLE callback at most, so that one busy connection cannot hold
    /// the others up for long.
    static let framesPerWrite = 64

    /// Writes queued frames while the socket takes them without blocking: a subscriber with many
    /// busy rooms catches up in one pass of the loop instead of one frame per pass.
    private func write(_ connection: Connection) -> Int32 {
        guard connection.hasOutput else {
            if let code = connection.closeCode {
                connection.closeReason.withUnsafeMutableBufferPointer { reason in
                    lws_close_reason(connection.wsi, lws_close_status(rawValue: UInt32(code)), reason.baseAddress, reason.count)
                }
                return -1
            }
            return 0
        }
        var written = 0
        while connection.hasOutput, written < Self.framesPerWrite {
            if written > 0 && lws_send_pipe_choked(connection.wsi) != 0 { break }
            guard writeNext(connection) else { return -1 }
            written += 1
        }
        if connection.hasOutput || connection.closeCode != nil { lws_callback_on_writable(connection.wsi) }
        return 0
    }

    /// Writes the frame at the head of the outbox; false if the socket failed.
    private func writeNext(_ connection: Connection) -> Bool {
        var frame = connection.outbox.removeFirst()
        pendingMessages.subtract(1, ordering: .relaxed)
        let payloadLength = frame.count - Self.pre
        connection.outboxBytes -= payloadLength
        outboxBytes.subtract(payloadLength, ordering: .relaxed)
        let written = frame.withUnsafeMutableBufferPointer { buffer in
            lws_write(connection.wsi, buffer.baseAddress! + Self.pre, payloadLength, LWS_WRITE_TEXT)
        }
        return written >= payloadLength
    }

    private func drainCommands() {
        for command in thread.drain() {
            switch command {
            case .send(let id, let frame):
                guard let connection = connections[id], connection.closeCode == nil else {
                    pendingMessages.subtract(1, ordering: .relaxed)
                    continue
                }
                connection.outbox.append(frame)
                connection.outboxBytes += frame.count - Self.pre
                outboxBytes.add(frame.count - Self.pre, ordering: .relaxed)
                if connection.bytesBehindHead > configuration.maxSendQueueBytes {
                    closeSlowReader(connection)
                }
                lws_callback_on_writable(connection.wsi)
            case .receiving(let id, let enabled):
                applyReceiving(id, enabled)
            case .close(let id, let code):
                guard let connection = connections[id] else { continue }
                connection.closeCode = connection.closeCode ?? code
                lws_callback_on_writable(connection.wsi)
            case .closeAll(let code):
                for connection in connections.values {
                    connection.closeCode = connection.closeCode ?? code
                    lws_callback_on_writable(connection.wsi)
                }
            case .stopAccepting:
                accepting = false
            case .respond(let id, let response):
                httpResponseReady(id, response)
            case .resumeBody(let id):
                httpResumeBody(id)
            case .responseChunk(let id, let pull):
                httpResponseChunk(id, pull)
            }
        }
    }

    private func applyReceiving(_ id: UInt64, _ enabled: Bool) {
        guard let connection = connections[id], !connection.discardsInput else { return }
        // Inside the connection's own receive callback lws applies this once the callback returns
        // and keeps the rest of what it read for later; elsewhere at once.
        _ = lws_rx_flow_control(connection.wsi, enabled ? 1 : 0)
    }

    /// The close of a connection whose outbox passed the limit: what it had not taken is dropped,
    /// what it still sends is read and dropped (it is closing: nothing of it is acknowledged), and
    /// the close frame goes out once the socket takes it, or the socket is dropped after
    /// ``slowReaderGraceSeconds``.
    private func closeSlowReader(_ connection: Connection) {
        dropOutbox(connection)
        connection.closeCode = WebSocketServer.slowReaderCloseCode
        connection.closeReason = Array(WebSocketServer.slowReaderCloseReason.utf8)
        connection.discardsInput = true
        _ = lws_rx_flow_control(connection.wsi, 1)
        slowReaderCloses.add(1, ordering: .relaxed)
        lws_set_timeout(connection.wsi, PENDING_TIMEOUT_USER_OK, Self.slowReaderGraceSeconds)
    }

    /// How long a slow reader's close frame may wait for its socket before the socket is dropped.
    static let slowReaderGraceSeconds: Int32 = 10

    /// Empties a connection's outbox, keeping the counts true.
    private func dropOutbox(_ connection: Connection) {
        let unsent = connection.outbox.count
        if unsent > 0 { pendingMessages.subtract(unsent, ordering: .relaxed) }
        outboxBytes.subtract(connection.outboxBytes, ordering: .relaxed)
        connection.outbox.removeAll()
        connection.outboxBytes = 0
    }

    /// The request's path (without its query), as lws decoded it; "" if there is none.
    private func requestPath(_ wsi: OpaquePointer) -> String {
        requestTarget(wsi).path
    }

    /// The request's method (an `LWSHUMETH_` value, -1 if none) and path.
    func requestTarget(_ wsi: OpaquePointer) -> (method: Int32, path: String) {
        var uri: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        let method = lws_http_get_uri_and_method(wsi, &uri, &length)
        guard method >= 0, let uri, length > 0 else { return (method, "") }
        return (method, String(decoding: UnsafeRawBufferPointer(start: uri, count: Int(length)), as: UTF8.self))
    }

    /// Answers the upgrade request with `status` (403 for a header over the cap, 429 for a
    /// connection the admission hook refused) and drops it.
    private func refuse(_ wsi: OpaquePointer, status: UInt32) -> Int32 {
        _ = lws_return_http_status(wsi, status, nil)
        return 1
    }

    /// The connection's peer, TLS flag and headers; nil if one of the headers is longer than
    /// ``ConnectionInfo/maxHeaderBytes``.
    private func connectionInfo(_ wsi: OpaquePointer) -> ConnectionInfo? {
        guard case .value(let origin) = header(wsi, WSI_TOKEN_ORIGIN),
              case .value(let hostHeader) = header(wsi, WSI_TOKEN_HOST),
              case .value(let authority) = header(wsi, WSI_TOKEN_HTTP_COLON_AUTHORITY),
              case .value(let forwardedFor) = header(wsi, WSI_TOKEN_X_FORWARDED_FOR),
              case .value(let forwardedProto) = customHeader(wsi, "x-forwarded-proto:")
        else { return nil }
        return ConnectionInfo(
            peer: peerAddress(wsi), origin: origin, host: hostHeader ?? authority, forwardedFor: forwardedFor,
            forwardedProto: forwardedProto, tls: lws_is_ssl(wsi) != 0)
    }

    /// A request header: `.value(nil)` when absent or empty, `.tooLong` past the cap.
    enum HeaderValue {
        case value(String?)
        case tooLong
    }

    func header(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> HeaderValue {
        let length = Int(lws_hdr_total_length(wsi, token))
        guard length > 0 else { return .value(nil) }
        guard length <= ConnectionInfo.maxHeaderBytes else { return .tooLong }
        var buffer = [CChar](repeating: 0, count: length + 1)
        let copied = lws_hdr_copy(wsi, &buffer, Int32(buffer.count), token)
        guard copied >= 0 else { return .tooLong }
        return .value(Self.string(buffer[..<Int(copied)]))
    }

    /// A header lws has no token for; `name` is lower case with its colon (`x-forwarded-proto:`).
    func customHeader(_ wsi: OpaquePointer, _ name: String, limit: Int = ConnectionInfo.maxHeaderBytes) -> HeaderValue {
        let length = Int(lws_hdr_custom_length(wsi, name, Int32(name.utf8.count)))
        guard length > 0 else { return .value(nil) }
        guard length <= limit else { return .tooLong }
        var buffer = [CChar](repeating: 0, count: length + 1)
        let copied = lws_hdr_custom_copy(wsi, &buffer, Int32(buffer.count), name, Int32(name.utf8.count))
        guard copied >= 0 else { return .tooLong }
        return .value(Self.string(buffer[..<Int(copied)]))
    }

    static func string(_ bytes: ArraySlice<CChar>) -> String {
        String(decoding: bytes.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func peerAddress(_ wsi: OpaquePointer) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        guard lws_get_peer_simple(wsi, &buffer, buffer.count) != nil else { return "unknown" }
        let address = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // A listener on [::] is dual-stack; show its IPv4 peers as IPv4.
        return address.hasPrefix("::ffff:") && address.contains(".") ? String(address.dropFirst(7)) : address
    }
}

/// The protocol callback lws calls; it forwards to the loop in the context's user pointer.
func carehubServiceCallback(
    _ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?, _ length: Int
) -> Int32 {
    guard let wsi, let context = lws_get_context(wsi), let pointer = lws_context_user(context) else {
        return lws_callback_http_dummy(wsi, reason, user, input, length)
    }
    let loop = Unmanaged<ServiceLoop>.fromOpaque(pointer).takeUnretainedValue()
    return loop.callback(wsi, reason, user, input, length)
}
