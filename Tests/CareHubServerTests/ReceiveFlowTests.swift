@testable import CareHubServer
@testable import CareHubStorage
import CareHubTransport
import Dispatch
import Foundation
import GRDB
import Synchronization
import Testing

/// Waits (up to a hang guard, never as a timing assertion) until `condition` holds.
private func eventually(_ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// A client on a thread of its own that sends `frames` as fast as its socket takes them, then
/// keeps the connection open until ``finish()``: once the server stops reading, TCP holds the
/// writes back, as it would a flooding client.
private final class Flooder: Sendable {
    private let release = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    let failure = Mutex<String?>(nil)

    init(port: Int, frames: [String]) {
        Thread { [self] in
            do {
                let client = try WebSocketClient(host: "127.0.0.1", port: port)
                for frame in frames { try client.send(frame) }
                release.wait()
            } catch {
                failure.withLock { $0 = "\(error)" }
                release.wait()
            }
            done.signal()
        }.start()
    }

    func finish() {
        release.signal()
        done.wait()
    }
}

@Suite("receive flow control", .serialized)
struct ReceiveFlowTests {
    /// A client that floods faster than its frames are handled is paused once its inbox is full,
    /// the inbox never holds more than its bound, and after the resume every frame is handled, in
    /// the order sent.
    @Test func aFloodingClientIsPausedAndEveryFrameIsHandledInOrder() async throws {
        let limits = InboxLimits(maxFrames: 8, maxBytes: 1 << 20, resumeFrames: 2, resumeBytes: 1 << 18)
        let open = Atomic<Bool>(false)
        let handled = Mutex<[Int]>([])
        let flows = Mutex<[Bool]>([])
        let inboxSlot = Mutex<ConnectionInbox?>(nil)
        let serverSlot = Mutex<WebSocketServer?>(nil)
        let server = WebSocketServer(configuration: WebSocketServer.Configuration(host: "127.0.0.1", port: 0)) { handle, event in
            switch event {
            case .opened:
                let inbox = ConnectionInbox(
                    limits: limits,
                    handler: { item in
                        // The handler is held until the test has seen the pause.
                        while !open.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(2)) }
                        if case .text(let bytes) = item { handled.withLock { $0.append(Int(String(decoding: bytes, as: UTF8.self)) ?? -1) } }
                    },
                    finisher: {},
                    flow: { receiving in
                        flows.withLock { $0.append(receiving) }
                        let server = serverSlot.withLock { $0 }
                        if receiving { server?.resumeReceiving(handle) } else { server?.pauseReceiving(handle) }
                    })
                inboxSlot.withLock { $0 = inbox }
            case .text(let bytes):
                inboxSlot.withLock { $0 }?.push(.text(bytes))
            case .closed:
                inboxSlot.withLock { $0 }?.close()
            default:
                break
            }
        }
        serverSlot.withLock { $0 = server }
        let port = try server.start()
        defer { server.shutdown(drainTimeout: .seconds(1)) }

        let count = 2000
        let flooder = Flooder(port: port, frames: (0..<count).map { "\($0)" })
        #expect(await eventually { flows.withLock { $0 } == [false] }, "the connection was never paused")
        let inbox = try #require(inboxSlot.withLock { $0 })
        #expect(inbox.isPaused)
        #expect(inbox.depth <= limits.maxFrames)

        open.store(true, ordering: .releasing)
        #expect(await eventually { handled.withLock { $0.count } == count }, "not every frame was handled")
        flooder.finish()
        #expect(flooder.failure.withLock { $0 } == nil)
        #expect(handled.withLock { $0 } == Array(0..<count))
        #expect(inbox.highWaterFrames <= limits.maxFrames)
        let changes = flows.withLock { $0 }
        // Pauses and resumes alternate, starting with a pause and ending resumed.
        #expect(!changes.isEmpty && changes == (0..<changes.count).map { $0 % 2 == 1 })
        #expect(!inbox.isPaused)
    }

    static let floodConfig = """
        [org clinic]
        name = Test Clinic
        hipaa = off
        limits messages_per_second=100000 message_burst=100000
        stage auth visitors=on twofactor=optional
        stage store history=50
        stage fanout notify=none
        """

    /// The hub over real sockets: a visitor's burst of messages while every commit waits fills
    /// its inbox, the hub pauses reading it (and /metrics says so), and once commits go on every
    /// message is acknowledged in the order sent.
    @Test func theHubPausesAFloodingVisitorAndAcknowledgesEveryMessageInOrder() async throws {
        let limits = InboxLimits(maxFrames: 4, maxBytes: 1 << 20, resumeFrames: 1, resumeBytes: 1 << 18)
        let harness = try HubHarness(config: Self.floodConfig, sockets: true) { $0.inboxLimits = limits }
        let port = try harness.hub.start()
        let client = try WebSocketClient(host: "127.0.0.1", port: port)
        try client.send(#"{"type":"hello","org":"clinic","id":"h"}"#)
        let welcome = try await next(client)
        let room = try #require(welcome["conversation"] as? String, "\(welcome)")

        // Hold the database's only writer, as a slow commit would: every message waits in turn.
        let release = DispatchSemaphore(value: 0)
        let database = harness.hub.database
        await withCheckedContinuation { (held: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                try? database.pool.write { _ in
                    held.resume()
                    release.wait()
                }
            }
        }
        let count = 200
        for index in 0..<count { try client.send(#"{"type":"send","room":"\#(room)","text":"message \#(index)","id":"m\#(index)"}"#) }
        let paused = await eventually { harness.hub.renderMetrics().contains("carehub_connections_receive_paused 1\n") }
        release.signal()
        #expect(paused, "the visitor's reading was never paused")
        let inbox = try #require(harness.hub.registry.allInboxes().first)
        #expect(inbox.depth <= limits.maxFrames)

        var acks: [[String: Any]] = []
        while acks.count < count {
            // The visitor's place in the queue may come in between; every other frame answers a message.
            let frame = try await next(client)
            guard frame["type"] as? String != "queue" else { continue }
            #expect(frame["type"] as? String == "ack", "\(frame)")
            acks.append(frame)
        }
        #expect(acks.map { $0["id"] as? String ?? "" } == (0..<count).map { "m\($0)" })
        let seqs = acks.map { $0["seq"] as? Int ?? 0 }
        #expect(seqs == seqs.sorted() && Set(seqs).count == count)
        #expect(inbox.highWaterFrames <= limits.maxFrames)
        let metrics = harness.hub.renderMetrics()
        #expect(metrics.contains("carehub_connections_receive_paused 0\n"))
        #expect(!metrics.contains("carehub_receive_pauses_total 0\n"))
        #expect(metrics.contains("carehub_slow_reader_closes_total 0\n"))
        await harness.stop()
    }

    /// Without sockets: a burst that fills a connection's inbox asks the transport to pause
    /// reading it, the drained inbox asks it to resume, /metrics counts both, and every message is
    /// acknowledged in order.
    @Test func aFullInboxAsksTheTransportToPauseAndThenToResume() async throws {
        let harness = try HubHarness(config: Self.floodConfig) {
            $0.inboxLimits = InboxLimits(maxFrames: 4, maxBytes: 1 << 20, resumeFrames: 1, resumeBytes: 1 << 18)
        }
        harness.open(1)
        let welcome = try await harness.request(1, ["type": "hello", "org": "clinic", "id": "h"], ["welcome"])
        let room = try #require(welcome["conversation"] as? String, "\(welcome)")
        let count = 100
        for index in 0..<count { try harness.send(1, ["type": "send", "room": room, "text": "message \(index)", "id": "m\(index)"]) }
        var ids: [String] = []
        while ids.count < count { ids.append(try await harness.next(1, ["ack"])["id"] as? String ?? "") }
        #expect(ids == (0..<count).map { "m\($0)" })
        let handle = ConnectionHandle(rawValue: 1)
        #expect(await eventually { harness.out.flowChanges(of: handle).last == true })
        let changes = harness.out.flowChanges(of: handle)
        #expect(!changes.isEmpty && changes == (0..<changes.count).map { $0 % 2 == 1 })
        let metrics = harness.hub.renderMetrics()
        #expect(metrics.contains("carehub_connections_receive_paused 0\n"))
        #expect(metrics.contains("carehub_receive_pauses_total \(changes.count / 2)\n"))
        await harness.stop()
    }

    /// The next JSON frame from `client`, waiting for it up to a hang guard.
    private func next(_ client: WebSocketClient) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let text = client.nextText() {
                return try #require((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any], "not JSON: \(text)")
            }
            guard try client.fill() else { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        Issue.record("no frame arrived")
        throw CancellationError()
    }
}
