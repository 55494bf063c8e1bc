import CareHubPostgres
import CareHubPostgresTesting
import Foundation
import Synchronization
import Testing

/// These stop their own server, so that other tests keep theirs.
@Suite("PostgreSQL going away and coming back")
struct PostgresOutageTests {
    @Test func queriesFailPromptlyWhileDownAndRecoverAfterRestart() async throws {
        let server = try TestPostgresServer()
        defer { server.destroy() }
        let configuration = PostgresConfiguration(url: try server.createDatabase(), connections: 2, connectTimeout: 2)
        let client = try PostgresClient(configuration: configuration)
        let received = Mutex<[String]>([])
        let reconnects = Mutex(0)
        let listener = try PostgresListener(
            configuration: configuration, channels: ["events"], onReconnect: { reconnects.withLock { $0 += 1 } },
            handler: { notification in received.withLock { $0.append(notification.payload) } })
        let locks = try PostgresLockSession(configuration: configuration)
        await listener.untilListening()
        #expect(try await client.query("SELECT 1 AS one")[0].int("one") == 1)
        #expect(try await locks.tryAdvisoryLock(key: 1))

        try server.stop()
        let error = try await #require(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(error.isConnectionFailure)
        let second = try await #require(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(second.isConnectionFailure)
        #expect(await !locks.holds(key: 1))

        try server.start()
        // The same client works again, on every pooled connection: each connection the server
        // closed is noticed and replaced before a statement is sent on it.
        for _ in 0..<4 { #expect(try await client.query("SELECT 1 AS one")[0].int("one") == 1) }
        // The listener reconnects and listens again.
        #expect(await eventually { reconnects.withLock { $0 } >= 1 })
        await listener.untilListening()
        try await client.notify(channel: "events", payload: "after restart")
        #expect(await eventually { received.withLock { $0 } == ["after restart"] })
        #expect(try await locks.tryAdvisoryLock(key: 1))

        await listener.close()
        await locks.close()
        await client.close()
    }
}
