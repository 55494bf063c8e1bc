import CLibWebSockets
import Foundation

/// An HTTP(S) client on libwebsockets for webhooks, transcript exports and identity providers:
/// POSTs a body and reports the response status, or GETs/POSTs and returns the body too. One context and service thread per client; TLS certificates are
/// verified against `caFile` when given, else against the system's trust store.
///
/// ```swift
/// let client = try HTTPClient(caFile: nil)
/// let status = try await client.post(host: "hooks.example.org", port: 443, path: "/x", tls: true,
///                                    body: Array(json.utf8), contentType: "application/json")
/// ```
public final class HTTPClient: Sendable {
    /// Why a request failed before a response arrived.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    private let loop: HTTPClientLoop

    /// Starts the client's service thread.
    public init(caFile: String?, timeoutSeconds: Int = 15) throws {
        loop = HTTPClientLoop(caFile: caFile, timeoutSeconds: timeoutSeconds)
        try loop.start()
    }

    deinit { loop.stop() }

    /// POSTs `body` with `headers` (names of letters, digits and '-'; values without line breaks)
    /// and returns the response's HTTP status. Throws ``Failure`` if the connection, the TLS
    /// handshake (an untrusted or mismatched certificate) or the exchange fails.
    public func post(
        host: String, port: Int, path: String, tls: Bool, body: [UInt8], contentType: String, headers: [(name: String, value: String)] = []
    ) async throws -> Int {
        try await send(method: "POST", host: host, port: port, path: path, tls: tls, body: body, contentType: contentType,
                       headers: headers, maxResponseBytes: 0).status
    }

    /// A response: its status and as much of its body as was asked for.
    public struct Response: Sendable {
        /// The HTTP status.
        public let status: Int
        /// The body.
        public let body: [UInt8]
    }

    /// Sends a `GET` (no `body`) or a `POST` and returns the status and body; a body longer than
    /// `maxResponseBytes` fails the request. Redirects are answers, never followed.
    public func send(
        method: String, host: String, port: Int, path: String, tls: Bool, body: [UInt8]? = nil, contentType: String? = nil,
        headers: [(name: String, value: String)] = [], maxResponseBytes: Int = 1 << 20
    ) async throws -> Response {
        guard method == "GET" || method == "POST" else { throw Failure(description: "unsupported method \(method)") }
        for header in headers {
            guard !header.name.isEmpty, header.name.utf8.allSatisfy({ $0 == 0x2d || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }),
                  !header.value.utf8.contains(where: { $0 == 0x0d || $0 == 0x0a })
            else { throw Failure(description: "invalid request header") }
        }
        return try await withCheckedThrowingContinuation { continuation in
            loop.submit(HTTPClientLoop.Request(
                method: method, host: host, port: port, path: path, tls: tls, body: body, contentType: contentType, headers: headers,
                maxResponseBytes: maxResponseBytes, complete: { continuation.resume(with: $0) }))
        }
    }

    /// Stops the service thread; requests still in flight fail.
    public func shutdown() { loop.stop() }
}

/// The client's lws context; everything below "service thread only" is touched only in callbacks.
final class HTTPClientLoop: @unchecked Sendable {
    struct Request: @unchecked Sendable {
        let method: String
        let host: String
        let port: Int
        let path: String
        let tls: Bool
        let body: [UInt8]?
        let contentType: String?
        let headers: [(name: String, value: String)]
        let maxResponseBytes: Int
        let complete: @Sendable (Result<HTTPClient.Response, any Error>) -> Void
    }

    private final class InFlight {
        let request: Request
        var status = 0
        var body: [UInt8] = []
        var bodySent = false
        var done = false
        var cStrings: [UnsafeMutablePointer<CChar>] = []
        init(request: Request) { self.request = request }
        deinit { for string in cStrings { free(string) } }
    }

    private let caFile: String?
    private let timeoutSeconds: Int
    private let thread = ServiceThread<Request>()
    private let protocols = UnsafeMutablePointer<lws_protocols>.allocate(capacity: 2)
    private var cStrings: [UnsafeMutablePointer<CChar>] = []

    // Service thread only.
    /// The context's one vhost, which holds the client TLS context.
    private var vhost: OpaquePointer?
    private var inFlight: [UInt: InFlight] = [:]
    private var nextID: UInt = 1

    init(caFile: String?, timeoutSeconds: Int) {
        self.caFile = caFile
        self.timeoutSeconds = timeoutSeconds
    }

    deinit {
        for string in cStrings { free(string) }
        protocols.deallocate()
    }

    private func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
        let pointer = strdup(text)!
        cStrings.append(pointer)
        return pointer
    }

    func submit(_ request: Request) {
        if !thread.enqueue(request) { request.complete(.failure(HTTPClient.Failure(description: "the HTTP client is stopped"))) }
    }

    func start() throws {
        // Woken every second: lws's timeouts (connect, handshake, response) are run when due,
        // also when the peer has gone silent and no socket event comes.
        try thread.start(name: "carehub-http", wakeEvery: 1, create: { [self] eventLoop in
            guard let context = createContext(on: eventLoop) else {
                throw HTTPClient.Failure(description: "cannot create the HTTP client (CA file unreadable?)")
            }
            return (context, ())
        }) { [self] leftover in
            // Anything still waiting hears of it.
            let stopped = HTTPClient.Failure(description: "the HTTP client stopped")
            for request in leftover { request.complete(.failure(stopped)) }
            for flight in inFlight.values where !flight.done { flight.request.complete(.failure(stopped)) }
            inFlight = [:]
        }
    }

    func stop() { thread.stop() }

    /// Creates the client's context with TLS on its one vhost, trusting `caFile` (or the system's
    /// store).
    ///
    /// libwebsockets' global TLS set-up (``globalTLS``) numbers afresh, each time it runs, the
    /// OpenSSL ex-data slot through which its certificate check finds a connection; a handshake
    /// begun before a renumbering then finds nothing and fails ("can't get wsi from ssl
    /// privdata"). So it runs once per process, and a client's context is created without it:
    /// client TLS is switched on for the context's vhost alone, which leaves the slots as they are.
    /// lws frees a vhost's client TLS context only when the context itself carries the option, so
    /// each client keeps its one OpenSSL context until the process ends (the hub holds one client
    /// per CA file for its whole life).
    private func createContext(on eventLoop: ServiceThread<Request>.EventLoop) -> OpaquePointer? {
        guard Self.globalTLS else { return nil }
        carehub_ignore_sigpipe()
        protocols.initialize(repeating: lws_protocols(), count: 2)
        protocols[0].name = UnsafePointer(cString("carehub-http-client"))
        protocols[0].callback = { wsi, reason, user, input, length in
            carehubHTTPClientCallback(wsi, reason, user, input, length)
        }
        var info = lws_context_creation_info()
        info.port = CONTEXT_PORT_NO_LISTEN
        info.protocols = UnsafePointer(protocols)
        info.gid = -1
        info.uid = -1
        info.timeout_secs = UInt32(timeoutSeconds)
        info.connect_timeout_secs = UInt32(timeoutSeconds)
        info.user = Unmanaged.passUnretained(self).toOpaque()
        info.options = UInt64(LWS_SERVER_OPTION_EXPLICIT_VHOSTS)
        eventLoop.configure(&info)
        guard let context = lws_create_context(&info) else { return nil }
        // The vhost's own options ask for its client TLS context; the context's did not.
        info.options |= UInt64(LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT)
        info.vhost_name = UnsafePointer(cString("carehub-http-client"))
        if let caFile { info.client_ssl_ca_filepath = UnsafePointer(cString(caFile)) }
        guard let vhost = lws_create_vhost(context, &info) else {
            lws_context_destroy(context)
            return nil
        }
        self.vhost = vhost
        return context
    }

    /// Runs libwebsockets' global TLS set-up once for the process, on a context made for that and
    /// destroyed again; false if it could not be made.
    private static let globalTLS: Bool = {
        var info = lws_context_creation_info()
        info.port = CONTEXT_PORT_NO_LISTEN
        info.gid = -1
        info.uid = -1
        info.options = UInt64(LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT) | UInt64(LWS_SERVER_OPTION_EXPLICIT_VHOSTS)
        guard let context = lws_create_context(&info) else { return false }
        lws_context_destroy(context)
        return true
    }()

    // MARK: Service thread

    private func startQueued(_ context: OpaquePointer) {
        for request in thread.drain() {
            let id = nextID
            nextID += 1
            let flight = InFlight(request: request)
            inFlight[id] = flight
            func keep(_ text: String) -> UnsafePointer<CChar> {
                let pointer = strdup(text)!
                flight.cStrings.append(pointer)
                return UnsafePointer(pointer)
            }
            var connect = lws_client_connect_info()
            connect.context = context
            connect.vhost = vhost
            connect.address = keep(request.host)
            connect.port = Int32(request.port)
            connect.path = keep(request.path)
            connect.host = keep(request.host)
            connect.origin = keep(request.host)
            connect.method = keep(request.method)
            connect.alpn = keep("http/1.1")
            connect.protocol = UnsafePointer(protocols[0].name)
            // A webhook's URL is the one its agreement covers: a redirect is an answer, never followed.
            connect.ssl_connection = Int32(LCCSCF_HTTP_NO_FOLLOW_REDIRECT.rawValue) | (request.tls ? Int32(LCCSCF_USE_SSL.rawValue) : 0)
            connect.opaque_user_data = UnsafeMutableRawPointer(bitPattern: id)
            // A failure here may already have been reported through CLIENT_CONNECTION_ERROR.
            if lws_client_connect_via_info(&connect) == nil {
                complete(id, .failure(HTTPClient.Failure(description: "cannot connect to \(request.host):\(request.port)")))
            }
        }
    }

    private func complete(_ id: UInt, _ result: Result<HTTPClient.Response, any Error>) {
        guard let flight = inFlight.removeValue(forKey: id), !flight.done else { return }
        flight.done = true
        flight.request.complete(result)
    }

    func callback(_ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
                  _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        if reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED {
            if let wsi, let context = lws_get_context(wsi) { startQueued(context) }
            return 0
        }
        guard let wsi, let pointer = lws_get_opaque_user_data(wsi) else {
            return lws_callback_http_dummy(wsi, reason, user, input, length)
        }
        let id = UInt(bitPattern: pointer)
        switch reason {
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            let detail = input.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "connection failed"
            complete(id, .failure(HTTPClient.Failure(description: detail)))
            return 0

        case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
            guard let flight = inFlight[id], let input else { return -1 }
            let cursor = input.assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self)
            guard let start = cursor.pointee else { return -1 }
            let end = start + length
            if let body = flight.request.body {
                let type = Array((flight.request.contentType ?? "application/octet-stream").utf8)
                let count = Array(String(body.count).utf8)
                guard lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, type, Int32(type.count), cursor, end) == 0,
                      lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, count, Int32(count.count), cursor, end) == 0
                else { return -1 }
            }
            for header in flight.request.headers {
                let name = Array((header.name.lowercased() + ":").utf8) + [0]
                let value = Array(header.value.utf8)
                guard lws_add_http_header_by_name(wsi, name, value, Int32(value.count), cursor, end) == 0 else { return -1 }
            }
            if flight.request.body != nil {
                lws_client_http_body_pending(wsi, 1)
                lws_callback_on_writable(wsi)
            }
            return 0

        case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
            guard let flight = inFlight[id], !flight.bodySent, let body = flight.request.body else { return 0 }
            flight.bodySent = true
            var frame = [UInt8](repeating: 0, count: Int(carehub_lws_pre())) + body
            let count = body.count
            let written = frame.withUnsafeMutableBufferPointer { buffer in
                lws_write(wsi, buffer.baseAddress! + Int(carehub_lws_pre()), count, LWS_WRITE_HTTP_FINAL)
            }
            lws_client_http_body_pending(wsi, 0)
            return written < count ? -1 : 0

        case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
            inFlight[id]?.status = Int(lws_http_client_http_response(wsi))
            return 0

        case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
            var buffer = [CChar](repeating: 0, count: 1024 + Int(carehub_lws_pre()))
            let status: Int32 = buffer.withUnsafeMutableBufferPointer { raw in
                var start: UnsafeMutablePointer<CChar>? = raw.baseAddress! + Int(carehub_lws_pre())
                var available = Int32(raw.count - Int(carehub_lws_pre()))
                return lws_http_client_read(wsi, &start, &available)
            }
            return status < 0 ? -1 : 0

        case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
            guard let flight = inFlight[id], flight.request.maxResponseBytes > 0 else { return 0 }  // The body is not needed.
            guard flight.body.count + length <= flight.request.maxResponseBytes else {
                complete(id, .failure(HTTPClient.Failure(description: "the response is longer than \(flight.request.maxResponseBytes) bytes")))
                return -1
            }
            if let input, length > 0 {
                flight.body.append(contentsOf: UnsafeRawBufferPointer(start: input, count: length))
            }
            return 0

        case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
            if let flight = inFlight[id] { complete(id, .success(HTTPClient.Response(status: flight.status, body: flight.body))) }
            return 0

        case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
            if let flight = inFlight[id] {
                if flight.status > 0 {
                    complete(id, .success(HTTPClient.Response(status: flight.status, body: flight.body)))
                } else {
                    complete(id, .failure(HTTPClient.Failure(description: "the connection closed before a response")))
                }
            }
            return 0

        default:
            return lws_callback_http_dummy(wsi, reason, user, input, length)
        }
    }
}

/// The protocol callback lws calls; it forwards to the loop in the context's user pointer.
func carehubHTTPClientCallback(
    _ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?, _ length: Int
) -> Int32 {
    guard let wsi, let context = lws_get_context(wsi), let pointer = lws_context_user(context) else {
        return lws_callback_http_dummy(wsi, reason, user, input, length)
    }
    return Unmanaged<HTTPClientLoop>.fromOpaque(pointer).takeUnretainedValue().callback(wsi, reason, user, input, length)
}
