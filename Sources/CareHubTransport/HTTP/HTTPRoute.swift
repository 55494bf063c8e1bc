/// Answers one HTTP request. It runs as a task on Swift's cooperative pool, never on the service
/// thread, so it may await (storage, other services); it must not block its thread (no sleeps,
/// no blocking I/O beyond a quick local file open). The response is written when it returns.
public typealias HTTPHandler = @Sendable (HTTPRequest) async -> HTTPResponse

/// A method and path pattern with the handler that answers them.
///
/// A pattern is a path whose segments are literals, `:name` parameters (one non-empty segment),
/// or a final `*` that takes the rest of the path (possibly empty): `/api/v1/conversations/:id`,
/// `/static/*`.
public struct HTTPRoute: Sendable {
    /// The body limit of a route that does not set one: 64 KiB.
    public static let defaultMaxBodyBytes = 64 * 1024

    public let method: HTTPMethod
    public let pattern: String
    /// Largest request body accepted; a longer one is answered 413 and the connection closed.
    public let maxBodyBytes: Int
    /// True when the handler starts as soon as the request head is read and takes the body as
    /// it arrives (``HTTPRequest/bodyStream``) rather than whole (``HTTPRequest/body``). A handler
    /// that answers before the whole body has arrived gets its answer sent, and the connection
    /// is then closed without reading the rest.
    public let streamsBody: Bool
    public let handler: HTTPHandler

    enum Segment: Equatable {
        case literal(String)
        case parameter(String)
        case rest
    }

    let segments: [Segment]

    /// A route for `method` and `pattern` whose bodies may be `maxBodyBytes` long, collected
    /// whole before `handler` runs unless `streamsBody`.
    public init(
        _ method: HTTPMethod, _ pattern: String, maxBodyBytes: Int = HTTPRoute.defaultMaxBodyBytes, streamsBody: Bool = false,
        handler: @escaping HTTPHandler
    ) {
        self.method = method
        self.pattern = pattern
        self.maxBodyBytes = maxBodyBytes
        self.streamsBody = streamsBody
        self.handler = handler
        segments = Self.split(pattern).map { part in
            if part == "*" { return .rest }
            if part.hasPrefix(":") && part.count > 1 { return .parameter(String(part.dropFirst())) }
            return .literal(String(part))
        }
    }

    /// The path's segments after the leading `/` ("/" is one empty segment).
    static func split(_ path: String) -> [Substring] {
        path.dropFirst(path.hasPrefix("/") ? 1 : 0).split(separator: "/", omittingEmptySubsequences: false)
    }

    /// The parameters if `path` matches, and how specific the match is (literal beats parameter
    /// beats `*`, segment by segment).
    func match(_ path: String) -> (parameters: [String: String], rank: [Int])? {
        let parts = Self.split(path)
        var parameters: [String: String] = [:]
        var rank: [Int] = []
        for (index, segment) in segments.enumerated() {
            switch segment {
            case .rest:
                guard index <= parts.count else { return nil }
                parameters["*"] = parts[index...].joined(separator: "/")
                rank.append(0)
                return (parameters, rank)
            case .literal(let literal):
                guard index < parts.count, parts[index] == Substring(literal) else { return nil }
                rank.append(2)
            case .parameter(let name):
                guard index < parts.count, !parts[index].isEmpty else { return nil }
                parameters[name] = String(parts[index])
                rank.append(1)
            }
        }
        // Ending exactly where the pattern ends ranks above a `*` that takes nothing.
        return parts.count == segments.count ? (parameters, rank + [3]) : nil
    }
}
