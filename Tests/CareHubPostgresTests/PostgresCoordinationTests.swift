import CareHubPostgres
import CareHubPostgresTesting
import Foundation
import Synchronization
import Testing

@Suite("Notifications, migrations and advisory locks")
struct PostgresCoordinationTests {
    @Test func listenerReceivesNotifiedPayloads() async throws {
        try await withFreshDatabase { client, configuration in
            let (listener, notifications) = try PostgresListener.stream(configuration: configuration, channels: ["room_events", "other"])
            await listener.untilListening()
            try await client.notify(channel: "room_events", payload: "room-1:42")
            try await client.notify(channel: "unheard", payload: "nobody")
            try await client.notify(channel: "other", payload: "")
            let received = try #require(await first(2, of: notifications))
            #expect(received.map(\.channel) == ["room_events", "other"])
            #expect(received.map(\.payload) == ["room-1:42", ""])
            await listener.close()
            // Closing the listener finishes its stream.
            #expect(await first(1, of: notifications) == [])
        }
    }

    @Test func migratorAppliesEachMigrationOnceAndRecordsIt() async throws {
        try await withFreshDatabase { client, _ in
            let migrations = [
                PostgresMigration("001-rooms", sql: "CREATE TABLE rooms (id text PRIMARY KEY); INSERT INTO rooms VALUES ('lobby')"),
                PostgresMigration("002-rooms-org", sql: "ALTER TABLE rooms ADD COLUMN org text"),
            ]
            let migrator = PostgresMigrator(migrations)
            #expect(try await migrator.appliedMigrations(client) == [])
            #expect(try await migrator.migrate(client) == ["001-rooms", "002-rooms-org"])
            #expect(try await migrator.migrate(client) == [])
            #expect(try await migrator.appliedMigrations(client) == ["001-rooms", "002-rooms-org"])
            #expect(try await client.query("SELECT count(*) AS c FROM rooms")[0].int("c") == 1)

            let extended = PostgresMigrator(migrations + [PostgresMigration("003-broken", sql: "ALTER TABLE rooms ADD COLUMN x int; SELECT 1/0")])
            await #expect(throws: PostgresError.self) { try await extended.migrate(client) }
            #expect(try await migrator.appliedMigrations(client).count == 2)
            let columns = try await client.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'rooms' AND column_name = 'x'")
            #expect(columns.isEmpty)
            await #expect(throws: PostgresError.duplicateMigration("001-rooms")) {
                try await PostgresMigrator([migrations[0], migrations[0]]).migrate(client)
            }
        }
    }

    @Test func racingMigratorsApplyEachMigrationOnce() async throws {
        try await withFreshDatabase { client, configuration in
            // Not idempotent: a second run of any migration would fail or double the count.
            let migrations = (1...5).map { index in
                PostgresMigration(
                    "00\(index)", sql: index == 1 ? "CREATE TABLE runs (n int)" : "INSERT INTO runs VALUES (\(index)); SELECT pg_sleep(0.05)")
            }
            let nodes = try (0..<3).map { _ in try PostgresClient(configuration: configuration) }
            let applied = try await withThrowingTaskGroup(of: [String].self) { group in
                for node in nodes { group.addTask { try await PostgresMigrator(migrations).migrate(node) } }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            for node in nodes { await node.close() }
            #expect(applied.sorted() == ["001", "002", "003", "004", "005"])
            #expect(try await client.query("SELECT count(*) AS c FROM runs")[0].int("c") == 4)
            #expect(try await client.query("SELECT count(*) AS c FROM schema_migrations")[0].int("c") == 5)
        }
    }

    @Test func advisoryLockIsExclusiveAndReleasedWithItsConnection() async throws {
        try await withFreshDatabase { _, configuration in
            let first = try PostgresLockSession(configuration: configuration)
            let second = try PostgresLockSession(configuration: configuration)
            #expect(try await first.tryAdvisoryLock(key: 7))
            #expect(try await first.tryAdvisoryLock(key: 7))
            #expect(try await !second.tryAdvisoryLock(key: 7))
            #expect(try await second.tryAdvisoryLock(key: 8))
            #expect(await first.holds(key: 7))
            #expect(await !second.holds(key: 7))

            #expect(try await first.unlock(key: 7))
            #expect(try await second.tryAdvisoryLock(key: 7))
            #expect(try await !first.tryAdvisoryLock(key: 7))

            // Closing the holder's connection releases its locks, as soon as the server has
            // seen the connection end.
            await second.close()
            #expect(try await eventually { try await first.tryAdvisoryLock(key: 7) })
            #expect(try await eventually { try await first.tryAdvisoryLock(key: 8) })
            await first.close()
        }
    }
}
