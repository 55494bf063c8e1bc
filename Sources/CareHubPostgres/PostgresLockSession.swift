import Synchronization

/// A dedicated connection for session-level advisory locks: leadership, so that exactly one
/// node runs each background job.
///
/// A lock taken with ``tryAdvisoryLock(key:)`` is held until ``unlock(key:)``, until
/// ``close()``, or until the connection ends: PostgreSQL releases a session's advisory locks
/// when its connection closes, so a node that crashes or is cut off loses its leadership and
/// another node's next try succeeds. The session reconnects after a loss but does not take its
/// locks back; ``holds(key:)`` tells the owner whether it still leads.
///
/// ```swift
/// let session = try PostgresLockSession(configuration: configuration)
/// if try await session.tryAdvisoryLock(key: PurgeJob.lockKey) { … run the job while holds(key:) … }
/// ```
public final class PostgresLockSession: Sendable {
    private let workers: ConnectionWorkers
    /// Each held key and the connection generation it was taken on.
    private let held = Mutex<[Int64: Int]>([:])

    /// A session for `configuration`; it connects on first use.
    /// - Throws: ``PostgresError/invalidURL(_:)``.
    public init(configuration: PostgresConfiguration) throws {
        try configuration.validate()
        workers = ConnectionWorkers(name: "postgres-locks", threads: 1, queueLimit: configuration.queueLimit, configuration: configuration)
    }

    /// Takes the session-level advisory lock `key` (`pg_try_advisory_lock`) if no other session
    /// holds it; never waits. True when this session holds it now (also if it already did).
    public func tryAdvisoryLock(key: Int64) async throws -> Bool {
        try await workers.run { [self] connection in
            let rows = try connection.execute("SELECT pg_try_advisory_lock($1) AS locked", [.int(key)])
            let locked = try rows.first?.bool("locked") ?? false
            if locked {
                // Session locks stack; keep one level so that one unlock releases it.
                if held.withLock({ $0[key] == connection.generation }) {
                    _ = try connection.execute("SELECT pg_advisory_unlock($1)", [.int(key)])
                }
                held.withLock { $0[key] = connection.generation }
            }
            return locked
        }
    }

    /// Releases `key`; false when this session did not hold it.
    @discardableResult
    public func unlock(key: Int64) async throws -> Bool {
        try await workers.run { [self] connection in
            guard held.withLock({ $0.removeValue(forKey: key) }) == connection.generation, connection.isConnected else { return false }
            let rows = try connection.execute("SELECT pg_advisory_unlock($1) AS released", [.int(key)])
            return try rows.first?.bool("released") ?? false
        }
    }

    /// Whether this session still holds `key`: it took it and its connection has stood since
    /// (checked with a round trip to the server).
    public func holds(key: Int64) async -> Bool {
        (try? await workers.run { [self] connection in
            guard let generation = held.withLock({ $0[key] }), generation == connection.generation, connection.isConnected else { return false }
            _ = try connection.execute("SELECT 1", [])
            return connection.generation == generation
        }) ?? false
    }

    /// Closes the connection, which releases every lock of the session.
    public func close() async {
        await workers.shutdown()
        held.withLock { $0 = [:] }
    }
}
