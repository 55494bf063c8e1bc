/// One HTTP request on the service thread, from its headers to the last byte of its answer.
///
/// ```
/// readingBody ──(body complete)──▶ handling ──(handler returned)──▶ writing ──▶ (finished)
/// (404 and 405 start at writing; 411, 413, 429 and 503 are written at once and the
/// connection closed, with no exchange.)
/// ```
/// Only the service thread touches it; the handler's task knows it by ``id`` alone.
final class HTTPExchange {
    enum State {
        /// Body bytes are arriving; ``body`` holds them.
        case readingBody
        /// The handler's task runs; its answer comes back through the command queue.
        case handling
        /// The answer is going out, head first, then the body from ``offset``.
        case writing(HTTPResponse)
    }

    let id: UInt64
    let wsi: OpaquePointer
    let peer: String
    var state: State
    var request: HTTPRequest
    let route: HTTPRoute?
    var body: [UInt8] = []
    /// Whether it counts against ``HTTPLimits``.
    let counted: Bool
    /// An HTTP/2 stream rather than an HTTP/1 connection.
    var http2 = false
    var headSent = false
    var offset = 0

    init(id: UInt64, wsi: OpaquePointer, request: HTTPRequest, route: HTTPRoute?, counted: Bool, state: State) {
        self.id = id
        self.wsi = wsi
        self.peer = request.peer
        self.request = request
        self.route = route
        self.counted = counted
        self.state = state
    }

    /// True when a response body goes out (not for HEAD, 204 or 304).
    static func hasBody(_ response: HTTPResponse, method: HTTPMethod) -> Bool {
        method != .head && response.status != 204 && response.status != 304 && !(100..<200).contains(response.status)
    }
}
