/// What a handler answers: a status, header fields and a body.
///
/// The transport adds `Content-Length` (from the body), the security headers of
/// ``WebSocketServer/responseHeaders(tls:)`` and, for HEAD, leaves the body out.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: HTTPBody

    public init(status: Int = 200, headers: HTTPHeaders = HTTPHeaders(), body: HTTPBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A text body with its content type (`text/plain; charset=utf-8` unless told otherwise).
    public static func text(_ text: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: .bytes(Array(text.utf8)))
    }

    /// A redirect to `location`: 302 Found by default, 303 See Other after a form's POST.
    public static func redirect(to location: String, status: Int = 302) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Location": location])
    }

    /// A short plain-text answer saying what went wrong, for 4xx and 5xx statuses.
    public static func error(_ status: Int, _ message: String) -> HTTPResponse {
        .text(message + "\n", status: status)
    }
}

/// A response body: nothing, bytes in memory, an open file streamed from disk in chunks, or
/// chunks a producer makes while the body is written.
public enum HTTPBody: Sendable {
    case empty
    case bytes([UInt8])
    case file(HTTPFile)
    /// Chunks pulled one at a time as the client takes them (``HTTPStreamBody``).
    case stream(HTTPStreamBody)

    /// The body's length in bytes.
    public var count: Int {
        switch self {
        case .empty: 0
        case .bytes(let bytes): bytes.count
        case .file(let file): file.size
        case .stream(let stream): stream.length
        }
    }
}
