import CareHubPostgres
import CareHubPostgresStorage
import CareHubPostgresTesting
import Foundation

/// A fresh database on the test process's PostgreSQL server, with the schema applied, for one
/// contract test's PostgreSQL subject. Its client's connections close when it is released, as a
/// ``KeyFixture``'s file is removed.
final class PostgresStoreFixture: Sendable {
    let url: String
    let database: PostgresDatabase

    init(connections: Int = 4) async throws {
        url = try TestPostgresServer.shared().createDatabase()
        database = try await PostgresDatabase.open(url: url, connections: connections)
    }

    /// Another node on the same database: a pool of its own.
    func node(connections: Int = 4) async throws -> PostgresDatabase {
        try await PostgresDatabase.open(url: url, connections: connections)
    }

    deinit {
        let client = database.client
        Task { await client.close() }
    }
}
