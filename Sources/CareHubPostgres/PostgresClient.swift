/// A fixed pool of PostgreSQL connections for one database, safe to share across tasks.
///
/// Each connection lives on a thread of the client's own (libpq blocks), so awaiting a query
/// never occupies Swift's cooperative pool. Connections open on first use; one that broke (the
/// server restarted, the network failed) is replaced on its next use. While PostgreSQL cannot be
/// reached a request fails within ``PostgresConfiguration/connectTimeout`` with an error whose
/// ``PostgresError/isConnectionFailure`` is true; nothing is retried behind the caller's back,
/// since a statement may have run before the connection was lost.
///
/// ```swift
/// let client = try PostgresClient(configuration: .init(url: "postgresql://hub@db:5432/carehub"))
/// let rows = try await client.query("SELECT body FROM messages WHERE room = $1", [.text(room)])
/// try await client.transaction { tx in
///     try tx.execute("UPDATE rooms SET seq = seq + 1 WHERE id = $1", [.text(room)])
/// }
/// await client.close()
/// ```
public final class PostgresClient: Sendable {
    /// What the client was made with.
    public let configuration: PostgresConfiguration
    private let workers: ConnectionWorkers

    /// A client for `configuration`; it checks the URL but does not connect yet.
    /// - Throws: ``PostgresError/invalidURL(_:)`` when libpq cannot parse the URL.
    public init(configuration: PostgresConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        self.workers = ConnectionWorkers(
            name: "postgres", threads: max(1, configuration.connections), queueLimit: configuration.queueLimit,
            configuration: configuration)
    }

    /// A client for `url` with the default settings.
    public convenience init(url: String, connections: Int = 4) throws {
        try self.init(configuration: PostgresConfiguration(url: url, connections: connections))
    }

    /// Runs one statement (`$1`, `$2`, … bound to `parameters`) and returns its rows.
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> PostgresRows {
        try await workers.run { connection in try connection.execute(sql, parameters) }
    }

    /// Runs one statement and returns the number of rows it inserted, updated or deleted.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> Int {
        try await query(sql, parameters).affectedRowCount
    }

    /// Runs `body` in a transaction on one connection: `BEGIN`, then `COMMIT` when it returns,
    /// `ROLLBACK` when it throws (the error is rethrown). If a statement failed inside and
    /// `body` caught the error, PostgreSQL has aborted the transaction: it is rolled back and
    /// ``PostgresError/transactionAborted`` thrown. A ``PostgresError/isSerializationFailure``
    /// error means the whole transaction may be run again.
    ///
    /// `body` runs on the connection's thread and may block it; keep it to statements.
    public func transaction<T: Sendable>(
        isolation: PostgresIsolation = .readCommitted, _ body: @escaping @Sendable (PostgresTransaction) throws -> T
    ) async throws -> T {
        try await workers.run { connection in try PostgresTransaction.run(on: connection, isolation: isolation, body) }
    }

    /// Sends a notification on `channel` (`pg_notify`); listeners receive it when the sending
    /// transaction commits. PostgreSQL limits a payload to under 8000 bytes.
    public func notify(channel: String, payload: String = "") async throws {
        _ = try await query("SELECT pg_notify($1, $2)", [.text(channel), .text(payload)])
    }

    /// Waits for queued requests, then closes every connection and ends the client's threads.
    /// Requests made afterwards fail with ``PostgresError/closed``.
    public func close() async {
        await workers.shutdown()
    }
}

/// The isolation level of a transaction.
public enum PostgresIsolation: String, Sendable {
    /// PostgreSQL's default: each statement sees what was committed before it began.
    case readCommitted = "READ COMMITTED"
    /// One snapshot for the whole transaction; a concurrent update of the same row fails it.
    case repeatableRead = "REPEATABLE READ"
    /// As if transactions ran one after another; conflicting ones fail with a serialization failure.
    case serializable = "SERIALIZABLE"
}
