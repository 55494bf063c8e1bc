import CLibWebSockets
import Foundation

/// The HTTP side of the service loop: routing, bodies, handler hand-off and streamed answers.
///
/// Headers arrive in `LWS_CALLBACK_HTTP`, body bytes in `LWS_CALLBACK_HTTP_BODY` until
/// `LWS_CALLBACK_HTTP_BODY_COMPLETION`. The handler then runs as a task; its response comes back
/// as a ``ServiceLoop/Command/respond(_:_:)`` through the same queue and wake-up as WebSocket sends,
/// and goes out one piece per `LWS_CALLBACK_HTTP_WRITEABLE`: the head, then body chunks of
/// ``httpChunkBytes`` (a file is read chunk by chunk, never whole).
extension ServiceLoop {
    /// The most body bytes written in one WRITEABLE callback: libwebsockets' service buffer
    /// (`pt_serv_buf_size`, 4 KiB). Larger writes lost the end of files over HTTP/2 with TLS.
    static let httpChunkBytes = 4 * 1024

    // MARK: Headers

    func httpRequestArrived(_ wsi: OpaquePointer) -> Int32 {
        let (lwsMethod, path) = requestTarget(wsi)
        guard let method = httpMethod(wsi, lwsMethod) else { return -1 }
        let peer = peerAddress(wsi)
        // An HTTP/2 stream has the connection's wsi above it. (Its method says so only for
        // some requests: libwebsockets files an HTTP/2 POST's path under the HTTP/1 POST token.)
        let http2 = lws_get_network_wsi(wsi) != wsi
        var request = HTTPRequest(method: method, path: path, peer: peer, tls: lws_is_ssl(wsi) != 0)
        let limits = configuration.httpLimits
        if requestCount >= limits.maxConcurrentRequests || requestsByPeer[peer, default: 0] >= limits.maxRequestsPerPeer {
            let response: HTTPResponse = requestCount >= limits.maxConcurrentRequests
                ? .error(503, "Service unavailable: too many requests in progress")
                : .error(429, "Too many requests in progress from this address")
            var answer = response
            answer.headers["Retry-After"] = "1"
            return answerNow(wsi, http2: http2, request: request, route: nil, counted: false, answer, closing: true)
        }
        // A refused request's body is never read: answering it and reading on would leave
        // libwebsockets replaying the unread body, so such a connection closes after the answer.
        let bodyMethod = [HTTPMethod.post, .put, .patch].contains(method)
        let carriesBody = { (headers: HTTPHeaders) -> Bool in
            let declared = headers["content-length"].map { Int($0.trimmingCharacters(in: .whitespaces)) }
            // libwebsockets waits for a POST's body even when it declares none.
            if let declared { return declared.map { $0 > 0 || method == .post } ?? true }
            return bodyMethod
        }
        switch router.match(method, path) {
        case .notFound:
            let closing = carriesBody(requestHeaders(wsi))
            return answerNow(wsi, http2: http2, request: request, route: nil, counted: true, router.refusal(404, "Not found", path: path), closing: closing)
        case .methodNotAllowed(let allowed):
            var response = router.refusal(405, "Method not allowed", path: path)
            response.headers["Allow"] = allowed.map(\.rawValue).joined(separator: ", ")
            let closing = carriesBody(requestHeaders(wsi))
            return answerNow(wsi, http2: http2, request: request, route: nil, counted: true, response, closing: closing)
        case .found(let route, let parameters):
            request.parameters = parameters
            request.query = queryItems(wsi)
            request.headers = requestHeaders(wsi)
            let declared = request.headers["content-length"].map { Int($0.trimmingCharacters(in: .whitespaces)) }
            if let declared, declared ?? Int.max > route.maxBodyBytes {
                return answerNow(wsi, http2: http2, request: request, route: route, counted: true, bodyTooLarge(route, path: path), closing: true)
            }
            // libwebsockets reads a body for any request that declares a length, and for a POST,
            // PUT or PATCH without one (HTTP/2 ends it with the stream; HTTP/1.1 would need
            // chunked encoding, which it does not decode).
            if declared == nil && bodyMethod && !http2 {
                return answerNow(wsi, http2: http2, request: request, route: route, counted: true, router.refusal(411, "Length required: send Content-Length (0 for no body)", path: path), closing: true)
            }
            let length = declared.flatMap { $0 } ?? 0
            let expectsBody = length > 0 || (method == .post && declared != nil) || (declared == nil && bodyMethod)
            let streams = route.streamsBody
            let exchange = admit(wsi, http2: http2, request: request, route: route, counted: true,
                                 state: expectsBody && !streams ? .readingBody : .handling)
            armIdleTimeout(exchange)
            if streams { startBodyStream(exchange, expectsBody: expectsBody) }
            if !expectsBody || streams { startHandler(exchange) }
            return 0
        }
    }

    func bodyTooLarge(_ route: HTTPRoute, path: String) -> HTTPResponse {
        router.refusal(413, "Request body too large: this address accepts at most \(route.maxBodyBytes) bytes", path: path)
    }

    /// Records a new exchange for `wsi` and counts it against the limits when `counted`.
    func admit(_ wsi: OpaquePointer, http2: Bool, request: HTTPRequest, route: HTTPRoute?, counted: Bool,
               state: HTTPExchange.State) -> HTTPExchange {
        let id = nextID
        nextID += 1
        let exchange = HTTPExchange(id: id, wsi: wsi, request: request, route: route, counted: counted, state: state)
        exchange.http2 = http2
        httpExchanges[id] = exchange
        httpExchangeByConnection[wsi] = id
        if counted {
            requestCount += 1
            requestsByPeer[request.peer, default: 0] += 1
            httpRequestsInProgress.store(requestCount, ordering: .relaxed)
        }
        return exchange
    }

    /// Answers at once, from the service thread (errors the transport decides itself).
    private func answerNow(_ wsi: OpaquePointer, http2: Bool, request: HTTPRequest, route: HTTPRoute?, counted: Bool,
                           _ response: HTTPResponse, closing: Bool) -> Int32 {
        if closing {
            // An HTTP/2 stream refused this way is reset: answering it while its body was still
            // arriving closed the whole connection without a reply.
            return http2 ? -1 : answerAndClose(wsi, response)
        }
        _ = admit(wsi, http2: http2, request: request, route: route, counted: counted, state: .writing(response))
        lws_callback_on_writable(wsi)
        return 0
    }

    /// Writes a short answer, head and body in one write, and closes the HTTP/1 connection:
    /// libwebsockets sends what the socket did not take, and reads nothing more (a body over
    /// the limit, a refused request).
    func answerAndClose(_ wsi: OpaquePointer, _ response: HTTPResponse) -> Int32 {
        guard case .bytes(let body) = response.body else { return -1 }
        _ = writeHead(wsi, response, closing: true, http2: false, endsStream: true, then: body)
        return -1
    }

    // MARK: Body

    func httpBodyArrived(_ wsi: OpaquePointer, _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        guard let exchange = exchange(for: wsi) else { return 0 }
        if exchange.bodyBuffer != nil { return streamedBodyArrived(exchange, input, length) }
        guard case .readingBody = exchange.state, let route = exchange.route else { return 0 }
        if exchange.body.count + length > route.maxBodyBytes {
            forget(exchange)
            return exchange.http2 ? -1 : answerAndClose(wsi, bodyTooLarge(route, path: exchange.request.path))
        }
        if let input, length > 0 { exchange.body.append(contentsOf: UnsafeRawBufferPointer(start: input, count: length)) }
        returnWindow(exchange, length)
        armIdleTimeout(exchange)
        return 0
    }

    func httpBodyCompleted(_ wsi: OpaquePointer) -> Int32 {
        guard let exchange = exchange(for: wsi) else { return 0 }
        if exchange.bodyBuffer != nil {
            streamedBodyCompleted(exchange)
            return 0
        }
        guard case .readingBody = exchange.state else { return 0 }
        exchange.state = .handling
        startHandler(exchange)
        return 0
    }

    // MARK: Handler

    /// Runs the route's handler as a task; its answer comes back through the command queue.
    func startHandler(_ exchange: HTTPExchange) {
        guard let route = exchange.route else { return }
        var request = exchange.request
        request.body = exchange.body
        request.bodyStream = exchange.bodyBuffer.map(HTTPBodyStream.init)
        exchange.body = []
        let id = exchange.id
        Task { [self] in
            let response = await route.handler(request)
            enqueue(.respond(id, response))
        }
    }

    /// A handler's answer, on the service thread; dropped if the client has gone.
    func httpResponseReady(_ id: UInt64, _ response: HTTPResponse) {
        guard let exchange = httpExchanges[id], case .handling = exchange.state else { return }
        exchange.state = .writing(response)
        if exchange.bodyBuffer != nil { streamedBodyAnswered(exchange) }
        armIdleTimeout(exchange)
        lws_callback_on_writable(exchange.wsi)
    }

    // MARK: Writing

    func httpWriteable(_ wsi: OpaquePointer) -> Int32 {
        guard let exchange = exchange(for: wsi), case .writing(let response) = exchange.state else { return 0 }
        let withBody = HTTPExchange.hasBody(response, method: exchange.request.method) && response.body.count > 0
        if !exchange.headSent {
            guard writeHead(wsi, response, closing: exchange.closesAfterAnswer, http2: exchange.http2, endsStream: !withBody)
            else { return -1 }
            exchange.headSent = true
            guard withBody else { return finish(exchange) }
            lws_callback_on_writable(wsi)
            return 0
        }
        if case .stream(let stream) = response.body { return writeStreamed(exchange, stream) }
        let total = response.body.count
        var length = min(Self.httpChunkBytes, total - exchange.offset)
        let allowance = Int(lws_get_peer_write_allowance(wsi))
        if allowance >= 0 { length = min(length, allowance) }
        guard length > 0 else {
            lws_callback_on_writable(wsi)
            return 0
        }
        let last = exchange.offset + length == total
        let kind = last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP
        let written: Int32 = httpScratch.withUnsafeMutableBytes { buffer in
            let payload = buffer.baseAddress! + Self.pre
            switch response.body {
            case .empty, .stream: return -1
            case .bytes(let bytes):
                bytes.withUnsafeBytes { source in
                    payload.copyMemory(from: source.baseAddress! + exchange.offset, byteCount: length)
                }
            case .file(let file):
                guard file.read(into: payload, count: length, at: exchange.offset) == length else { return -1 }
            }
            return Int32(lws_write(wsi, payload.assumingMemoryBound(to: UInt8.self), length, kind))
        }
        guard written >= 0 else { return -1 }
        exchange.offset += length
        armIdleTimeout(exchange)
        if last { return finish(exchange) }
        lws_callback_on_writable(wsi)
        return 0
    }

    /// Writes the status line and headers, and `then` after them in the same write (HTTP/1
    /// only); false if the socket failed or they did not fit.
    private func writeHead(_ wsi: OpaquePointer, _ response: HTTPResponse, closing: Bool, http2: Bool,
                           endsStream: Bool, then trailer: [UInt8] = []) -> Bool {
        var fields: [(String, String)] = response.headers.compactMap { field in
            let name = field.name.lowercased()
            return ["content-length", "connection", "transfer-encoding", "keep-alive"].contains(name) ? nil : (name + ":", field.value)
        }
        let status = response.status
        if status != 304 && status != 204 && !(100..<200).contains(status) {
            fields.append(("content-length:", String(response.body.count)))
        }
        if closing && !http2 { fields.append(("connection:", "close")) }
        let capacity = 2048 + fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 }
            + WebSocketServer.responseHeaders(tls: true).reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        var head = [UInt8](repeating: 0, count: Self.pre + capacity + trailer.count)
        return head.withUnsafeMutableBufferPointer { buffer in
            let start = buffer.baseAddress! + Self.pre
            let end = buffer.baseAddress! + buffer.count - 1 - trailer.count
            var cursor: UnsafeMutablePointer<UInt8>? = start
            guard lws_add_http_header_status(wsi, UInt32(status), &cursor, end) == 0 else { return false }
            for (name, value) in fields {
                let added = value.withCString { text in
                    lws_add_http_header_by_name(wsi, name, UnsafeRawPointer(text).assumingMemoryBound(to: UInt8.self),
                                                Int32(strlen(text)), &cursor, end)
                }
                guard added == 0 else { return false }
            }
            guard lws_finalize_http_header(wsi, &cursor, end) == 0, var cursor else { return false }
            for byte in trailer {
                cursor.pointee = byte
                cursor += 1
            }
            var kind = LWS_WRITE_HTTP_HEADERS.rawValue
            if endsStream { kind |= LWS_WRITE_H2_STREAM_END.rawValue }
            let length = cursor - start
            return lws_write(wsi, start, length, lws_write_protocol(rawValue: kind)) >= 0
        }
    }

    /// The answer is out: forget the exchange, then close or go back for the next request.
    func finish(_ exchange: HTTPExchange) -> Int32 {
        forget(exchange)
        if exchange.closesAfterAnswer && !exchange.http2 { return -1 }
        // An HTTP/2 stream ends with the END_STREAM of its last write, and libwebsockets closes
        // it once that is sent.
        if exchange.http2 { return 0 }
        return lws_http_transaction_completed(exchange.wsi) != 0 ? -1 : 0
    }

    // MARK: Bookkeeping

    /// Gives an HTTP/2 client back the flow-control window its body bytes used. libwebsockets 4.1
    /// does so itself only once its estimate of the window falls to one read, and that estimate
    /// leaves out the bytes that came before the request was dispatched: a client that sent its
    /// body straight after the headers could run out of window and wait for good (uploads over
    /// 256 KiB stalled now and then).
    func returnWindow(_ exchange: HTTPExchange, _ length: Int) {
        guard exchange.http2, length > 0 else { return }
        _ = lws_h2_update_peer_txcredit(exchange.wsi, -1, Int32(length))
    }

    /// The request made progress: it may now go ``HTTPLimits/idleSeconds`` without more. An
    /// HTTP/2 stream's connection gets the same time: libwebsockets closes it after its idle
    /// keep-alive time (5 s) even while a stream's body is still coming in.
    func armIdleTimeout(_ exchange: HTTPExchange) {
        let seconds = Int32(configuration.httpLimits.idleSeconds)
        lws_set_timeout(exchange.wsi, PENDING_TIMEOUT_HTTP_CONTENT, seconds)
        if exchange.http2, let connection = lws_get_network_wsi(exchange.wsi) {
            lws_set_timeout(connection, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, seconds)
        }
    }

    func exchange(for wsi: OpaquePointer) -> HTTPExchange? {
        httpExchangeByConnection[wsi].flatMap { httpExchanges[$0] }
    }

    func forget(_ exchange: HTTPExchange) {
        guard httpExchanges.removeValue(forKey: exchange.id) != nil else { return }
        exchange.bodyBuffer?.abandon()
        if httpExchangeByConnection[exchange.wsi] == exchange.id { httpExchangeByConnection[exchange.wsi] = nil }
        guard exchange.counted else { return }
        requestCount -= 1
        httpRequestsInProgress.store(requestCount, ordering: .relaxed)
        let left = requestsByPeer[exchange.peer, default: 1] - 1
        requestsByPeer[exchange.peer] = left > 0 ? left : nil
    }

    /// The connection (or HTTP/2 stream) is gone, or done with this protocol: drop what it had
    /// in progress. A handler still running finds no exchange when it answers.
    func httpConnectionGone(_ wsi: OpaquePointer) {
        guard let exchange = exchange(for: wsi) else { return }
        if exchange.bodyBuffer != nil && !exchange.bodyComplete { streamedBodyCut(exchange) }
        forget(exchange)
    }

    // MARK: Request parts

    private func httpMethod(_ wsi: OpaquePointer, _ lwsMethod: Int32) -> HTTPMethod? {
        switch Int(lwsMethod) {
        case LWSHUMETH_GET: return .get
        case LWSHUMETH_POST: return .post
        case LWSHUMETH_OPTIONS: return .options
        case LWSHUMETH_PUT: return .put
        case LWSHUMETH_PATCH: return .patch
        case LWSHUMETH_DELETE: return .delete
        case LWSHUMETH_CONNECT: return HTTPMethod(rawValue: "CONNECT")
        case LWSHUMETH_HEAD: return .head
        case LWSHUMETH_COLON_PATH:
            guard case .value(let name?) = header(wsi, WSI_TOKEN_HTTP_COLON_METHOD) else { return nil }
            return HTTPMethod(rawValue: name)
        default: return nil
        }
    }

    /// Every header libwebsockets parsed by name, and the router's ``HTTPRouter/keepHeaders``.
    private func requestHeaders(_ wsi: OpaquePointer) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for index in 0..<WSI_TOKEN_COUNT.rawValue {
            let token = lws_token_indexes(rawValue: index)
            guard lws_hdr_total_length(wsi, token) > 0, let name = lws_token_to_string(token) else { continue }
            let text = String(cString: name)
            // Header tokens end in a colon; method tokens ("get ") and pseudo-headers do not count.
            guard text.hasSuffix(":"), !text.hasPrefix(":"), case .value(let value?) = fullHeader(wsi, token) else { continue }
            headers.add(String(text.dropLast()), value)
        }
        for name in router.keepHeaders {
            if case .value(let value?) = customHeader(wsi, name.lowercased() + ":", limit: configuration.httpLimits.maxHeaderBytes) {
                headers.add(name.lowercased(), value)
            }
        }
        return headers
    }

    private func fullHeader(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> HeaderValue {
        let length = Int(lws_hdr_total_length(wsi, token))
        var buffer = [CChar](repeating: 0, count: length + 1)
        let copied = lws_hdr_copy(wsi, &buffer, Int32(buffer.count), token)
        guard copied >= 0 else { return .tooLong }
        return .value(Self.string(buffer[..<Int(copied)]))
    }

    /// The query's pairs, as libwebsockets decoded them (one fragment per `name=value`).
    private func queryItems(_ wsi: OpaquePointer) -> [(name: String, value: String)] {
        let total = Int(lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS))
        guard total > 0 else { return [] }
        var buffer = [CChar](repeating: 0, count: total + 1)
        var items: [(name: String, value: String)] = []
        var index: Int32 = 0
        while true {
            let copied = lws_hdr_copy_fragment(wsi, &buffer, Int32(buffer.count), WSI_TOKEN_HTTP_URI_ARGS, index)
            guard copied >= 0 else { break }
            index += 1
            let pair = Self.string(buffer[..<Int(copied)])
            guard !pair.isEmpty else { continue }
            if let equals = pair.firstIndex(of: "=") {
                items.append((String(pair[..<equals]), String(pair[pair.index(after: equals)...])))
            } else {
                items.append((pair, ""))
            }
        }
        return items
    }
}
