/// Bounds on what HTTP clients may hold of the server. Every field has a default that suits a
/// clinic's hub on the open internet; a reverse proxy in front (all requests from one peer)
/// wants a higher ``maxRequestsPerPeer``.
public struct HTTPLimits: Sendable {
    /// All of one request's header lines together, in bytes (libwebsockets' per-request header
    /// store). A request whose headers do not fit is dropped: the connection is closed without
    /// an answer.
    public var maxHeaderBytes: Int
    /// Requests being read, handled or answered at once, over every connection. One more is
    /// answered `503 Service Unavailable` and its connection closed.
    public var maxConcurrentRequests: Int
    /// The same, per peer address. One more is answered `429 Too Many Requests` and its
    /// connection closed.
    public var maxRequestsPerPeer: Int
    /// Seconds a request may go without progress: its body arriving, its handler answering, or
    /// its response being taken by the client. Then the connection is closed.
    public var idleSeconds: Int

    public init(maxHeaderBytes: Int = 8192, maxConcurrentRequests: Int = 256, maxRequestsPerPeer: Int = 32, idleSeconds: Int = 30) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxConcurrentRequests = maxConcurrentRequests
        self.maxRequestsPerPeer = maxRequestsPerPeer
        self.idleSeconds = idleSeconds
    }

    func validate() throws {
        guard (1024...65535).contains(maxHeaderBytes) else {
            throw TransportError.invalidConfiguration("HTTP header limit must be 1024-65535 bytes")
        }
        guard maxConcurrentRequests > 0, maxRequestsPerPeer > 0, idleSeconds > 0 else {
            throw TransportError.invalidConfiguration("HTTP limits must be positive")
        }
    }
}
