@testable import CareHubTransport
import Foundation
import Synchronization
import Testing

/// The send queue's bound and the pause of reading, over real sockets.
extension WebSocketServerTests {
    /// A client that never reads while the server sends is closed with 4001 and its reason once
    /// its queue passes the limit: it gets whole frames in order up to the close, its queue is
    /// dropped and counted, and another connection is served as before.
    @Test func aReaderThatNeverReadsIsClosedWithTheSlowReaderCode() throws {
        let limit = 64 * 1024
        let harness = Harness(echo: false) { $0.maxSendQueueBytes = limit }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let (slow, fast, handles) = try twoConnections(harness, port: port)
        let padding = String(repeating: "x", count: 16 * 1024)
        // Two frames at a time stay under the limit; only frames piling up behind a socket that
        // is not read pass it. 64 MiB at most, far more than loopback's socket buffers take.
        var sent = 0
        while harness.transport.slowReaderCloses == 0 && sent < 4096 {
            harness.transport.send([("\(sent):\(padding)", handles[0]), ("\(sent + 1):\(padding)", handles[0])])
            sent += 2
            Thread.sleep(forTimeInterval: 0.002)
        }
        try #require(eventually { harness.transport.slowReaderCloses == 1 }, "the reader was never closed")

        var received: [Int] = []
        var whole = true
        var last: RawWebSocketClient.Frame?
        while last == nil {
            switch try slow.receive() {
            case .text(let text):
                let parts = text.split(separator: ":", maxSplits: 1)
                received.append(Int(parts[0]) ?? -1)
                whole = whole && parts.count == 2 && parts[1] == padding
            case let other:
                last = other
            }
        }
        #expect(last == .close(code: WebSocketServer.slowReaderCloseCode, reason: WebSocketServer.slowReaderCloseReason))
        #expect(received == Array(0..<received.count))
        #expect(whole)
        #expect(received.count < sent)
        #expect(harness.wait { $0.contains { $0.0 == handles[0] && $0.1 == .closed } })

        harness.transport.send("still served", to: handles[1])
        #expect(try fast.receive() == .text("still served"))
        #expect(eventually { harness.transport.sendQueueBytes == 0 })
        #expect(harness.transport.slowReaderCloses == 1)
    }

    /// A reader that keeps up is never closed, however much goes through, when each burst stays
    /// under the limit.
    @Test func aReaderThatKeepsUpIsNeverClosed() throws {
        let harness = Harness(echo: false) { $0.maxSendQueueBytes = 64 * 1024 }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let (client, handle) = try oneConnection(harness, port: port)
        let padding = String(repeating: "y", count: 8 * 1024)
        for index in 0..<400 {
            harness.transport.send("\(index):\(padding)", to: handle)
            #expect(try client.receive() == .text("\(index):\(padding)"))
        }
        #expect(harness.transport.slowReaderCloses == 0)
    }

    /// Paused from the event handler, a connection reports no further message until it is
    /// resumed, even when the rest were read from the socket in the same read; resumed, every
    /// message follows in order.
    @Test func aPauseFromTheHandlerHoldsBackTheNextMessageUntilResumed() throws {
        let harness = Harness(echo: false) { _ in } react: { server, handle, event in
            if case .text = event { server.pauseReceiving(handle) }
        }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let (client, handle) = try oneConnection(harness, port: port)
        let count = 50
        for index in 0..<count { try client.send(text: "m\(index)") }

        func texts() -> [String] {
            harness.eventKinds().compactMap { if case .text(let bytes) = $0 { String(decoding: bytes, as: UTF8.self) } else { nil } }
        }
        var seenAtEachPause: [Int] = []
        for expected in 1...count {
            try #require(eventually { texts().count >= expected }, "message \(expected) never came")
            // Paused after the message just reported: nothing more may have come.
            seenAtEachPause.append(texts().count)
            harness.transport.resumeReceiving(handle)
        }
        #expect(seenAtEachPause == Array(1...count))
        #expect(texts() == (0..<count).map { "m\($0)" })
    }
}

extension WebSocketServerTests {
    /// A client that never reads at all is not held open: once over the limit its connection is
    /// closed and reported closed, without it reading a byte.
    @Test func aReaderThatNeverReadsAtAllIsClosedAndReportedClosed() throws {
        let harness = Harness(echo: false) { $0.maxSendQueueBytes = 64 * 1024 }
        let port = try harness.transport.start()
        defer { harness.transport.shutdown(drainTimeout: .seconds(1)) }
        let (client, handle) = try oneConnection(harness, port: port)
        let padding = String(repeating: "z", count: 16 * 1024)
        var sent = 0
        while harness.transport.slowReaderCloses == 0 && sent < 4096 {
            harness.transport.send([("\(sent):\(padding)", handle), ("\(sent + 1):\(padding)", handle)])
            sent += 2
            Thread.sleep(forTimeInterval: 0.002)
        }
        #expect(eventually { harness.transport.slowReaderCloses == 1 })
        #expect(eventually { harness.eventKinds().last == .closed })
        #expect(harness.transport.connectionCount == 0)
        #expect(eventually { harness.transport.sendQueueBytes == 0 })
        withExtendedLifetime(client) {}
    }
}
