@testable import CareHubTransport
import Foundation
import Synchronization
import Testing

/// A latch a handler awaits until a test (or another handler) opens it.
final class Gate: Sendable {
    private let isOpen = Mutex(false)
    private let waiting = Atomic<Int>(0)

    func open() { isOpen.withLock { $0 = true } }

    /// Handlers currently waiting.
    var waiters: Int { waiting.load(ordering: .relaxed) }

    /// Waits until open (a hang guard of 10 s, never a timing assertion); false if it never opened.
    func wait() async -> Bool {
        waiting.add(1, ordering: .relaxed)
        defer { waiting.subtract(1, ordering: .relaxed) }
        for _ in 0..<2000 {
            if isOpen.withLock({ $0 }) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }
}

/// Polls `condition` (a hang guard of 10 s, never a timing assertion).
func eventually(_ condition: () -> Bool) -> Bool {
    for _ in 0..<2000 {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return false
}

@Suite("HTTP router", .serialized)
struct HTTPRouterTests {
    /// A server with `routes` (and optionally a web root) on a free port.
    struct Server {
        let harness: Harness
        let port: Int
        var transport: WebSocketServer { harness.transport }

        init(staticRoot: String? = nil, limits: HTTPLimits = HTTPLimits(), routes: (inout HTTPRouter) -> Void) throws {
            var router = HTTPRouter()
            routes(&router)
            harness = Harness {
                $0.routes = router
                $0.staticRoot = staticRoot
                $0.httpLimits = limits
            }
            port = try harness.transport.start()
        }

        func stop() { transport.shutdown(drainTimeout: .seconds(1)) }
    }

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "carehub-http-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    // MARK: Routing

    @Test func routesMatchPathParametersAndDecodedQueries() throws {
        let server = try Server { router in
            router.get("/api/v1/conversations/:id") { request in
                let query = request.query.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
                return .text("conversation \(request.parameters["id"] ?? "-") \(query)")
            }
            router.get("/api/v1/conversations/latest") { _ in .text("the latest") }
            router.get("/api/v1/rooms/:room/notes/:note") { request in
                .text("\(request.parameters["room"] ?? "-")/\(request.parameters["note"] ?? "-")")
            }
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        let answer = try client.request("GET", "/api/v1/conversations/42?q=a%20b&tag=x+y&flag")
        #expect(answer.status == 200)
        #expect(answer.text == "conversation 42 q=a b&tag=x y&flag=")
        // On the same connection: a literal segment beats a parameter.
        #expect(try client.request("GET", "/api/v1/conversations/latest").text == "the latest")
        #expect(try client.request("GET", "/api/v1/rooms/r1/notes/n2").text == "r1/n2")
        #expect(try client.request("GET", "/api/v1/conversations/").status == 404)
        #expect(try client.request("GET", "/api/v1/conversations/42/extra").status == 404)
    }

    @Test func unknownPathsAre404AndWrongMethods405WithAllow() throws {
        let server = try Server { router in
            router.get("/api/v1/conversations/:id") { _ in .text("one") }
            router.delete("/api/v1/conversations/:id") { _ in HTTPResponse(status: 204) }
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        let missing = try client.request("GET", "/api/v2/nothing")
        #expect(missing.status == 404)
        #expect(missing.text.contains("Not found"))
        let wrong = try client.request("PUT", "/api/v1/conversations/7", body: Array("x".utf8))
        #expect(wrong.status == 405)
        #expect(wrong.header("Allow") == "DELETE, GET, HEAD")
        // The body of a refused request is never read: that connection closes after the answer.
        #expect(client.isClosedByServer())
        let next = try RawHTTPClient(port: server.port)
        #expect(try next.request("DELETE", "/api/v1/conversations/7").status == 204)
        #expect(try next.request("GET", "/api/v1/conversations/7").text == "one")
    }

    /// A request with a body to a path or method no route takes, whose body arrived after the
    /// refusal was written, once left the service thread replaying the unread body for ever: one
    /// request stopped every connection of the hub.
    @Test(arguments: ["OPTIONS", "DELETE", "PATCH", "POST", "PUT"]) func aRefusedRequestWithABodyLeavesTheServerAnswering(method: String) throws {
        let server = try Server { router in
            router.get("/api/v1/conversations/:id") { _ in .text("one") }
            router.put("/api/v1/conversations/:id/role") { _ in .text("set") }
        }
        defer { server.stop() }
        let body = Array(#"{"role": "admin"}"#.utf8)
        for target in ["/api/v1/conversations/7" + (method == "PUT" ? "" : "/role"), "/api/v2/nothing"] {
            let client = try RawHTTPClient(port: server.port, timeout: 5)
            try client.send(method, target, headers: ["Content-Type: application/json", "Content-Length: \(body.count)"])
            let refused = try client.response(to: method)
            #expect(refused.status == (target.hasPrefix("/api/v2") ? 404 : 405))
            try? client.write(body)
            #expect(try RawHTTPClient(port: server.port, timeout: 5).request("GET", "/api/v1/conversations/7").text == "one")
            // The same, two requests back to back on one connection.
            let pipelined = try RawHTTPClient(port: server.port, timeout: 5)
            let one = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
            try? pipelined.write(Array(one.utf8) + body + Array(one.utf8) + body)
            _ = pipelined.readToEnd()
            #expect(try RawHTTPClient(port: server.port, timeout: 5).request("GET", "/api/v1/conversations/7").text == "one")
        }
    }

    @Test func theMostSpecificRouteWins() {
        var router = HTTPRouter()
        router.get("/files/*") { _ in .text("rest") }
        router.get("/files/:name") { _ in .text("name") }
        router.get("/files/index") { _ in .text("index") }
        func pattern(_ method: HTTPMethod, _ path: String) -> String? {
            if case .found(let route, _) = router.match(method, path) { return route.pattern }
            return nil
        }
        #expect(pattern(.get, "/files/index") == "/files/index")
        #expect(pattern(.get, "/files/report") == "/files/:name")
        #expect(pattern(.get, "/files/a/b") == "/files/*")
        #expect(pattern(.get, "/files/") == "/files/*")
        #expect(pattern(.head, "/files/report") == "/files/:name")
        if case .found(_, let parameters) = router.match(.get, "/files/a/b") { #expect(parameters["*"] == "a/b") }
        if case .methodNotAllowed(let allowed) = router.match(.post, "/files/x") { #expect(allowed == [.get, .head]) } else {
            Issue.record("POST to a GET route is not 405")
        }
    }

    // MARK: Headers

    @Test func requestHeadersAreFoundInAnyCaseAndResponseHeadersGoOut() throws {
        let server = try Server { router in
            router.keepHeaders = ["X-Clinic-Code"]
            router.get("/whoami") { request in
                var response = HTTPResponse.text(
                    "\(request.headers["ACCEPT-LANGUAGE"] ?? "-") \(request.headers["x-clinic-code"] ?? "-") \(request.headers["User-Agent"] ?? "-")")
                response.headers.add("X-Request-Echo", request.headers["X-CLINIC-CODE"] ?? "none")
                response.headers.add("Cache-Control", "no-store")
                return response
            }
        }
        defer { server.stop() }
        let answer = try RawHTTPClient(port: server.port).request(
            "GET", "/whoami", headers: ["accept-language: en-GB", "X-Clinic-Code: riverside", "User-Agent: raw-test"])
        #expect(answer.text == "en-GB riverside raw-test")
        #expect(answer.header("x-request-echo") == "riverside")
        #expect(answer.header("cache-control") == "no-store")
        // The security headers go on routed answers too.
        #expect(answer.header("x-content-type-options") == "nosniff")
        #expect(answer.header("content-security-policy")?.contains("connect-src 'self'") == true)
    }

    // MARK: Bodies

    @Test func aBodyWithinTheLimitReachesTheHandler() throws {
        let server = try Server { router in
            router.post("/echo", maxBodyBytes: 4096) { request in
                HTTPResponse(status: 200, headers: ["Content-Type": "application/octet-stream"], body: .bytes(request.body))
            }
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        let body = (0..<4096).map { UInt8($0 % 251) }
        let answer = try client.request("POST", "/echo", body: body)
        #expect(answer.status == 200)
        #expect(answer.body == body)
        // An empty POST, then a second body on the same connection.
        #expect(try client.request("POST", "/echo", headers: ["Content-Length: 0"]).body.isEmpty)
        #expect(try client.request("POST", "/echo", body: Array("again".utf8)).text == "again")
    }

    /// The same for a route that streams its body: its handler does not start.
    @Test(arguments: [false, true]) func aBodyOverTheLimitIs413AndTheConnectionIsClosed(streamsBody: Bool) throws {
        let handled = Atomic<Int>(0)
        let server = try Server { router in
            router.add(HTTPRoute(.post, "/notes", maxBodyBytes: 1000, streamsBody: streamsBody) { _ in
                handled.add(1, ordering: .relaxed)
                return .text("stored")
            })
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        // The head says more than the limit: refused before any of the body is read.
        try client.send("POST", "/notes", headers: ["Content-Length: 5000"], body: Array(repeating: 0x61, count: 100))
        let answer = try client.response()
        #expect(answer.status == 413)
        #expect(answer.text.contains("at most 1000 bytes"))
        #expect(answer.header("connection")?.lowercased() == "close")
        #expect(client.isClosedByServer())
        // A POST without a length (chunked, which libwebsockets does not decode) is refused too.
        let chunked = try RawHTTPClient(port: server.port)
        let refused = try chunked.request("POST", "/notes", headers: ["Transfer-Encoding: chunked"])
        #expect(refused.status == 411)
        #expect(handled.load(ordering: .relaxed) == 0)
        #expect(try RawHTTPClient(port: server.port).request("POST", "/notes", body: Array("ok".utf8)).text == "stored")
        #expect(eventually { server.transport.httpRequestsInProgress == 0 })
    }

    @Test func aClientGoneMidBodyLeavesTheServerServing() throws {
        let handled = Atomic<Int>(0)
        let server = try Server { router in
            router.post("/upload", maxBodyBytes: 100_000) { request in
                handled.add(1, ordering: .relaxed)
                return .text("\(request.body.count)")
            }
        }
        defer { server.stop() }
        var clients: [RawHTTPClient] = []
        for _ in 0..<20 {
            let client = try RawHTTPClient(port: server.port)
            try client.send("POST", "/upload", headers: ["Content-Length: 50000"], body: Array(repeating: 0x62, count: 1000))
            clients.append(client)
        }
        // Every body is under way, then every client goes.
        #expect(eventually { server.transport.httpRequestsInProgress == 20 })
        clients = []
        #expect(eventually { server.transport.httpRequestsInProgress == 0 })
        #expect(handled.load(ordering: .relaxed) == 0)
        let body = Array(repeating: UInt8(0x63), count: 50_000)
        #expect(try RawHTTPClient(port: server.port).request("POST", "/upload", body: body).text == "50000")
    }

    // MARK: Streamed files

    @Test func aLargeFileIsStreamedByteForByte() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Much bigger than one write (4 KiB) and not a multiple of it.
        var generator = SystemRandomNumberGenerator()
        let content = (0..<(3 * 1024 * 1024 + 4321)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try Data(content).write(to: URL(fileURLWithPath: root + "/big.png"))
        try "<p>home</p>".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
        let server = try Server(staticRoot: root) { _ in }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        let answer = try client.request("GET", "/big.png")
        #expect(answer.status == 200)
        #expect(answer.header("content-type") == "image/png")
        #expect(answer.header("content-length") == String(content.count))
        #expect(answer.body.count == content.count)
        #expect(answer.body == content)
        // HEAD says the same length with no body: the next answer on the connection is intact.
        let head = try client.request("HEAD", "/big.png")
        #expect(head.status == 200 && head.header("content-length") == String(content.count) && head.body.isEmpty)
        #expect(try client.request("GET", "/").text == "<p>home</p>")
    }

    @Test func staticFilesCarryValidatorsAndAnswer304WhenCurrent() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "body{}".write(toFile: root + "/site.css", atomically: true, encoding: .utf8)
        let server = try Server(staticRoot: root) { _ in }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        let first = try client.request("GET", "/site.css")
        let tag = try #require(first.header("etag"))
        let modified = try #require(first.header("last-modified"))
        #expect(first.text == "body{}")
        #expect(modified.hasSuffix(" GMT"))
        let revalidated = try client.request("GET", "/site.css", headers: ["If-None-Match: \(tag)"])
        #expect(revalidated.status == 304)
        #expect(revalidated.header("etag") == tag)
        #expect(revalidated.body.isEmpty)
        #expect(try client.request("GET", "/site.css", headers: ["If-Modified-Since: \(modified)"]).status == 304)
        #expect(try client.request("GET", "/site.css", headers: ["If-None-Match: \"other\""]).text == "body{}")
        // A changed file gets a new tag.
        try "body{color:red}".write(toFile: root + "/site.css", atomically: true, encoding: .utf8)
        let changed = try client.request("GET", "/site.css", headers: ["If-None-Match: \(tag)"])
        #expect(changed.status == 200 && changed.text == "body{color:red}" && changed.header("etag") != tag)
        // Only GET and HEAD reach the files.
        #expect(try client.request("POST", "/site.css", body: Array("x".utf8)).status == 404)
    }

    // MARK: Redirects and async handlers

    /// A page a browser may store can go into its back/forward cache when the user leaves it, and
    /// Chromium keeps such a page's WebSocket open: the hub would never see the user go.
    @Test func htmlPagesAreNeverStoredOtherFilesAreRevalidated() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "<p>console</p>".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
        try "<p>old</p>".write(toFile: root + "/old.htm", atomically: true, encoding: .utf8)
        try "body{}".write(toFile: root + "/site.css", atomically: true, encoding: .utf8)
        try "let x = 1".write(toFile: root + "/page.js", atomically: true, encoding: .utf8)
        let server = try Server(staticRoot: root) { _ in }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        for path in ["/", "/index.html", "/old.htm"] {
            let page = try client.request("GET", path)
            #expect(page.status == 200, "\(path)")
            #expect(page.header("content-type") == "text/html", "\(path)")
            #expect(page.header("cache-control") == "no-store", "\(path)")
            let head = try client.request("HEAD", path)
            #expect(head.header("cache-control") == "no-store", "\(path)")
        }
        let page = try client.request("GET", "/index.html")
        let tag = try #require(page.header("etag"))
        let current = try client.request("GET", "/index.html", headers: ["If-None-Match: \(tag)"])
        #expect(current.status == 304 && current.header("cache-control") == "no-store")
        for path in ["/site.css", "/page.js"] {
            let file = try client.request("GET", path)
            #expect(file.status == 200, "\(path)")
            #expect(file.header("cache-control") == "no-cache", "\(path)")
        }
    }

    @Test func redirectsCarryTheirLocation() throws {
        let server = try Server { router in
            router.get("/old") { _ in .redirect(to: "/new?from=old") }
            router.post("/form", maxBodyBytes: 100) { _ in .redirect(to: "/done", status: 303) }
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        let found = try client.request("GET", "/old")
        #expect(found.status == 302 && found.header("location") == "/new?from=old")
        let seeOther = try client.request("POST", "/form", body: Array("a=1".utf8))
        #expect(seeOther.status == 303 && seeOther.header("location") == "/done")
    }

    @Test func aHandlerThatAwaitsDoesNotHoldUpOthers() throws {
        let gate = Gate()
        let order = Mutex<[String]>([])
        let server = try Server { router in
            router.get("/slow") { _ in
                let opened = await gate.wait()
                try? await Task.sleep(for: .milliseconds(50))
                order.withLock { $0.append("slow") }
                return .text(opened ? "slow done" : "gate never opened")
            }
            router.get("/fast") { _ in
                order.withLock { $0.append("fast") }
                gate.open()
                return .text("fast done")
            }
        }
        defer { server.stop() }
        let slow = try RawHTTPClient(port: server.port)
        try slow.send("GET", "/slow")
        #expect(eventually { gate.waiters == 1 })
        // The slow handler is waiting; another request is served meanwhile and releases it.
        #expect(try RawHTTPClient(port: server.port).request("GET", "/fast").text == "fast done")
        #expect(try slow.response().text == "slow done")
        #expect(order.withLock { $0 } == ["fast", "slow"])
    }

    // MARK: Limits

    @Test func aPeerHoldingTooManyRequestsGets429() throws {
        let gate = Gate()
        let server = try Server(limits: HTTPLimits(maxRequestsPerPeer: 2)) { router in
            router.get("/hold") { _ in .text(await gate.wait() ? "released" : "timeout") }
        }
        defer { server.stop() }
        let first = try RawHTTPClient(port: server.port), second = try RawHTTPClient(port: server.port)
        try first.send("GET", "/hold")
        try second.send("GET", "/hold")
        #expect(eventually { gate.waiters == 2 })
        let third = try RawHTTPClient(port: server.port)
        let refused = try third.request("GET", "/hold")
        #expect(refused.status == 429)
        #expect(refused.header("retry-after") == "1")
        #expect(third.isClosedByServer())
        gate.open()
        #expect(try first.response().text == "released")
        #expect(try second.response().text == "released")
        #expect(eventually { server.transport.httpRequestsInProgress == 0 })
        #expect(try RawHTTPClient(port: server.port).request("GET", "/hold").text == "released")
    }

    @Test func headersOverTheLimitDropTheRequestAndNothingElse() throws {
        let server = try Server(limits: HTTPLimits(maxHeaderBytes: 4096)) { router in
            router.get("/ping") { _ in .text("pong") }
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        try client.send("GET", "/ping", headers: ["Cookie: " + String(repeating: "a", count: 6000)])
        #expect(throws: (any Error).self) { try client.response() }
        #expect(try RawHTTPClient(port: server.port).request("GET", "/ping", headers: ["Cookie: " + String(repeating: "a", count: 2000)]).text == "pong")
    }
}

@Suite("HTTP/2 over TLS", .serialized)
struct HTTP2Tests {
    /// Runs curl over HTTP/2 (ALPN h2); the status, the response headers (lower-case names) and the body.
    func curl(_ arguments: [String]) throws -> (status: Int, headers: [String: String], body: [UInt8]) {
        let directory = NSTemporaryDirectory() + "carehub-curl-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let status = try run("/usr/bin/timeout", ["20", "/usr/bin/curl", "-sk", "--http2", "-D", directory + "/head", "-o", directory + "/body",
                                                  "-w", "%{http_code} %{http_version}"] + arguments).output
        let head = (try? String(contentsOfFile: directory + "/head", encoding: .utf8)) ?? ""
        var headers: [String: String] = [:]
        for line in head.components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = (try? Data(contentsOf: URL(fileURLWithPath: directory + "/body"))).map { [UInt8]($0) } ?? []
        // Every exchange here must have gone over HTTP/2.
        #expect(status.hasSuffix(" 2"), "\(status)")
        return (Int(status.prefix(3)) ?? 0, headers, body)
    }

    @Test func routesBodiesFilesAndRevalidationWorkOverHTTP2() throws {
        let tls = try SelfSignedCertificate()
        defer { tls.remove() }
        let root = NSTemporaryDirectory() + "carehub-h2-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let content = Array((String(repeating: "0123456789abcdef", count: 20_000) + "end").utf8)
        try Data(content).write(to: URL(fileURLWithPath: root + "/big.txt"))
        var router = HTTPRouter()
        router.get("/api/v1/conversations/:id") { .text("id \($0.parameters["id"] ?? "-") q=\($0.queryValue("q") ?? "-")") }
        router.post("/echo", maxBodyBytes: 1000) { HTTPResponse(body: .bytes($0.body)) }
        let harness = Harness {
            $0.tlsCertificatePath = tls.certificate
            $0.tlsPrivateKeyPath = tls.key
            $0.staticRoot = root
            $0.routes = router
        }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let base = "https://127.0.0.1:\(port)"
        let routed = try curl([base + "/api/v1/conversations/9?q=a%20b"])
        #expect(routed.status == 200 && String(decoding: routed.body, as: UTF8.self) == "id 9 q=a b")
        #expect(routed.headers["strict-transport-security"] == "max-age=31536000")
        let echoed = try curl(["--data-binary", "hello body", base + "/echo"])
        #expect(echoed.status == 200 && String(decoding: echoed.body, as: UTF8.self) == "hello body")
        let file = try curl([base + "/big.txt"])
        #expect(file.status == 200 && file.body.count == content.count && file.body == content)
        let tag = try #require(file.headers["etag"])
        #expect(try curl(["-H", "If-None-Match: \(tag)", base + "/big.txt"]).status == 304)
        #expect(try curl([base + "/missing"]).status == 404)
    }
}
