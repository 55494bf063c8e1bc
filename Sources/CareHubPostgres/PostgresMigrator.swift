/// One schema change: a name that identifies it forever and its SQL text (several statements
/// allowed).
public struct PostgresMigration: Sendable, Hashable {
    /// Recorded in `schema_migrations` once applied; never rename an applied migration.
    public let name: String
    /// The statements, run in the migration's transaction.
    public let sql: String

    /// A migration named `name` running `sql`.
    public init(_ name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}

/// Applies named migrations in order, each exactly once per database, even when several nodes
/// start at the same moment.
///
/// Each migration runs in its own transaction that first takes the transaction-level advisory
/// lock ``lockKey`` (`pg_advisory_xact_lock`), so migrators on other nodes wait for it; then, if
/// `schema_migrations` has no row of that name, runs the SQL and records the name. A migration
/// that fails is rolled back whole and stops the run; the ones before it stay applied.
///
/// ```swift
/// let migrator = PostgresMigrator([
///     PostgresMigration("001-rooms", sql: "CREATE TABLE rooms (id text PRIMARY KEY, org text NOT NULL)"),
///     PostgresMigration("002-rooms-org", sql: "CREATE INDEX rooms_org ON rooms (org)"),
/// ])
/// try await migrator.migrate(client)
/// ```
public struct PostgresMigrator: Sendable {
    /// The advisory lock key CareHub's migrations take: "CHmigrat" in ASCII.
    public static let defaultLockKey: Int64 = 0x4348_6d69_6772_6174

    /// The migrations, in the order they are applied.
    public let migrations: [PostgresMigration]
    /// The advisory lock that serialises migrators on one database.
    public let lockKey: Int64

    /// A migrator for `migrations`, applied in this order.
    public init(_ migrations: [PostgresMigration], lockKey: Int64 = PostgresMigrator.defaultLockKey) {
        self.migrations = migrations
        self.lockKey = lockKey
    }

    /// Applies the migrations not yet recorded and returns the names it applied (empty when the
    /// database was up to date).
    /// - Throws: ``PostgresError/duplicateMigration(_:)`` before running anything if two
    ///   migrations share a name; the failing migration's error otherwise.
    @discardableResult
    public func migrate(_ client: PostgresClient) async throws -> [String] {
        var names = Set<String>()
        for migration in migrations where !names.insert(migration.name).inserted {
            throw PostgresError.duplicateMigration(migration.name)
        }
        var applied: [String] = []
        for migration in migrations {
            let lockKey = lockKey
            let ran = try await client.transaction { transaction in
                _ = try transaction.query("SELECT pg_advisory_xact_lock($1)", [.int(lockKey)])
                try transaction.executeScript(Self.createTable)
                let recorded = try transaction.query("SELECT 1 FROM schema_migrations WHERE name = $1", [.text(migration.name)])
                guard recorded.isEmpty else { return false }
                try transaction.executeScript(migration.sql)
                try transaction.execute("INSERT INTO schema_migrations (name) VALUES ($1)", [.text(migration.name)])
                return true
            }
            if ran { applied.append(migration.name) }
        }
        return applied
    }

    /// The names recorded in `schema_migrations`, in the order they were applied; empty when
    /// nothing was ever migrated.
    public func appliedMigrations(_ client: PostgresClient) async throws -> [String] {
        let exists = try await client.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        guard try exists.first?.bool("present") == true else { return [] }
        return try await client.query("SELECT name FROM schema_migrations ORDER BY applied_at, name").map { try $0.string("name") }
    }

    private static let createTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            name text PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
}
