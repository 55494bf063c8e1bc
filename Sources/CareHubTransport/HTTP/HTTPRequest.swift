/// One HTTP request as a handler sees it: everything was read before the handler runs, but for
/// the body of a route that ``HTTPRoute/streamsBody`` (``bodyStream``).
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The path, percent-decoded, without its query (`/api/v1/conversations/42`).
    public var path: String
    /// The route's `:name` segments by name (`["id": "42"]` for `/api/v1/conversations/:id`), and
    /// for a route ending in `*`, the rest of the path under `"*"`.
    public var parameters: [String: String]
    /// The query's `name=value` pairs, percent-decoded, in order (a bare `name` has value "").
    public var query: [(name: String, value: String)]
    /// Request header fields: every field libwebsockets knows by name, plus the extra names the
    /// router was told to keep (``HTTPRouter/keepHeaders``).
    public var headers: HTTPHeaders
    /// The body (empty unless the route accepts one; never longer than its limit).
    public var body: [UInt8]
    /// The body as it arrives, for a route that ``HTTPRoute/streamsBody`` (``body`` is then
    /// empty); nil for every other route.
    public var bodyStream: HTTPBodyStream?
    /// The TCP peer's numeric address.
    public var peer: String
    /// True when the request came over TLS.
    public var tls: Bool

    public init(
        method: HTTPMethod, path: String, parameters: [String: String] = [:], query: [(name: String, value: String)] = [],
        headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], bodyStream: HTTPBodyStream? = nil, peer: String = "",
        tls: Bool = false
    ) {
        self.method = method
        self.path = path
        self.parameters = parameters
        self.query = query
        self.headers = headers
        self.body = body
        self.bodyStream = bodyStream
        self.peer = peer
        self.tls = tls
    }

    /// The first value of the query parameter `name`.
    public func queryValue(_ name: String) -> String? { query.first { $0.name == name }?.value }
}
