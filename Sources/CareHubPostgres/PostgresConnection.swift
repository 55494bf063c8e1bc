import CLibPQ
import Foundation

/// One libpq connection. Not thread-safe: each is owned by one thread of the client's own and
/// only ever used there (libpq blocks).
final class PostgresConnection {
    private let configuration: PostgresConfiguration
    private var handle: OpaquePointer?
    /// Increments on every successful (re)connect; a session's locks and LISTENs belong to one generation.
    private(set) var generation = 0

    /// A listener's connection keeps the notifications it reads; others discard them.
    private let keepsNotifications: Bool

    init(configuration: PostgresConfiguration, keepsNotifications: Bool = false) {
        self.configuration = configuration
        self.keepsNotifications = keepsNotifications
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    /// Whether a connection is open and libpq considers it healthy.
    var isConnected: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// The socket to wait on with poll(), or -1 without a connection.
    var socket: Int32 {
        guard let handle else { return -1 }
        return PQsocket(handle)
    }

    /// Makes sure a healthy connection is open: connects if there is none or it broke, and
    /// notices a connection the server closed while it was idle (a restart, an administrator's
    /// termination), so that it is replaced instead of failing the next statement.
    func ensureConnected() throws {
        if isConnected, let handle {
            let socket = PQsocket(handle)
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            // Idle, the server sends nothing unsolicited but notices, notifications and a goodbye.
            // The goodbye ("terminating connection …") may arrive before the socket's end: a
            // connection that keeps no notifications and hears anything while idle is replaced,
            // which costs one connect and never a failed statement.
            if socket >= 0, poll(&descriptor, 1, 0) > 0 {
                if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK || !keepsNotifications {
                    close()
                }
            }
        }
        if !isConnected { try connect() }
    }

    /// Closes the connection; the next ``ensureConnected()`` opens a new one.
    func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    private func connect() throws {
        close()
        let parameters = configuration.connectionParameters
        let connection = withCStrings(parameters.map(\.0)) { keywords in
            withCStrings(parameters.map(\.1)) { values in
                PQconnectdbParams(keywords, values, 1)
            }
        }
        guard let connection else { throw PostgresError.connection("out of memory") }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection)).trimmingTrailingNewlines
            PQfinish(connection)
            throw PostgresError.connection(message.isEmpty ? "could not connect" : message)
        }
        // libpq prints the server's notices and warnings on stderr; they may quote data, so drop them.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        handle = connection
        generation += 1
    }

    /// Runs one statement with `$n` parameters (extended protocol: one statement only).
    func execute(_ sql: String, _ parameters: [PostgresValue]) throws -> PostgresRows {
        for (index, parameter) in parameters.enumerated() {
            if case .text(let text) = parameter, text.utf8.contains(0) { throw PostgresError.nulInText(parameter: index + 1) }
        }
        try ensureConnected()
        guard let handle else { throw PostgresError.connection("not connected") }
        let wire = parameters.map(\.wire)
        let result: OpaquePointer? = withParameterBuffers(wire.map(\.bytes)) { values, lengths in
            PQexecParams(handle, sql, Int32(wire.count), wire.map(\.type), values, lengths, wire.map(\.format), 0)
        }
        return try rows(of: result, on: handle)
    }

    /// Runs SQL text that may hold several statements and no parameters (simple protocol):
    /// migrations and transaction control.
    func executeScript(_ sql: String) throws {
        try ensureConnected()
        guard let handle else { throw PostgresError.connection("not connected") }
        _ = try rows(of: PQexec(handle, sql), on: handle)
    }

    /// The connection's transaction state, as libpq tracks it.
    var transactionStatus: PGTransactionStatusType {
        guard let handle else { return PQTRANS_UNKNOWN }
        return PQtransactionStatus(handle)
    }

    /// Reads what the server sent, without blocking. False when the connection broke.
    func consumeInput() -> Bool {
        guard let handle else { return false }
        return PQconsumeInput(handle) != 0 && PQstatus(handle) == CONNECTION_OK
    }

    /// Notifications libpq has read so far.
    func notifications() -> [PostgresNotification] {
        guard let handle else { return [] }
        var received: [PostgresNotification] = []
        while let notify = PQnotifies(handle) {
            defer { PQfreemem(notify) }
            let entry = notify.pointee
            received.append(PostgresNotification(
                channel: entry.relname.map { String(cString: $0) } ?? "",
                payload: entry.extra.map { String(cString: $0) } ?? "",
                processID: entry.be_pid))
        }
        return received
    }

    /// `name` quoted as an SQL identifier by libpq (for LISTEN, which takes no parameters).
    func quoteIdentifier(_ name: String) throws -> String {
        try ensureConnected()
        guard let handle else { throw PostgresError.connection("not connected") }
        let utf8 = Array(name.utf8)
        guard let quoted = utf8.withUnsafeBufferPointer({ buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQescapeIdentifier(handle, $0.baseAddress, $0.count) }
        }) else {
            throw PostgresError.server(sqlState: nil, message: String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines, detail: nil)
        }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }

    private func rows(of result: OpaquePointer?, on handle: OpaquePointer) throws -> PostgresRows {
        guard let result else {
            // No result at all: out of memory, or the connection is gone.
            throw failure(message: String(cString: PQerrorMessage(handle)), sqlState: nil, detail: nil, on: handle)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            break
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR, PGRES_BAD_RESPONSE:
            let field = { (code: Int32) in PQresultErrorField(result, code).map { String(cString: $0) } }
            let message = field(carehub_pq_diag_message_primary()) ?? String(cString: PQresultErrorMessage(result))
            throw failure(message: message, sqlState: field(carehub_pq_diag_sqlstate()), detail: field(carehub_pq_diag_message_detail()), on: handle)
        default:
            throw PostgresError.unsupportedResult(String(cString: PQresStatus(status)))
        }
        let columnCount = Int(PQnfields(result)), rowCount = Int(PQntuples(result))
        let columns = PostgresColumns(
            names: (0..<columnCount).map { PQfname(result, Int32($0)).map { String(cString: $0) } ?? "" },
            types: (0..<columnCount).map { PQftype(result, Int32($0)) })
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<Int32(rowCount) {
            rows.append((0..<Int32(columnCount)).map { column in
                PQgetisnull(result, row, column) != 0 ? nil : String(cString: PQgetvalue(result, row, column))
            })
        }
        let affected = PQcmdTuples(result).map { Int(String(cString: $0)) ?? 0 } ?? 0
        return PostgresRows(columns: columns, rows: rows, affectedRowCount: affected)
    }

    /// An error result: a connection failure if libpq lost the connection with it.
    private func failure(message: String, sqlState: String?, detail: String?, on handle: OpaquePointer) -> PostgresError {
        let message = message.trimmingTrailingNewlines
        if PQstatus(handle) != CONNECTION_OK {
            return PostgresError.connection(message.isEmpty ? "connection lost" : message, sqlState: sqlState)
        }
        return PostgresError.server(sqlState: sqlState, message: message, detail: detail)
    }
}

/// Calls `body` with a NULL-terminated array of C strings, freed afterwards.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Calls `body` with libpq's parameter arrays: a pointer per value (nil for NULL) and its length,
/// valid for the call. Each value is NUL-terminated, since libpq reads text-format values up to
/// the NUL and ignores their length; binary ones are read by length.
private func withParameterBuffers<R>(_ values: [[UInt8]?], _ body: ([UnsafePointer<CChar>?], [Int32]) -> R) -> R {
    let buffers: [UnsafeMutablePointer<CChar>?] = values.map { bytes in
        guard let bytes else { return nil }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: source.count) }
        }
        buffer[bytes.count] = 0
        return buffer
    }
    defer { buffers.forEach { $0?.deallocate() } }
    return body(buffers.map { $0.map { UnsafePointer($0) } }, values.map { Int32($0?.count ?? 0) })
}
