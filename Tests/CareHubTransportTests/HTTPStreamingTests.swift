@testable import CareHubTransport
import Foundation
import Synchronization
import Testing

/// `count` bytes that differ from one position to the next, so that a chunk out of order or
/// lost shows.
func patternedBytes(_ count: Int, seed: UInt32 = 1) -> [UInt8] {
    var state = seed
    return [UInt8](unsafeUninitializedCapacity: count) { bytes, initialized in
        for index in 0..<count {
            state = state &* 1_664_525 &+ 1_013_904_223
            bytes[index] = UInt8(truncatingIfNeeded: state >> 24)
        }
        initialized = count
    }
}

/// Moves a value that is used by one thread at a time to another thread.
struct Handed<Value>: @unchecked Sendable {
    let value: Value
}

/// A streamed response's producer: `content` in chunks of `chunkBytes`, then what `ending` says
/// (nil, as a good producer does, or a failure).
final class ChunkProducer: Sendable {
    struct Failure: Error {}

    let content: [UInt8]
    let chunkBytes: Int
    let failsAtEnd: Bool
    /// Times ``next()`` was called.
    let calls = Atomic<Int>(0)
    private let offset = Mutex(0)

    init(_ content: [UInt8], chunkBytes: Int = 100_003, failsAtEnd: Bool = false) {
        self.content = content
        self.chunkBytes = chunkBytes
        self.failsAtEnd = failsAtEnd
    }

    func next() throws -> [UInt8]? {
        calls.add(1, ordering: .relaxed)
        let range = offset.withLock { offset -> Range<Int> in
            defer { offset = min(offset + chunkBytes, content.count) }
            return offset..<min(offset + chunkBytes, content.count)
        }
        guard range.isEmpty else { return Array(content[range]) }
        if failsAtEnd { throw Failure() }
        return nil
    }

    func body(length: Int? = nil) -> HTTPBody {
        .stream(HTTPStreamBody(length: length ?? content.count) { try self.next() })
    }
}

/// What a handler read of its streamed body: the bytes it checked, whether they matched, and how it ended.
final class UploadRecord: Sendable {
    private struct State {
        var received = 0
        var matched = true
        var error: HTTPBodyError?
        var finished = false
    }

    private let state = Mutex(State())
    var received: Int { state.withLock { $0.received } }
    var matched: Bool { state.withLock { $0.matched } }
    var error: HTTPBodyError? { state.withLock { $0.error } }
    var finished: Bool { state.withLock { $0.finished } }

    /// Reads `stream` to its end, comparing it with `expected` byte for byte; "count ok" or "count differs".
    func read(_ stream: HTTPBodyStream?, expected: [UInt8]) async -> HTTPResponse {
        guard let stream else { return .error(500, "no body stream") }
        do {
            for try await chunk in stream {
                state.withLock { state in
                    let end = state.received + chunk.count
                    state.matched = state.matched && end <= expected.count && expected.withUnsafeBytes { whole in
                        chunk.withUnsafeBytes { memcmp(whole.baseAddress! + state.received, $0.baseAddress!, chunk.count) == 0 }
                    }
                    state.received = end
                }
            }
        } catch {
            state.withLock { $0.error = error }
        }
        return state.withLock { state in
            state.finished = true
            return .text("\(state.received) \(state.matched && state.received == expected.count ? "ok" : "differs")")
        }
    }
}

@Suite("HTTP streamed bodies", .serialized)
struct HTTPStreamingTests {
    typealias Server = HTTPRouterTests.Server

    /// Runs `body` with the base URL of a TLS server (HTTP/2 by ALPN) with the routes `routes` adds.
    func overTLS(_ routes: (inout HTTPRouter) -> Void, _ body: (String) throws -> Void) throws {
        let tls = try SelfSignedCertificate()
        defer { tls.remove() }
        var router = HTTPRouter()
        routes(&router)
        let harness = Harness {
            $0.tlsCertificatePath = tls.certificate
            $0.tlsPrivateKeyPath = tls.key
            $0.routes = router
        }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        try body("https://127.0.0.1:\(port)")
    }

    // MARK: Request bodies

    @Test func aStreamedUploadArrivesWholeAndInOrderOverHTTP1() throws {
        let content = patternedBytes(5 * 1024 * 1024 + 123)
        let sawBody = Atomic<Int>(-1)
        let server = try Server { router in
            router.add(HTTPRoute(.post, "/attachments", maxBodyBytes: 50 << 20, streamsBody: true) { request in
                sawBody.store(request.body.count, ordering: .relaxed)
                return await UploadRecord().read(request.bodyStream, expected: content)
            })
            router.post("/notes") { .text("stream \($0.bodyStream == nil ? "none" : "given") \($0.body.count)") }
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        let answer = try client.request("POST", "/attachments", body: content)
        #expect(answer.status == 200)
        #expect(answer.text == "\(content.count) ok")
        #expect(sawBody.load(ordering: .relaxed) == 0)
        // The connection goes on to the next request; other routes still get their body whole.
        #expect(try client.request("POST", "/notes", body: Array("hi".utf8)).text == "stream none 2")
        #expect(try client.request("POST", "/attachments", headers: ["Content-Length: 0"]).text == "0 differs")
        #expect(eventually { server.transport.httpRequestsInProgress == 0 && server.transport.bufferedRequestBodyBytes == 0 })
    }

    @Test func aStreamedUploadArrivesWholeAndInOrderOverHTTP2() throws {
        let content = patternedBytes(5 * 1024 * 1024 + 77, seed: 7)
        let file = NSTemporaryDirectory() + "carehub-upload-\(UUID().uuidString)"
        try Data(content).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        try overTLS({ router in
            router.add(HTTPRoute(.post, "/attachments", maxBodyBytes: 50 << 20, streamsBody: true) { request in
                await UploadRecord().read(request.bodyStream, expected: content)
            })
        }) { base in
            let answer = try HTTP2Tests().curl(["--data-binary", "@" + file, base + "/attachments"])
            #expect(answer.status == 200)
            #expect(String(decoding: answer.body, as: UTF8.self) == "\(content.count) ok")
        }
    }

    @Test func aHandlerThatDoesNotReadHoldsTheSenderBack() throws {
        let content = patternedBytes(20 * 1024 * 1024, seed: 3)
        let gate = Gate()
        let record = UploadRecord()
        let server = try Server { router in
            router.add(HTTPRoute(.post, "/attachments", maxBodyBytes: 50 << 20, streamsBody: true) { request in
                guard await gate.wait() else { return .error(500, "gate never opened") }
                return await record.read(request.bodyStream, expected: content)
            })
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        let sent = Atomic<Int>(0)
        let done = Atomic<Bool>(false)
        try client.send("POST", "/attachments", headers: ["Content-Length: \(content.count)"])
        let handed = Handed(value: client)
        Thread.detachNewThread {
            var offset = 0
            while offset < content.count {
                let end = min(offset + 65536, content.count)
                guard (try? handed.value.write(Array(content[offset..<end]))) != nil else { break }
                offset = end
                sent.store(offset, ordering: .relaxed)
            }
            done.store(true, ordering: .relaxed)
        }
        // The transport stops reading once it holds its bound for the waiting handler ...
        #expect(eventually { server.transport.requestBodyPauses >= 1 })
        #expect(gate.waiters == 1)
        // ... so the client cannot have written the whole body, and what the transport holds stays bounded.
        let finishedWriting = done.load(ordering: .relaxed), writtenWhileHeld = sent.load(ordering: .relaxed)
        #expect(!finishedWriting)
        #expect(writtenWhileHeld < content.count)
        let bound = HTTPBodyBuffer.pauseBytes + ServiceLoop.httpChunkBytes * 4
        #expect(server.transport.bufferedRequestBodyPeak <= bound)
        gate.open()
        let answer = try client.response()
        #expect(answer.text == "\(content.count) ok")
        #expect(eventually { done.load(ordering: .relaxed) })
        let written = sent.load(ordering: .relaxed)
        #expect(written == content.count)
        // The whole body went through a buffer that never passed the bound, pausing on the way.
        #expect(server.transport.bufferedRequestBodyPeak <= bound)
        #expect(server.transport.requestBodyPauses > 1)
        #expect(eventually { server.transport.bufferedRequestBodyBytes == 0 })
    }

    @Test func anAnswerBeforeTheBodyIsSentAndTheConnectionThenClosed() throws {
        let server = try Server { router in
            router.add(HTTPRoute(.post, "/attachments", maxBodyBytes: 50 << 20, streamsBody: true) { request in
                // The organisation's own limit is lower than the route's.
                .error(413, "Attachments of this organisation are limited to 1 MB")
            })
            router.get("/ping") { _ in .text("pong") }
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        try client.send("POST", "/attachments", headers: ["Content-Length: \(20 << 20)"], body: patternedBytes(512 * 1024))
        let answer = try client.response()
        #expect(answer.status == 413)
        #expect(answer.text.contains("limited to 1 MB"))
        #expect(answer.header("connection")?.lowercased() == "close")
        #expect(client.isClosedByServer())
        #expect(try RawHTTPClient(port: server.port).request("GET", "/ping").text == "pong")
        #expect(eventually { server.transport.httpRequestsInProgress == 0 && server.transport.bufferedRequestBodyBytes == 0 })
    }

    // A declared length over the limit: HTTPRouterTests.aBodyOverTheLimitIs413AndTheConnectionIsClosed(streamsBody: true).

    @Test func aClientGoneMidUploadMakesTheStreamThrowDisconnected() throws {
        let record = UploadRecord()
        let content = patternedBytes(1024 * 1024)
        let server = try Server { router in
            router.add(HTTPRoute(.post, "/attachments", maxBodyBytes: 50 << 20, streamsBody: true) { request in
                await record.read(request.bodyStream, expected: content)
            })
        }
        defer { server.stop() }
        var client: RawHTTPClient? = try RawHTTPClient(port: server.port)
        try #require(client).send("POST", "/attachments", headers: ["Content-Length: \(content.count)"], body: Array(content[..<100_000]))
        #expect(eventually { record.received == 100_000 })
        client = nil
        #expect(eventually { record.finished })
        #expect(record.error == .disconnected)
        #expect(record.matched)
        #expect(eventually { server.transport.httpRequestsInProgress == 0 && server.transport.bufferedRequestBodyBytes == 0 })
    }

    @Test func aStalledUploadMakesTheStreamThrowTimedOut() throws {
        let record = UploadRecord()
        let server = try Server(limits: HTTPLimits(idleSeconds: 1)) { router in
            router.add(HTTPRoute(.post, "/attachments", maxBodyBytes: 50 << 20, streamsBody: true) { request in
                await record.read(request.bodyStream, expected: [])
            })
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        try client.send("POST", "/attachments", headers: ["Content-Length: 1000"], body: Array(repeating: 0x61, count: 10))
        #expect(eventually { record.finished })
        #expect(record.error == .timedOut)
        #expect(record.received == 10)
    }

    // MARK: Response bodies

    @Test func aStreamedResponseArrivesWholeOverHTTP1() throws {
        let content = patternedBytes(5 * 1024 * 1024 + 11, seed: 5)
        let heads = ChunkProducer(content)
        let server = try Server { router in
            router.get("/attachments/:id") { request in
                HTTPResponse(headers: ["Content-Type": "application/pdf"], body: (request.method == .head ? heads : ChunkProducer(content)).body())
            }
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        let answer = try client.request("GET", "/attachments/1")
        #expect(answer.status == 200)
        #expect(answer.header("content-length") == String(content.count))
        #expect(answer.body.count == content.count)
        #expect(answer.body == content)
        // HEAD sends the head alone and never asks the producer; the connection goes on.
        let head = try client.request("HEAD", "/attachments/1")
        #expect(head.status == 200 && head.header("content-length") == String(content.count))
        #expect(heads.calls.load(ordering: .relaxed) == 0)
        #expect(try client.request("GET", "/attachments/2").body == content)
    }

    @Test func aStreamedResponseArrivesWholeOverHTTP2() throws {
        let content = patternedBytes(5 * 1024 * 1024 + 5, seed: 9)
        try overTLS({ router in
            router.get("/attachments/:id") { _ in HTTPResponse(body: ChunkProducer(content, chunkBytes: 70_001).body()) }
        }) { base in
            let answer = try HTTP2Tests().curl([base + "/attachments/1"])
            #expect(answer.status == 200)
            #expect(answer.body.count == content.count)
            #expect(answer.body == content)
        }
    }

    @Test func aThrowingProducerClosesTheConnectionShortOfTheLength() throws {
        let content = patternedBytes(1024 * 1024)
        let declared = 5 * 1024 * 1024
        let server = try Server { router in
            router.get("/attachments/:id") { _ in HTTPResponse(body: ChunkProducer(content, failsAtEnd: true).body(length: declared)) }
        }
        defer { server.stop() }
        let client = try RawHTTPClient(port: server.port)
        try client.send("GET", "/attachments/1")
        let head = try client.readHead()
        #expect(head.lowercased().contains("content-length: \(declared)"))
        let (body, closed) = client.readToEnd()
        #expect(closed)
        #expect(body.count < declared)
        #expect(body == Array(content[..<body.count]))
    }

    @Test func aProducerThatMiscountsClosesTheConnectionShortOfTheLength() throws {
        let content = patternedBytes(1024 * 1024)
        let server = try Server { router in
            // Ends early: 1 MiB of a declared 3 MiB.
            router.get("/short") { _ in HTTPResponse(body: ChunkProducer(content).body(length: 3 * 1024 * 1024)) }
            // Runs over: the fourth chunk of 300,000 bytes passes the declared length.
            router.get("/long") { _ in HTTPResponse(body: ChunkProducer(content, chunkBytes: 300_000).body(length: content.count - 1000)) }
        }
        defer { server.stop() }
        for (path, declared) in [("/short", 3 * 1024 * 1024), ("/long", content.count - 1000)] {
            let client = try RawHTTPClient(port: server.port)
            try client.send("GET", path)
            let head = try client.readHead()
            #expect(head.lowercased().contains("content-length: \(declared)"), "\(path)")
            let (body, closed) = client.readToEnd()
            #expect(closed, "\(path)")
            #expect(body.count < declared, "\(path)")
            #expect(body == Array(content[..<min(body.count, content.count)]), "\(path)")
        }
    }
}
