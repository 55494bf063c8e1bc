/// The columns of a result, shared by its rows.
final class PostgresColumns: Sendable {
    let names: [String]
    let types: [UInt32]
    private let indexes: [String: Int]

    init(names: [String], types: [UInt32]) {
        self.names = names
        self.types = types
        // With duplicate names (`SELECT 1 AS a, 2 AS a`) the first column wins, as in libpq's PQfnumber.
        self.indexes = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func index(of name: String) throws -> Int {
        guard let index = indexes[name] else { throw PostgresError.unknownColumn(name) }
        return index
    }
}

/// One row of a result, read by column name.
///
/// Values arrive in PostgreSQL's text format. Each accessor checks the column's type, throws
/// ``PostgresError/unexpectedNull(_:)`` for NULL (use ``isNull(_:)`` first on nullable columns),
/// and ``PostgresError/unknownColumn(_:)`` for a name the result does not have.
///
/// ```swift
/// for row in try await client.query("SELECT id, name FROM rooms WHERE org = $1", [.text(org)]) {
///     let id = try row.int("id"), name = try row.string("name")
/// }
/// ```
public struct PostgresRow: Sendable {
    let columns: PostgresColumns
    let values: [String?]

    /// The column names, in the order of the select list.
    public var columnNames: [String] { columns.names }

    /// Whether the column is NULL.
    public func isNull(_ column: String) throws -> Bool {
        values[try columns.index(of: column)] == nil
    }

    /// The column's text form; any type may be read this way (`bytea` reads as `\x…`).
    public func string(_ column: String) throws -> String {
        try text(column).text
    }

    /// An integer column (`int2`, `int4`, `int8`, `oid`).
    public func int(_ column: String) throws -> Int64 {
        let (text, oid) = try text(column)
        guard PostgresType.integers.contains(oid) else { throw PostgresError.typeMismatch(column: column, expected: "an integer", oid: oid) }
        guard let value = Int64(text) else { throw PostgresError.malformedValue(column: column, expected: "integer") }
        return value
    }

    /// A floating-point or numeric column (`float4`, `float8`, `numeric`), or an integer one.
    public func double(_ column: String) throws -> Double {
        let (text, oid) = try text(column)
        guard PostgresType.floats.contains(oid) || PostgresType.integers.contains(oid) else {
            throw PostgresError.typeMismatch(column: column, expected: "a number", oid: oid)
        }
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default:
            guard let value = Double(text) else { throw PostgresError.malformedValue(column: column, expected: "number") }
            return value
        }
    }

    /// A `bool` column.
    public func bool(_ column: String) throws -> Bool {
        let (text, oid) = try text(column)
        guard oid == PostgresType.bool else { throw PostgresError.typeMismatch(column: column, expected: "bool", oid: oid) }
        switch text {
        case "t": return true
        case "f": return false
        default: throw PostgresError.malformedValue(column: column, expected: "bool")
        }
    }

    /// A `bytea` column, decoded from the hex output format (`\x0a1b…`, PostgreSQL's default
    /// `bytea_output`).
    public func bytes(_ column: String) throws -> [UInt8] {
        let (text, oid) = try text(column)
        guard oid == PostgresType.bytea else { throw PostgresError.typeMismatch(column: column, expected: "bytea", oid: oid) }
        guard let bytes = Self.decodeHex(text) else { throw PostgresError.malformedValue(column: column, expected: "hex-format bytea") }
        return bytes
    }

    /// The column as a ``PostgresValue`` chosen by its type: integers as `.int`, floats and
    /// numerics as `.double`, `bool`, `bytea`, NULL as `.null`, anything else as `.text`.
    public func value(_ column: String) throws -> PostgresValue {
        let index = try columns.index(of: column)
        guard values[index] != nil else { return .null }
        let oid = columns.types[index]
        if PostgresType.integers.contains(oid) { return .int(try int(column)) }
        if PostgresType.floats.contains(oid) { return .double(try double(column)) }
        if oid == PostgresType.bool { return .bool(try bool(column)) }
        if oid == PostgresType.bytea { return .bytea(try bytes(column)) }
        return .text(try string(column))
    }

    private func text(_ column: String) throws -> (text: String, oid: UInt32) {
        let index = try columns.index(of: column)
        guard let text = values[index] else { throw PostgresError.unexpectedNull(column) }
        return (text, columns.types[index])
    }

    static func decodeHex(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// The result of a statement: its rows (none for a command), its column names, and the number
/// of rows it affected. A random-access collection of ``PostgresRow``.
public struct PostgresRows: RandomAccessCollection, Sendable {
    let columns: PostgresColumns
    let rows: [[String?]]
    /// Rows inserted, updated, deleted, selected or copied, as the server's command tag reports;
    /// 0 for commands without a count (`CREATE TABLE`).
    public let affectedRowCount: Int

    init(columns: PostgresColumns, rows: [[String?]], affectedRowCount: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRowCount = affectedRowCount
    }

    /// The column names, in the order of the select list (known even when no row matched).
    public var columnNames: [String] { columns.names }

    public var startIndex: Int { rows.startIndex }
    public var endIndex: Int { rows.endIndex }
    public subscript(position: Int) -> PostgresRow { PostgresRow(columns: columns, values: rows[position]) }
}
