import Foundation
import GRDB
import GRDBSQLite

/// Runs a cached insert with its parameters bound directly, for the two rows every message
/// writes (the message and, in HIPAA mode, its delivery record) on the single writer's thread.
/// GRDB's argument boxing costs more there than the insert itself.
struct HotInsert {
    private let statement: OpaquePointer
    private var index: Int32 = 0

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Binds the parameters `bind` adds, in order, then steps the statement once.
    static func run(_ statement: Statement, _ bind: (inout HotInsert) -> Void) throws {
        var insert = HotInsert(statement: statement.sqliteStatement)
        sqlite3_reset(insert.statement)
        sqlite3_clear_bindings(insert.statement)
        bind(&insert)
        let code = sqlite3_step(insert.statement)
        defer { sqlite3_reset(insert.statement) }
        guard code == SQLITE_DONE else {
            let message = sqlite3_errmsg(sqlite3_db_handle(insert.statement)).map { String(cString: $0) }
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
        }
    }

    mutating func text(_ value: String) {
        index += 1
        var value = value
        value.withUTF8 { bytes in
            _ = sqlite3_bind_text(statement, index, bytes.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, Int32(bytes.count), Self.transient)
        }
    }

    mutating func optionalText(_ value: String?) {
        guard let value else {
            index += 1
            sqlite3_bind_null(statement, index)
            return
        }
        text(value)
    }

    mutating func integer(_ value: Int64) {
        index += 1
        sqlite3_bind_int64(statement, index, value)
    }

    mutating func real(_ value: Double) {
        index += 1
        sqlite3_bind_double(statement, index, value)
    }

    mutating func blob(_ bytes: some ContiguousBytes) {
        index += 1
        bytes.withUnsafeBytes { raw in
            // An empty buffer has no base address, which would bind NULL.
            _ = raw.isEmpty
                ? sqlite3_bind_zeroblob(statement, index, 0)
                : sqlite3_bind_blob(statement, index, raw.baseAddress, Int32(raw.count), Self.transient)
        }
    }
}
