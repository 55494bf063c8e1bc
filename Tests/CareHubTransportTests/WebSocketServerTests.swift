@testable import CareHubTransport
import Foundation
import Synchronization
import Testing

/// A server whose events are recorded, and which can be told to answer them.
final class Harness: Sendable {
    let events = Mutex<[(ConnectionHandle, WebSocketEvent)]>([])
    let server: Mutex<WebSocketServer?> = Mutex(nil)
    let echo: Bool
    /// With `recordsThreadNames`, the kernel's name of each thread an event arrived on.
    let threadNames = Mutex<Set<String>>([])
    private let recordsThreadNames: Bool
    /// Runs for every event after it is recorded, on the service thread.
    private let react: @Sendable (WebSocketServer, ConnectionHandle, WebSocketEvent) -> Void

    init(
        echo: Bool = true, recordsThreadNames: Bool = false, configure: (inout WebSocketServer.Configuration) -> Void = { _ in },
        react: @escaping @Sendable (WebSocketServer, ConnectionHandle, WebSocketEvent) -> Void = { _, _, _ in }
    ) {
        self.echo = echo
        self.recordsThreadNames = recordsThreadNames
        self.react = react
        var configuration = WebSocketServer.Configuration(host: "127.0.0.1", port: 0, maxMessageBytes: 1024)
        configure(&configuration)
        let server = WebSocketServer(configuration: configuration) { [weak self] handle, event in
            self?.record(handle, event)
        }
        self.server.withLock { $0 = server }
    }

    var transport: WebSocketServer { server.withLock { $0! } }

    private func record(_ handle: ConnectionHandle, _ event: WebSocketEvent) {
        if recordsThreadNames {
            let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
            threadNames.withLock { _ = $0.insert(name.trimmingCharacters(in: .newlines)) }
        }
        events.withLock { $0.append((handle, event)) }
        react(transport, handle, event)
        if echo, case .text(let bytes) = event {
            transport.send("echo:" + String(decoding: bytes, as: UTF8.self), to: handle)
        }
    }

    /// Waits (up to a hang guard, never as a timing assertion) until `predicate` holds.
    func wait(until predicate: ([(ConnectionHandle, WebSocketEvent)]) -> Bool) -> Bool {
        for _ in 0..<2000 {
            if events.withLock({ predicate($0) }) { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    func eventKinds() -> [WebSocketEvent] { events.withLock { $0.map(\.1) } }
}

@Suite("libwebsockets transport", .serialized)
struct WebSocketServerTests {
    @Test func echoesTextAndReportsOpenMessageClose() throws {
        let harness = Harness()
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        #expect(port > 0)
        do {
            let client = try RawWebSocketClient(port: port)
            #expect(try client.upgrade().hasPrefix("HTTP/1.1 101"))
            try client.send(text: "hello ✓")
            #expect(try client.receive() == .text("echo:hello ✓"))
            #expect(harness.transport.connectionCount == 1)
        }
        #expect(harness.wait { $0.contains { $0.1 == .closed } })
        let kinds = harness.eventKinds()
        #expect(kinds.count == 3)
        if case .opened(let info) = kinds.first { #expect(info.peer == "127.0.0.1") } else { Issue.record("first event \(kinds)") }
        #expect(Array(kinds.dropFirst()) == [.text(Array("hello ✓".utf8)), .closed])
        #expect(harness.transport.connectionCount == 0)
    }

    @Test func eventsArriveOnTheNamedServiceThread() throws {
        let harness = Harness(echo: false, recordsThreadNames: true)
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let client = try RawWebSocketClient(port: port)
        try client.upgrade()
        try client.send(text: "ping")
        #expect(harness.wait { $0.count >= 2 })
        #expect(harness.threadNames.withLock { $0 } == ["carehub-lws"])
    }

    @Test func fragmentsAreJoinedIntoOneMessage() throws {
        let harness = Harness()
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let client = try RawWebSocketClient(port: port)
        try client.upgrade()
        try client.send(fragments: ["{\"type\":", "\"rooms\"", "}"])
        #expect(try client.receive() == .text("echo:{\"type\":\"rooms\"}"))
    }

    @Test func oversizedAndBinaryMessagesAreReportedAndTheConnectionLives() throws {
        let harness = Harness()
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let client = try RawWebSocketClient(port: port)
        try client.upgrade()
        try client.send(text: String(repeating: "x", count: 5000))
        try client.send(binary: [0, 1, 2])
        try client.send(fragments: [String(repeating: "y", count: 800), String(repeating: "z", count: 800)])
        try client.send(text: "still here")
        #expect(try client.receive() == .text("echo:still here"))
        let kinds = harness.eventKinds()
        #expect(kinds.contains(.oversized(byteCount: 5000)))
        #expect(kinds.contains(.oversized(byteCount: 1600)))
        #expect(kinds.contains(.binary))
    }

    @Test func manyMessagesArriveInOrder() throws {
        let harness = Harness(echo: false)
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let (client, handle) = try oneConnection(harness, port: port)
        for index in 0..<2000 { harness.transport.send("m\(index)", to: handle) }
        for index in 0..<2000 {
            guard try client.receive() == .text("m\(index)") else {
                Issue.record("message \(index) out of order")
                return
            }
        }
    }

    @Test func onlyTheConfiguredPathUpgrades() throws {
        let harness = Harness()
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let client = try RawWebSocketClient(port: port)
        // Refused: either an HTTP error status or the connection is dropped, never a 101.
        let head = try? client.upgrade(path: "/elsewhere")
        #expect(head?.hasPrefix("HTTP/1.1 101") != true)
        #expect(harness.eventKinds().isEmpty)
        #expect(try RawWebSocketClient(port: port).upgrade(path: "/ws").hasPrefix("HTTP/1.1 101"))
    }

    @Test func servesStaticFilesWithSecurityHeaders() throws {
        let root = NSTemporaryDirectory() + "carehub-web-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "<h1>front page</h1>".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
        try "body{}".write(toFile: root + "/site.css", atomically: true, encoding: .utf8)
        let harness = Harness { $0.staticRoot = root }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }

        let index = try RawWebSocketClient(port: port).get("/")
        #expect(index.head.hasPrefix("HTTP/1.1 200"))
        #expect(index.body == "<h1>front page</h1>")
        #expect(index.head.lowercased().contains("content-security-policy:"))
        let css = try RawWebSocketClient(port: port).get("/site.css")
        #expect(css.head.lowercased().contains("content-type: text/css"))
        let missing = try RawWebSocketClient(port: port).get("/nothing.html")
        #expect(missing.head.hasPrefix("HTTP/1.1 404"))
        // The WebSocket path still upgrades next to the files.
        #expect(try RawWebSocketClient(port: port).upgrade().hasPrefix("HTTP/1.1 101"))
    }

    @Test func theToolClientTalksToTheServer() throws {
        let harness = Harness()
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let client = try WebSocketClient(host: "127.0.0.1", port: port)
        let long = String(repeating: "é", count: 300)  // a 16-bit length header
        try client.send("first")
        try client.send(long)
        var received: [String] = []
        for _ in 0..<2000 where received.count < 2 {
            _ = try client.fill()
            while let text = client.nextText() { received.append(text) }
            if received.count < 2 { Thread.sleep(forTimeInterval: 0.005) }
        }
        #expect(received == ["echo:first", "echo:" + long])
        #expect(throws: WebSocketClient.Failure.self) { try WebSocketClient(host: "127.0.0.1", port: port, path: "/nope") }
    }

    @Test func textRoutesAnswerNextToStaticFiles() throws {
        let root = NSTemporaryDirectory() + "carehub-web-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "<p>home</p>".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
        let counter = Mutex(0)
        let harness = Harness {
            $0.staticRoot = root
            $0.textRoutes = ["/metrics": { "requests \(counter.withLock { value -> Int in value += 1; return value })\n" }]
        }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let first = try RawWebSocketClient(port: port).get("/metrics")
        #expect(first.head.hasPrefix("HTTP/1.1 200"))
        #expect(first.head.lowercased().contains("content-type: text/plain"))
        #expect(first.body == "requests 1\n")
        #expect(try RawWebSocketClient(port: port).get("/metrics").body == "requests 2\n")
        #expect(try RawWebSocketClient(port: port).get("/").body == "<p>home</p>")
    }

    /// Several frames go out per write turn, but never more than the socket takes: a reader
    /// that falls behind by megabytes still gets every frame, whole and in order.
    @Test func aSlowReaderGetsEveryFrameInOrderUnderBackPressure() throws {
        let harness = Harness(echo: false)
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let (client, handle) = try oneConnection(harness, port: port)
        let padding = String(repeating: "x", count: 8 * 1024)
        for index in 0..<400 { harness.transport.send("\(index):\(padding)", to: handle) }
        // Nothing is read until all 3.2 MB are queued: the socket's buffers fill and writes stop.
        Thread.sleep(forTimeInterval: 0.2)
        for index in 0..<400 {
            guard try client.receive() == .text("\(index):\(padding)") else {
                Issue.record("frame \(index) missing, cut or out of order")
                return
            }
        }
    }

    @Test func shutdownFlushesQueuedMessagesThenClosesWithGoingAway() throws {
        let harness = Harness(echo: false)
        let port = try harness.transport.start()
        let client = try RawWebSocketClient(port: port)
        try client.upgrade()
        #expect(harness.wait { $0.count == 1 })
        let handle = harness.events.withLock { $0[0].0 }
        for index in 0..<100 { harness.transport.send("last words \(index)", to: handle) }
        harness.transport.shutdown(drainTimeout: .seconds(5))
        for index in 0..<100 { #expect(try client.receive() == .text("last words \(index)")) }
        #expect(try client.receive() == .close(code: 1001))
        #expect(harness.eventKinds().last == .closed)
        #expect(throws: (any Error).self) { try RawWebSocketClient(port: port).upgrade() }
    }

    @Test func moreThanAThousandConnectionsAreServedAndReportedReady() throws {
        // Descriptors past 1,024: neither the server's event loop nor the tools' ReadinessSet may
        // be bound to select()'s limit, and every connection must be answered.
        let openFiles = raiseOpenFileLimit()
        let count = 1_200
        try #require(openFiles >= 2 * rlim_t(count) + 200, "the open-file limit is too low for this test")
        let harness = Harness()
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let clients = try (0..<count).map { _ in try WebSocketClient(host: "127.0.0.1", port: port) }
        #expect(clients.map(\.fd).max()! > 1_024)
        let readiness = try ReadinessSet(capacity: 64)
        for (index, client) in clients.enumerated() {
            try readiness.add(client.fd, tag: index)
            try client.send("n\(index)")
        }
        var received = [String?](repeating: nil, count: count)
        var missing = count
        for _ in 0..<4_000 where missing > 0 {
            readiness.wait(milliseconds: 5) { index in
                _ = try? clients[index].fill()
                while let text = clients[index].nextText() {
                    if received[index] == nil { missing -= 1 }
                    received[index] = text
                }
            }
        }
        #expect(received == (0..<count).map { "echo:n\($0)" })
        #expect(harness.transport.connectionCount == count)
    }

    /// One upgraded client and its handle on the server.
    func oneConnection(_ harness: Harness, port: Int) throws -> (RawWebSocketClient, ConnectionHandle) {
        let client = try RawWebSocketClient(port: port)
        try client.upgrade()
        #expect(harness.wait { $0.count == 1 })
        return (client, harness.events.withLock { $0[0].0 })
    }

    /// Two upgraded clients and their handles on the server, in order.
    func twoConnections(_ harness: Harness, port: Int) throws -> (RawWebSocketClient, RawWebSocketClient, [ConnectionHandle]) {
        let first = try RawWebSocketClient(port: port)
        try first.upgrade()
        let second = try RawWebSocketClient(port: port)
        try second.upgrade()
        #expect(harness.wait { $0.count == 2 })
        return (first, second, harness.events.withLock { $0.map(\.0) })
    }

    @Test func closeEndsOneConnectionAfterItsQueuedMessages() throws {
        let harness = Harness(echo: false)
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let (first, second, handles) = try twoConnections(harness, port: port)
        harness.transport.send("bye", to: handles[0])
        harness.transport.close(handles[0], code: 4000)
        #expect(try first.receive() == .text("bye"))
        #expect(try first.receive() == .close(code: 4000))
        harness.transport.send("you stay", to: handles[1])
        #expect(try second.receive() == .text("you stay"))
    }

    @Test func aBatchOfMessagesToSeveralConnectionsArrivesInOrder() throws {
        let harness = Harness(echo: false)
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let (first, second, handles) = try twoConnections(harness, port: port)
        harness.transport.send([("a1", handles[0]), ("b1", handles[1]), ("a2", handles[0]), ("a3", handles[0]), ("b2", handles[1])])
        harness.transport.send([])
        #expect(try [first.receive(), first.receive(), first.receive()] == [.text("a1"), .text("a2"), .text("a3")])
        #expect(try [second.receive(), second.receive()] == [.text("b1"), .text("b2")])
    }

    @Test func badConfigurationAndBusyPortsAreClearErrors() throws {
        let missing = Harness { $0.staticRoot = "/no/such/dir" }
        #expect(throws: TransportError.invalidConfiguration("static directory /no/such/dir does not exist")) { try missing.transport.start() }
        let halfTLS = Harness { $0.tlsCertificatePath = "/etc/hostname" }
        #expect(throws: TransportError.invalidConfiguration("TLS needs both a certificate and a private key")) { try halfTLS.transport.start() }

        let first = Harness()
        let port = try first.transport.start()
        defer { first.transport.shutdown(drainTimeout: .seconds(1)) }
        let second = Harness { $0.port = port }
        #expect(throws: TransportError.self) { try second.transport.start() }
    }
}
