import CareHubTransport
import Dispatch
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A one-connection HTTP server on a raw socket: it reads one request (head and, by its
/// Content-Length, body), then answers as told, byte for byte.
final class RawHTTPPeer: Sendable {
    /// What the server does once it has read the request (or, for ``answerAnything(_:)``, any bytes).
    enum Behaviour: Sendable {
        /// Writes these bytes, then closes.
        case respond([UInt8])
        /// Writes nothing and keeps the connection open until the client closes it, or for
        /// `seconds` at most.
        case silence(seconds: Int)
        /// Reads whatever arrives first, writes these bytes, then closes (a peer that does not
        /// speak the client's protocol).
        case answerAnything([UInt8])
    }

    /// The request as it arrived.
    struct Received: Sendable {
        let head: String
        let body: [UInt8]

        var requestLine: String { head.components(separatedBy: "\r\n").first ?? "" }

        /// A header's value, by case-insensitive name.
        func header(_ name: String) -> String? {
            for line in head.components(separatedBy: "\r\n").dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                if line[..<colon].lowercased() == name.lowercased() {
                    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            return nil
        }
    }

    let port: Int
    private let listener: Int32
    private let received = Mutex<Received?>(nil)
    private let closedByClient = Mutex<Bool?>(nil)
    private let read = DispatchSemaphore(value: 0)

    init(_ behaviour: Behaviour) throws {
        (listener, port) = try Self.listen()
        DispatchQueue.global().async { [self] in
            serve(behaviour)
            read.signal()
        }
    }

    deinit { close(listener) }

    /// The request the server read, once it has read it or given up (waits up to ten seconds: a
    /// hang guard).
    func request() async -> Received? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { [self] in
                let arrived = read.wait(timeout: .now() + 10) == .success
                if arrived { read.signal() }  // for the next caller
                continuation.resume(returning: arrived ? received.withLock { $0 } : nil)
            }
        }
    }

    /// For ``Behaviour/silence(seconds:)``: whether the client closed the connection before the
    /// server gave up on it (nil until one of them did).
    var clientClosedFirst: Bool? { closedByClient.withLock { $0 } }

    /// A port on 127.0.0.1 that nothing listens on: bound, then closed again.
    static func closedPort() throws -> Int {
        let (socket, port) = try listen()
        close(socket)
        return port
    }

    private static func listen() throws -> (Int32, Int) {
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(listening, pointer, length) == 0 && Glibc.listen(listening, 4) == 0 && getsockname(listening, pointer, &length) == 0
            }
        }
        guard bound else {
            close(listening)
            throw RawWebSocketClient.Failure(description: "test server: cannot listen")
        }
        return (listening, Int(UInt16(bigEndian: address.sin_port)))
    }

    private func serve(_ behaviour: Behaviour) {
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else {
            Issue.record("test server: accept() failed: \(errno)")
            return
        }
        defer { close(fd) }
        // A hang guard for every read: the client under test may never send.
        var time = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var buffer: [UInt8] = []
        var sawEnd = false
        func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 16384)
            let count = recv(fd, &chunk, chunk.count, 0)
            sawEnd = count == 0
            guard count > 0 else { return false }
            buffer += chunk[..<count]
            return true
        }

        if case .answerAnything(let bytes) = behaviour {
            _ = fill()
            write(fd, bytes)
            return
        }
        let separator = Array("\r\n\r\n".utf8)
        // A request that never completes leaves `request()` nil, which the tests require.
        while buffer.firstRange(of: separator) == nil { guard fill() else { return } }
        let end = buffer.firstRange(of: separator)!.upperBound
        let head = String(decoding: buffer[..<(end - separator.count)], as: UTF8.self)
        var request = Received(head: head, body: [])
        let length = request.header("Content-Length").flatMap { Int($0) } ?? 0
        while buffer.count - end < length { guard fill() else { break } }
        request = Received(head: head, body: Array(buffer[end...]))
        received.withLock { $0 = request }
        read.signal()

        switch behaviour {
        case .respond(let bytes):
            write(fd, bytes)
        case .silence(let seconds):
            time.tv_sec = seconds
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
            while fill() {}
            closedByClient.withLock { $0 = sawEnd }
        case .answerAnything:
            break
        }
    }

    private func write(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return }
            offset += sent
        }
    }
}

/// Polls `condition` until it holds; gives up after ten seconds (a hang guard, never a timing
/// assertion) with an issue naming `what`.
func waitUntil(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool) async throws {
    for _ in 0..<10_000 where !condition() {
        try await Task.sleep(for: .milliseconds(1))
    }
    try #require(condition(), "never happened: \(what)", sourceLocation: sourceLocation)
}

/// A complete response with a Content-Length body.
func response(_ status: String, body: String = "", headers: [String] = []) -> [UInt8] {
    let lines = ["HTTP/1.1 \(status)", "Content-Length: \(body.utf8.count)", "Connection: close"] + headers
    return Array((lines.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
}

@Suite("HTTP client")
struct HTTPClientTests {
    let json = Array(#"{"event":"conversation.ended","room":"c_1"}"#.utf8)

    @Test func aPostCarriesItsPathTypeLengthAndBodyAndReturnsTheStatus() async throws {
        let peer = try RawHTTPPeer(.respond(response("200 OK", body: #"{"ok":true}"#, headers: ["Content-Type: application/json"])))
        let client = try HTTPClient(caFile: nil)
        let status = try await client.post(host: "127.0.0.1", port: peer.port, path: "/hooks/end?x=1", tls: false, body: json, contentType: "application/json")
        #expect(status == 200)
        let request = try #require(await peer.request())
        #expect(request.requestLine == "POST /hooks/end?x=1 HTTP/1.1")
        #expect(request.header("Host")?.hasPrefix("127.0.0.1") == true)
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.header("Content-Length") == String(json.count))
        #expect(request.body == json)
    }

    @Test(arguments: ["201 Created", "204 No Content", "304 Not Modified", "404 Not Found", "429 Too Many Requests", "500 Internal Server Error", "503 Service Unavailable"])
    func anyStatusIsReturnedNotThrown(_ status: String) async throws {
        let body = status.hasPrefix("204") || status.hasPrefix("304") ? "" : "nope"
        let peer = try RawHTTPPeer(.respond(response(status, body: body)))
        let client = try HTTPClient(caFile: nil)
        let code = try await client.post(host: "127.0.0.1", port: peer.port, path: "/", tls: false, body: json, contentType: "application/json")
        #expect(code == Int(status.prefix(3)))
        #expect(await peer.request()?.body == json)
    }

    @Test func aRedirectIsReturnedNotFollowed() async throws {
        // A webhook's URL is the one its agreement covers; a redirect must not carry the post
        // anywhere else.
        let elsewhere = try RawHTTPPeer.closedPort()
        let peer = try RawHTTPPeer(.respond(response("307 Temporary Redirect", headers: ["Location: http://127.0.0.1:\(elsewhere)/elsewhere"])))
        let client = try HTTPClient(caFile: nil, timeoutSeconds: 3)
        let code = try await client.post(host: "127.0.0.1", port: peer.port, path: "/", tls: false, body: json, contentType: "application/json")
        #expect(code == 307)
        #expect(await peer.request()?.body == json)
    }

    @Test func aChunkedResponseAndALargeBodyBothWork() async throws {
        let chunk = String(repeating: "x", count: 5000)
        let chunked = "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + "\(String(chunk.utf8.count, radix: 16))\r\n\(chunk)\r\n" + "0\r\n\r\n"
        let peer = try RawHTTPPeer(.respond(Array(chunked.utf8)))
        let client = try HTTPClient(caFile: nil)
        let large = [UInt8]((0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
        let status = try await client.post(host: "127.0.0.1", port: peer.port, path: "/export", tls: false, body: large, contentType: "application/octet-stream")
        #expect(status == 202)
        let request = try #require(await peer.request())
        #expect(request.header("Content-Length") == "300000")
        #expect(request.body == large)
    }

    @Test func aRefusedConnectionThrows() async throws {
        let port = try RawHTTPPeer.closedPort()
        let client = try HTTPClient(caFile: nil)
        await #expect(throws: HTTPClient.Failure.self) {
            try await client.post(host: "127.0.0.1", port: port, path: "/", tls: false, body: json, contentType: "application/json")
        }
    }

    @Test func aServerThatNeverAnswersTimesOut() async throws {
        // The server waits eight times longer than the client's timeout: the client must be the
        // one to give up.
        let peer = try RawHTTPPeer(.silence(seconds: 8))
        let client = try HTTPClient(caFile: nil, timeoutSeconds: 1)
        await #expect(throws: HTTPClient.Failure.self) {
            try await client.post(host: "127.0.0.1", port: peer.port, path: "/", tls: false, body: json, contentType: "application/json")
        }
        // The request was sent in full before the client gave up.
        #expect(await peer.request()?.body == json)
        try await waitUntil("the connection is closed") { peer.clientClosedFirst != nil }
        #expect(peer.clientClosedFirst == true, "the server gave up first: the client did not time out")
    }

    @Test(arguments: ["", "HTTP/1.1 200 OK\r\nContent-Le"])
    func aConnectionClosedBeforeTheStatusAndHeadersThrows(_ partial: String) async throws {
        let peer = try RawHTTPPeer(.respond(Array(partial.utf8)))
        let client = try HTTPClient(caFile: nil, timeoutSeconds: 5)
        await #expect(throws: HTTPClient.Failure.self) {
            try await client.post(host: "127.0.0.1", port: peer.port, path: "/", tls: false, body: json, contentType: "application/json")
        }
    }

    @Test func tlsToAServerThatDoesNotSpeakItThrows() async throws {
        let peer = try RawHTTPPeer(.answerAnything(response("400 Bad Request", body: "plain HTTP here")))
        let client = try HTTPClient(caFile: nil, timeoutSeconds: 5)
        await #expect(throws: HTTPClient.Failure.self) {
            try await client.post(host: "127.0.0.1", port: peer.port, path: "/", tls: true, body: json, contentType: "application/json")
        }
    }

    @Test func requestsInFlightTogetherEachGetTheirOwnStatus() async throws {
        let peers = try [200, 404, 500].map { try RawHTTPPeer(.respond(response("\($0) Status", body: "b"))) }
        let client = try HTTPClient(caFile: nil)
        let statuses = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for (index, peer) in peers.enumerated() {
                group.addTask {
                    (index, try await client.post(host: "127.0.0.1", port: peer.port, path: "/\(index)", tls: false, body: [UInt8(index)], contentType: "text/plain"))
                }
            }
            return try await group.reduce(into: [Int: Int]()) { $0[$1.0] = $1.1 }
        }
        #expect(statuses == [0: 200, 1: 404, 2: 500])
        var lines: [String?] = []
        for peer in peers { lines.append(await peer.request()?.requestLine) }
        #expect(lines == ["POST /0 HTTP/1.1", "POST /1 HTTP/1.1", "POST /2 HTTP/1.1"])
    }

    @Test func aStoppedClientFailsRequestsInsteadOfHanging() async throws {
        let peer = try RawHTTPPeer(.silence(seconds: 10))
        let client = try HTTPClient(caFile: nil, timeoutSeconds: 30)
        // One request in flight when the client stops, and one after.
        let inFlight = Task { [json] in
            try await client.post(host: "127.0.0.1", port: peer.port, path: "/", tls: false, body: json, contentType: "application/json")
        }
        _ = await peer.request()  // the server has read it (and, once the client closes, lets go)
        client.shutdown()
        await #expect(throws: HTTPClient.Failure.self) { try await inFlight.value }
        await #expect(throws: HTTPClient.Failure.self) {
            try await client.post(host: "127.0.0.1", port: peer.port, path: "/", tls: false, body: json, contentType: "application/json")
        }
    }
}
