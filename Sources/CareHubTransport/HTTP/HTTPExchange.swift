/// One HTTP request on the service thread, from its headers to the last byte of its answer.
///
/// ```
/// readingBody ──(body complete)──▶ handling ──(handler returned)──▶ writing ──▶ (finished)
/// (404 and 405 start at writing; 411, 413, 429 and 503 are written at once and the
/// connection closed, with no exchange. A route that streams its body starts at handling,
/// with ``bodyBuffer`` filling until ``bodyComplete``; an answer before that closes the
/// connection once written.)
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
    /// Body bytes of the answer written so far.
    var offset = 0

    // A streamed request body.
    /// Where the body goes for the handler, for a route that ``HTTPRoute/streamsBody``.
    var bodyBuffer: HTTPBodyBuffer?
    /// The whole body has been read (or there was none).
    var bodyComplete = false
    /// Body bytes read so far.
    var bodyBytes = 0
    /// False while the socket is not read because the handler is behind (HTTP/1).
    var receiving = true
    /// The handler answered before the whole body was read: the connection closes after the answer.
    var closesAfterAnswer = false
    /// When body bytes last arrived: tells a stalled body from a client gone.
    var lastProgress = ContinuousClock.now

    // A streamed response body (``HTTPBody/stream(_:)``).
    /// The chunk being written, from ``chunkOffset``.
    var chunk: [UInt8] = []
    var chunkOffset = 0
    /// A task is asking the producer for the next chunk.
    var pulling = false
    /// The producer failed or miscounted: the connection is closed at the next write.
    var streamFailed = false

    /// What a streamed response's producer gave when asked for its next chunk.
    enum Pull: Sendable {
        case bytes([UInt8])
        case end
        case failed
    }

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
