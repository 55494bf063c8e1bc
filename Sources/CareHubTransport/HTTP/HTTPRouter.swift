/// Routes requests by method and path to handlers.
///
/// ```swift
/// var router = HTTPRouter()
/// router.get("/api/v1/conversations/:id") { request in
///     .text("conversation \(request.parameters["id"]!)")
/// }
/// router.post("/api/v1/notes", maxBodyBytes: 4096) { request in
///     .redirect(to: "/notes", status: 303)
/// }
/// ```
///
/// A path no route matches is answered 404; a path some route matches, but not for the request's
/// method, 405 with `Allow`. A GET route also answers HEAD (the body is left out). When several
/// routes match, the most specific wins: literal segments over `:name` over `*`, first segment first.
public struct HTTPRouter: Sendable {
    public private(set) var routes: [HTTPRoute] = []
    /// Request header names (any case) kept for handlers beyond those libwebsockets parses by
    /// name; libwebsockets 4.1 can look custom headers up only by name, not list them.
    public var keepHeaders: Set<String> = []
    /// Answers GET and HEAD for a path no route knows for any method (the web root's files),
    /// except under the prefixes of ``refusals``; nil answers those 404 too.
    public var fallback: HTTPHandler?

    /// How the transport's own refusals (404, 405, 411, 413) are written for paths under a
    /// prefix, such as an API that answers with problem details; elsewhere they are a line of
    /// plain text.
    public var refusals: [(prefix: String, write: @Sendable (_ status: Int, _ message: String) -> HTTPResponse)] = []

    public init() {}

    /// The transport's refusal of a request for `path`, written as ``refusals`` says.
    public func refusal(_ status: Int, _ message: String, path: String) -> HTTPResponse {
        for (prefix, write) in refusals where path.hasPrefix(prefix) { return write(status, message) }
        return .error(status, message)
    }

    /// What a request's method and path lead to.
    public enum Match: Sendable {
        case found(HTTPRoute, parameters: [String: String])
        /// The path is known, not for this method; the methods it is known for.
        case methodNotAllowed(allowed: [HTTPMethod])
        case notFound
    }

    public mutating func add(_ route: HTTPRoute) { routes.append(route) }

    public mutating func add(_ method: HTTPMethod, _ pattern: String, maxBodyBytes: Int = HTTPRoute.defaultMaxBodyBytes,
                             handler: @escaping HTTPHandler) {
        add(HTTPRoute(method, pattern, maxBodyBytes: maxBodyBytes, handler: handler))
    }

    public mutating func get(_ pattern: String, handler: @escaping HTTPHandler) {
        add(.get, pattern, handler: handler)
    }

    public mutating func post(_ pattern: String, maxBodyBytes: Int = HTTPRoute.defaultMaxBodyBytes, handler: @escaping HTTPHandler) {
        add(.post, pattern, maxBodyBytes: maxBodyBytes, handler: handler)
    }

    public mutating func put(_ pattern: String, maxBodyBytes: Int = HTTPRoute.defaultMaxBodyBytes, handler: @escaping HTTPHandler) {
        add(.put, pattern, maxBodyBytes: maxBodyBytes, handler: handler)
    }

    public mutating func patch(_ pattern: String, maxBodyBytes: Int = HTTPRoute.defaultMaxBodyBytes, handler: @escaping HTTPHandler) {
        add(.patch, pattern, maxBodyBytes: maxBodyBytes, handler: handler)
    }

    public mutating func delete(_ pattern: String, handler: @escaping HTTPHandler) {
        add(.delete, pattern, handler: handler)
    }

    /// The route for `method` and `path` (decoded, without its query).
    public func match(_ method: HTTPMethod, _ path: String) -> Match {
        var best: (route: HTTPRoute, parameters: [String: String], rank: [Int])?
        var allowed: Set<HTTPMethod> = []
        for route in routes {
            guard let (parameters, rank) = route.match(path) else { continue }
            allowed.insert(route.method)
            if route.method == .get { allowed.insert(.head) }
            let fits = route.method == method || (method == .head && route.method == .get)
            guard fits else { continue }
            // The more specific route wins; of two alike, an explicit HEAD beats the GET standing in.
            let better = best.map { current in
                current.rank.lexicographicallyPrecedes(rank)
                    || (current.rank == rank && route.method == method && current.route.method != method)
            } ?? true
            if better { best = (route, parameters, rank) }
        }
        if let best { return .found(best.route, parameters: best.parameters) }
        if allowed.isEmpty {
            // Paths under a prefix with refusals of its own are not the web root's.
            guard let fallback, method == .get || method == .head, !refusals.contains(where: { path.hasPrefix($0.prefix) }) else { return .notFound }
            return .found(HTTPRoute(.get, "/*", maxBodyBytes: 0, handler: fallback), parameters: [:])
        }
        return .methodNotAllowed(allowed: allowed.sorted { $0.rawValue < $1.rawValue })
    }
}
