/// A failure of the PostgreSQL client: an error the server reported, a connection that could not
/// be made or was lost, or a result that is not what the caller asked for.
///
/// The ``description`` names the SQLSTATE and the server's primary message only. The server's
/// ``detail`` can quote row values (`Key (email)=(…) already exists`), so it is kept apart and is
/// never part of the description: do not log it.
public struct PostgresError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        /// The server answered with an error (or libpq reported one without a connection loss).
        case server
        /// No connection could be made, or it was lost during the request.
        case connection
        /// A column that the result does not have.
        case unknownColumn(String)
        /// A column read with an accessor its type does not fit.
        case typeMismatch(column: String, expected: String, oid: UInt32)
        /// A NULL read with an accessor that returns a value.
        case unexpectedNull(String)
        /// A column whose text the accessor cannot decode.
        case malformedValue(column: String, expected: String)
        /// A connection URL that libpq cannot parse.
        case invalidURL
        /// The client, listener or lock session was closed.
        case closed
        /// More requests wait for a connection than the client allows.
        case poolExhausted(Int)
        /// A transaction used after it ended.
        case transactionEnded
        /// A statement failed inside a transaction and the error was caught; the transaction was
        /// rolled back instead of committed.
        case transactionAborted
        /// Two migrations share a name.
        case duplicateMigration(String)
        /// A text parameter holding NUL, which PostgreSQL text cannot store.
        case nulInText(parameter: Int)
        /// A result status the client does not handle (COPY, pipeline).
        case unsupportedResult(String)
    }

    private let kind: Kind
    /// The five-character SQLSTATE the server reported (`23505`), or nil when there was none
    /// (a connection that could not be made, a client-side error).
    public let sqlState: String?
    /// The server's primary message, or libpq's or the client's description of the failure.
    public let message: String
    /// The server's detail line; may quote row values, so it is not part of ``description``.
    public let detail: String?

    private init(_ kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
    }

    /// An error the server reported for a statement.
    static func server(sqlState: String?, message: String, detail: String?) -> PostgresError {
        PostgresError(.server, sqlState: sqlState, message: message, detail: detail)
    }

    /// A connection that could not be made or was lost; `message` is libpq's.
    static func connection(_ message: String, sqlState: String? = nil) -> PostgresError {
        PostgresError(.connection, sqlState: sqlState, message: message)
    }

    /// The result has no column of this name.
    public static func unknownColumn(_ column: String) -> PostgresError {
        PostgresError(.unknownColumn(column), message: "no column '\(column)' in the result")
    }

    /// The column's type does not fit the accessor (`int` on a `text` column).
    public static func typeMismatch(column: String, expected: String, oid: UInt32) -> PostgresError {
        PostgresError(.typeMismatch(column: column, expected: expected, oid: oid), message: "column '\(column)' of type oid \(oid) is not \(expected)")
    }

    /// The column is NULL; check ``PostgresRow/isNull(_:)`` first for nullable columns.
    public static func unexpectedNull(_ column: String) -> PostgresError {
        PostgresError(.unexpectedNull(column), message: "column '\(column)' is NULL")
    }

    /// The column's text is not a valid value of the expected kind.
    public static func malformedValue(column: String, expected: String) -> PostgresError {
        PostgresError(.malformedValue(column: column, expected: expected), message: "column '\(column)' does not hold a valid \(expected)")
    }

    /// libpq cannot parse the connection URL; `reason` is libpq's (it does not quote a password).
    public static func invalidURL(_ reason: String) -> PostgresError {
        PostgresError(.invalidURL, message: "invalid connection URL: \(reason)")
    }

    /// The client, listener or lock session was closed before the request ran.
    public static let closed = PostgresError(.closed, message: "the PostgreSQL client is closed")

    /// `limit` requests already wait for a connection; this one was refused.
    public static func poolExhausted(_ limit: Int) -> PostgresError {
        PostgresError(.poolExhausted(limit), message: "\(limit) requests already wait for a PostgreSQL connection")
    }

    /// A ``PostgresTransaction`` was used after its body returned.
    public static let transactionEnded = PostgresError(.transactionEnded, message: "the transaction has ended")

    /// A statement in the transaction failed and its error was caught, so PostgreSQL aborted the
    /// transaction; it was rolled back, not committed.
    public static let transactionAborted = PostgresError(.transactionAborted, sqlState: "25P02", message: "a statement failed inside the transaction; it was rolled back")

    /// Two migrations given to one ``PostgresMigrator`` share a name.
    public static func duplicateMigration(_ name: String) -> PostgresError {
        PostgresError(.duplicateMigration(name), message: "two migrations are named '\(name)'")
    }

    /// Text parameter `$parameter` contains a NUL character; PostgreSQL text cannot hold one
    /// (send such data as `.bytea`). Nothing was sent.
    public static func nulInText(parameter: Int) -> PostgresError {
        PostgresError(.nulInText(parameter: parameter), message: "text parameter $\(parameter) contains NUL")
    }

    static func unsupportedResult(_ status: String) -> PostgresError {
        PostgresError(.unsupportedResult(status), message: "unsupported result status \(status)")
    }

    /// A unique or primary-key constraint was violated (SQLSTATE 23505).
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// The transaction lost a serialization race or a deadlock (40001, 40P01); running it again
    /// may succeed.
    public var isSerializationFailure: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// PostgreSQL cannot be reached: no connection could be made, it was lost, the server is
    /// shutting down or restarting (class 08, 57P01–57P03). The next request reconnects.
    public var isConnectionFailure: Bool {
        if kind == .connection { return true }
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
    }

    public var description: String {
        if let sqlState { return "PostgreSQL \(sqlState): \(message)" }
        return "PostgreSQL: \(message)"
    }
}
