import CareHubPostgres
import Foundation

/// CareHub's PostgreSQL database: the client pool with the schema of ``PostgresSchema`` applied.
/// Every node opens one; the migrations run once whichever node starts first.
public struct PostgresDatabase: Sendable {
    /// The pool the adapters run their statements on.
    public let client: PostgresClient

    /// Connects to `url` and brings the schema up to date.
    public static func open(url: String, connections: Int = 4) async throws -> PostgresDatabase {
        let client = try PostgresClient(url: url, connections: connections)
        try await PostgresMigrator(PostgresSchema.migrations.map { PostgresMigration($0.name, sql: $0.sql) }).migrate(client)
        return PostgresDatabase(client: client)
    }

    public init(client: PostgresClient) { self.client = client }
}
