/// What the transport knows about a WebSocket connection when it is upgraded: the socket's peer,
/// whether it came over TLS, and the request headers that security rules look at.
///
/// Headers are raw, as the client (or a proxy in front of the hub) sent them; nothing here is
/// checked or trusted. A header longer than ``maxHeaderBytes`` makes the transport refuse the
/// upgrade, so a value here is never cut short.
public struct ConnectionInfo: Sendable, Equatable {
    /// The socket's peer address (IPv4 peers as `a.b.c.d`), or `unknown`.
    public var peer: String
    /// The `Origin` header.
    public var origin: String?
    /// The `Host` header (HTTP/2's `:authority` when there is no `Host`).
    public var host: String?
    /// The raw `X-Forwarded-For` header.
    public var forwardedFor: String?
    /// The raw `X-Forwarded-Proto` header.
    public var forwardedProto: String?
    /// True if this connection came over TLS to the hub itself.
    public var tls: Bool

    /// The longest header value the transport accepts in the fields above, in bytes.
    public static let maxHeaderBytes = 1024

    public init(
        peer: String, origin: String? = nil, host: String? = nil, forwardedFor: String? = nil,
        forwardedProto: String? = nil, tls: Bool = false
    ) {
        self.peer = peer
        self.origin = origin
        self.host = host
        self.forwardedFor = forwardedFor
        self.forwardedProto = forwardedProto
        self.tls = tls
    }
}
