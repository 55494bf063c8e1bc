import CLibPQ

/// The statements of one transaction, run synchronously on its connection's thread.
///
/// Handed to the body of ``PostgresClient/transaction(isolation:_:)``; valid only until the body
/// returns (later use throws ``PostgresError/transactionEnded``). If the connection is lost
/// during `COMMIT`, the error is a connection failure and whether the transaction committed is
/// unknown; make such writes idempotent or check before running them again.
public final class PostgresTransaction {
    private let connection: PostgresConnection
    private var isOpen = true
    private var committed: [() -> Void] = []

    private init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Runs one statement in the transaction and returns its rows.
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresRows {
        guard isOpen else { throw PostgresError.transactionEnded }
        return try connection.execute(sql, parameters)
    }

    /// Runs one statement in the transaction and returns the rows it affected.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws -> Int {
        try query(sql, parameters).affectedRowCount
    }

    /// Runs `action` once the transaction has committed, on the connection's thread, right after
    /// `COMMIT` succeeds (in the order given); never if it rolls back or the commit fails. For
    /// what must not happen before the rows are durable (publishing a signed audit head).
    public func afterCommit(_ action: @escaping () -> Void) {
        committed.append(action)
    }

    /// Runs SQL text that may hold several statements, without parameters (migrations).
    func executeScript(_ sql: String) throws {
        guard isOpen else { throw PostgresError.transactionEnded }
        try connection.executeScript(sql)
    }

    static func run<T>(on connection: PostgresConnection, isolation: PostgresIsolation, _ body: (PostgresTransaction) throws -> T) throws -> T {
        try connection.executeScript(isolation == .readCommitted ? "BEGIN" : "BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        let transaction = PostgresTransaction(connection: connection)
        defer { transaction.isOpen = false }
        let value: T
        do {
            value = try body(transaction)
        } catch {
            rollBack(connection)
            throw error
        }
        if connection.transactionStatus == PQTRANS_INERROR {
            rollBack(connection)
            throw PostgresError.transactionAborted
        }
        do {
            try connection.executeScript("COMMIT")
        } catch {
            rollBack(connection)
            throw error
        }
        for action in transaction.committed { action() }
        return value
    }

    /// Rolls back if the connection still stands; a lost connection has rolled back already.
    private static func rollBack(_ connection: PostgresConnection) {
        guard connection.isConnected else { return }
        do { try connection.executeScript("ROLLBACK") } catch { connection.close() }
    }
}
