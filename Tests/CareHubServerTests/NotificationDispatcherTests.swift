import CareHubCore
@testable import CareHubServer
import CareHubStorage
import CareHubTesting
import Foundation
import Logging
import Synchronization
import Testing

/// The dispatcher with a real outbox, sending through the hub's real HTTPS clients to real TLS
/// endpoints, one per organisation, each with its own certificate and `ca=` file.
@Suite("notification dispatcher", .serialized)
struct NotificationDispatcherTests {
    /// An outbox in a temporary directory and two organisations, each with a webhook `pager`.
    final class World {
        let directory = NSTemporaryDirectory() + "carehub-dispatch-\(UUID().uuidString)"
        let outbox: SQLiteOutbox
        let integrations = Integrations()
        let config: HubConfig

        init(alpha: TLSSink, beta: TLSSink) throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            outbox = SQLiteOutbox(database: try CareHubDatabase(directory: directory))
            let path = directory + "/pipeline.conf"
            try """
                [org alpha]
                name = Alpha Clinic
                hipaa = off
                integration pager type=webhook url=https://127.0.0.1:\(alpha.port)/alpha baa=yes ca=\(alpha.certificate)
                stage auth visitors=on
                stage store
                stage fanout notify=none

                [org beta]
                name = Beta Clinic
                hipaa = off
                integration pager type=webhook url=https://127.0.0.1:\(beta.port)/beta baa=yes ca=\(beta.certificate)
                stage auth visitors=on
                stage store
                stage fanout notify=none
                """.write(toFile: path, atomically: true, encoding: .utf8)
            config = try ConfigLoader.load(path: path)
        }

        deinit {
            integrations.shutdown()
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// A dispatcher sending webhooks as the hub's does, or through `send` when given.
        func dispatcher(send: NotificationDispatcher.Send? = nil) -> NotificationDispatcher {
            let config = config
            let integrations = integrations
            return NotificationDispatcher(
                outbox: outbox, config: { config }, publicURL: "https://hub.example", logger: Logger(label: "test"),
                send: send ?? { rendered, integration in try await integrations.post(rendered.json, to: integration) })
        }

        func notify(_ org: String, room: String = "c_1", unread: Int = 1) async throws {
            try await outbox.enqueue(
                StaffNotification(org: OrgID(org), conversation: ConversationID(room), unread: unread, at: Date()), via: ["pager"])
        }

        /// The outbox's pending rows of `org`.
        func pending(_ org: String) throws -> [SQLiteOutbox.Item] {
            try outbox.pending().filter { $0.notification.org == OrgID(org) }
        }
    }

    @Test func twoOrganisationsWebhooksWithTheirOwnCAFilesAreSentToAtTheSameTime() async throws {
        let alpha = try TLSSink(.holdHandshake)
        let beta = try TLSSink(.holdHandshake)
        let world = try World(alpha: alpha, beta: beta)
        try await world.notify("alpha")
        try await world.notify("beta")
        let dispatcher = world.dispatcher()
        dispatcher.start()
        // Both clients are mid-handshake together: neither lane waits for the other.
        try await alpha.waitForClientHello()
        try await beta.waitForClientHello()
        alpha.release()
        beta.release()
        #expect(try await alpha.request().path == "/alpha")
        #expect(try await beta.request().path == "/beta")
        try await waitUntil("both are marked sent") { (try? world.outbox.pending().isEmpty) == true }
        await dispatcher.stop()
        #expect(alpha.failedHandshakes == 0 && beta.failedHandshakes == 0)
    }

    @Test func aDeadEndpointInOneOrganisationDoesNotHoldAnothersNotifications() async throws {
        let alpha = try TLSSink(.silent)
        let beta = try TLSSink(.answer)
        let world = try World(alpha: alpha, beta: beta)
        // Alpha's notification is queued first, so it is the first lane of the round.
        try await world.notify("alpha")
        try await world.notify("beta")
        let dispatcher = world.dispatcher()
        dispatcher.start()
        try await alpha.waitForConnection()
        let arrived = try await beta.request()
        #expect(arrived.path == "/beta")
        // Alpha's send is still under way: its endpoint has answered nothing and it is untried.
        let alphaPending = try world.pending("alpha")
        #expect(alphaPending.count == 1)
        #expect(alphaPending.first?.attempts == 0)
        alpha.stop()
        await dispatcher.stop()
        #expect(try world.pending("beta").isEmpty)
        let kept = try world.pending("alpha")
        #expect(kept.map(\.attempts) == [1], "alpha's failed send is kept for a retry")
    }

    @Test func stoppingWaitsForTheSendUnderWayAndLeavesTheLanesBacklogInTheOutbox() async throws {
        let alpha = try TLSSink(.silent)
        let beta = try TLSSink(.answer)
        let world = try World(alpha: alpha, beta: beta)
        for unread in 1...5 { try await world.notify("alpha", unread: unread) }
        let dispatcher = world.dispatcher()
        dispatcher.start()
        try await alpha.waitForConnection()
        // Stopping while the first of five is in flight: the endpoint then goes away, that send
        // fails and is recorded, and the four behind it are never tried.
        let stopped = Task { await dispatcher.stop() }
        try await waitUntil("the dispatcher is stopping") { dispatcher.isStopping }
        alpha.stop()
        await stopped.value
        #expect(try world.pending("alpha").map(\.attempts) == [1, 0, 0, 0, 0])
    }

    @Test func eachLaneSendsInQueueOrderWhileLanesRunTogether() async throws {
        let alpha = try TLSSink(.answer)
        let beta = try TLSSink(.answer)
        let world = try World(alpha: alpha, beta: beta)
        for unread in 1...3 {
            try await world.notify("alpha", unread: unread)
            try await world.notify("beta", unread: unread)
        }
        let sent = Mutex<[String: [Int]]>([:])
        let dispatcher = world.dispatcher { rendered, integration in
            let unread = try #require(
                (try JSONSerialization.jsonObject(with: Data(rendered.json.utf8)) as? [String: Any])?["unread"] as? Int)
            let org = integration.url?.path ?? "?"
            sent.withLock { $0[org, default: []].append(unread) }
        }
        await dispatcher.dispatch(at: Date())
        #expect(sent.withLock { $0 } == ["/alpha": [1, 2, 3], "/beta": [1, 2, 3]])
        #expect(try world.outbox.pending().isEmpty)
    }
}

/// Polls `condition` until it holds; gives up after ten seconds (a hang guard, never a timing
/// assertion).
private func waitUntil(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () throws -> Bool) async throws {
    for _ in 0..<10_000 where try !condition() {
        try await Task.sleep(for: .milliseconds(1))
    }
    try #require(try condition(), "never happened: \(what)", sourceLocation: sourceLocation)
}
