import CareHubPostgres
import CareHubPostgresStorage
import CareHubPostgresTesting
import Foundation
import Testing

@Suite("PostgreSQL schema")
struct PostgresSchemaTests {
    @Test func theSchemaIsAppliedOnceWhicheverNodeOpensFirst() async throws {
        let url = try TestPostgresServer.shared().createDatabase()
        // Two nodes starting at once: each migration runs once.
        async let first = PostgresDatabase.open(url: url, connections: 1)
        async let second = PostgresDatabase.open(url: url, connections: 1)
        let (a, b) = try await (first, second)
        let applied = try await PostgresMigrator(PostgresSchema.migrations.map { PostgresMigration($0.name, sql: $0.sql) }).appliedMigrations(a.client)
        #expect(applied == PostgresSchema.migrations.map(\.name))
        let tables = try await b.client.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            .map { try $0.string("table_name") }
        for table in ["conversations", "messages", "users", "audit_events", "audit_tip", "outbox", "sessions", "changes", "api_tokens", "webhooks"] {
            #expect(tables.contains(table), "no table \(table)")
        }
        let commit = try await a.client.query("SHOW synchronous_commit")
        #expect(try commit.first?.string("synchronous_commit") == "on")
        await a.client.close()
        await b.client.close()
    }
}
