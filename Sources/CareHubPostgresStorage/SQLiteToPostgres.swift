import CareHubAudit
import CareHubCore
import CareHubCrypto
import CareHubPostgres
import CareHubStorage
import Foundation
import GRDB

/// Copies a hub's SQLite data set (`DATA/carehub.sqlite`) into an empty PostgreSQL database with
/// ``PostgresSchema`` applied, and checks the copy.
///
/// - The SQLite file is opened read-only and read in one snapshot; every one of its migrations must
///   have been applied (the hub applies them when it starts on the directory).
/// - Everything is written in one PostgreSQL transaction, which also holds every table of the
///   target in EXCLUSIVE mode: the target must be empty (no rows but `schema_migrations` and the
///   initial `audit_tip`), and a copy that fails or does not verify leaves it as it was.
/// - Tables go parent before child (the target's foreign keys); rows stream in primary-key order,
///   in batches, converted by the target column's type (`boolean` from 0/1, `bytea` from blobs,
///   numbers, text, NULL). Ids are kept; each identity sequence is then set past the highest id
///   (or SQLite's `sqlite_sequence`, which remembers ids of deleted rows). `attachments.rowid` and
///   `api_tokens.rowid` take SQLite's rowid.
/// - `audit_events` are inserted in id order, so the target's trigger moves `audit_tip` row by
///   row; the tip ends at the last event's id and hash.
/// - `conversations.last_seq` becomes `MAX(last_seq, MAX(messages.seq))`, as the PostgreSQL
///   schema requires (there it is the authority for the next seq); the check compares that value.
/// - Tables of the target that SQLite does not have (`sessions`) stay empty.
///
/// The check, before commit: per table, the row count and a digest (SHA-256 chained over the
/// rows in primary-key order, each row's values normalised by the target column types) are
/// computed on both sides and must be equal; with the audit key, the audit chain is recomputed on
/// both sides and the verdicts must be equal.
public enum SQLiteToPostgres {
    /// One table's check: rows and digest on each side.
    public struct TableCheck: Sendable, Equatable {
        public let table: String
        public let sourceRows: Int
        public let targetRows: Int
        public let sourceDigest: [UInt8]
        public let targetDigest: [UInt8]
        /// Counts and digests are equal.
        public var matches: Bool { sourceRows == targetRows && sourceDigest == targetDigest }
    }

    /// What a copy did and found.
    public struct Report: Sendable {
        /// Every copied table, in copy order.
        public let tables: [TableCheck]
        /// The audit chain recomputed on the target, when the audit key was given.
        public let auditChain: AuditVerdict?
        /// The first table whose check failed; nil when every table matches.
        public var mismatch: TableCheck? { tables.first { !$0.matches } }
    }

    /// Why a copy was refused or undone.
    public enum Failure: Error, CustomStringConvertible {
        case noDatabase(String)
        case migrationsPending([String])
        case unknownMigrations([String])
        case targetNotEmpty(table: String)
        case missingTable(String)
        case missingColumn(table: String, column: String, side: String)
        case noPrimaryKey(String)
        case unconvertible(table: String, column: String, reason: String)
        case verificationFailed(Report)
        case auditChainDiffers(source: AuditVerdict, target: AuditVerdict)

        public var description: String {
            switch self {
            case .noDatabase(let path): "no CareHub database at \(path)"
            case .migrationsPending(let names):
                "the SQLite database lacks schema versions \(names.joined(separator: ", ")): start the hub once on its data directory (carehub serve --data DIR), stop it, then migrate"
            case .unknownMigrations(let names):
                "the SQLite database has schema versions this carehub does not know (\(names.joined(separator: ", "))): migrate with the carehub that wrote it"
            case .targetNotEmpty(let table): "the PostgreSQL database is not empty (table \(table) has rows): migrate into a new, empty database"
            case .missingTable(let table): "the PostgreSQL schema has no table \(table)"
            case .missingColumn(let table, let column, let side): "column \(table).\(column) is missing from the \(side) database"
            case .noPrimaryKey(let table): "table \(table) has no primary key in PostgreSQL"
            case .unconvertible(let table, let column, let reason): "cannot copy \(table).\(column): \(reason)"
            case .verificationFailed(let report):
                if let bad = report.mismatch {
                    "table \(bad.table) differs after the copy (SQLite \(bad.sourceRows) rows, PostgreSQL \(bad.targetRows) rows\(bad.sourceRows == bad.targetRows ? ", different content" : "")); nothing was committed"
                } else { "the copy did not verify; nothing was committed" }
            case .auditChainDiffers(let source, let target):
                "the audit chain differs after the copy (SQLite: \(source); PostgreSQL: \(target)); nothing was committed"
            }
        }
    }

    /// Rows per INSERT statement, at most; a statement also stops at about 4 MiB of values.
    public static let batchRows = 500
    private static let batchBytes = 4 << 20

    /// Copies the data set of `directory` into the database at `url` (its schema is applied
    /// first), checks it, and commits only when the check passes. With `auditKey` the audit
    /// chain is recomputed on both sides as well.
    public static func migrate(directory: String, url: String, auditKey: SymmetricKey? = nil) async throws -> Report {
        let source = try openSource(directory: directory)
        try checkMigrations(source)
        let database = try await PostgresDatabase.open(url: url, connections: 1)
        do {
            let report = try await database.client.transaction { tx in
                try source.read { db in try copy(from: db, to: tx, auditKey: auditKey) }
            }
            await database.client.close()
            return report
        } catch {
            await database.client.close()
            throw error
        }
    }

    /// The check alone, on a copy already made: the tables' counts and digests (and, with
    /// `auditKey`, the audit chain) of the data set in `directory` against the database at `url`.
    /// Reads only; the PostgreSQL transaction is rolled back.
    public static func verify(directory: String, url: String, auditKey: SymmetricKey? = nil) async throws -> Report {
        let source = try openSource(directory: directory)
        let client = try PostgresClient(url: url, connections: 1)
        do {
            let report = try await client.transaction(isolation: .repeatableRead) { tx in
                try source.read { db -> Report in
                    let plan = try makePlan(db, tx)
                    let checks = try plan.map { try check($0, db, tx) }
                    let audit = try auditKey.map { try auditVerdicts(db, tx, key: $0).target }
                    return Report(tables: checks, auditChain: audit)
                }
            }
            await client.close()
            return report
        } catch {
            await client.close()
            throw error
        }
    }

    // MARK: - Source

    private static func openSource(directory: String) throws -> DatabaseQueue {
        let path = (directory as NSString).appendingPathComponent(CareHubDatabase.fileName)
        guard FileManager.default.fileExists(atPath: path) else { throw Failure.noDatabase(path) }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    private static func checkMigrations(_ source: DatabaseQueue) throws {
        let applied = try source.read { db in
            try db.tableExists("grdb_migrations") ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
        }
        let registered = CareHubDatabase.migrationNames
        let pending = registered.filter { !applied.contains($0) }
        if !pending.isEmpty { throw Failure.migrationsPending(pending) }
        let unknown = applied.filter { !registered.contains($0) }.sorted()
        if !unknown.isEmpty { throw Failure.unknownMigrations(unknown) }
    }

    // MARK: - Plan

    /// One target column filled from the source: its name, PostgreSQL type and the SQLite
    /// expression that gives its value.
    struct Column {
        let name: String
        let type: String
        let source: String
        let identity: Bool
    }

    struct Table {
        let name: String
        let columns: [Column]
        let primaryKey: [String]
    }

    /// Source expressions that differ from the column itself.
    private static let adjusted: [String: [String: String]] = [
        // PostgreSQL's last_seq is the counter the next message's seq comes from.
        "conversations": ["last_seq": "MAX(last_seq, IFNULL((SELECT MAX(m.seq) FROM messages m WHERE m.conversation = conversations.id), 0))"],
    ]

    /// Every SQLite table with its target columns, parents before children.
    static func makePlan(_ db: Database, _ tx: PostgresTransaction) throws -> [Table] {
        let sourceTables = try String.fetchAll(
            db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'grdb_migrations' ORDER BY name")
        let targetTables = Set(try targetTableNames(tx))
        var tables: [Table] = []
        for name in sourceTables {
            guard targetTables.contains(name) else { throw Failure.missingTable(name) }
            let sourceColumns = try db.columns(in: name).map(\.name)
            // A WITHOUT ROWID table (messages) refuses the name.
            let hasRowID = (try? db.execute(sql: "SELECT rowid FROM \(quoted(name)) LIMIT 0")) != nil
            var columns: [Column] = []
            for row in try tx.query(
                """
                SELECT column_name, data_type, is_nullable, column_default, is_identity FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position
                """, [.text(name)])
            {
                let column = try row.string("column_name"), type = try row.string("data_type")
                let identity = try row.string("is_identity") == "YES"
                if sourceColumns.contains(column) {
                    columns.append(Column(name: column, type: type, source: adjusted[name]?[column] ?? quoted(column), identity: identity))
                } else if column == "rowid" && hasRowID {
                    columns.append(Column(name: column, type: type, source: "rowid", identity: identity))
                } else if try row.string("is_nullable") == "YES" || !row.isNull("column_default") || identity {
                    continue  // left to its default
                } else {
                    throw Failure.missingColumn(table: name, column: column, side: "SQLite")
                }
            }
            for column in sourceColumns where !columns.contains(where: { $0.name == column }) {
                throw Failure.missingColumn(table: name, column: column, side: "PostgreSQL")
            }
            let primaryKey = try tx.query(
                """
                SELECT a.attname FROM pg_index i
                CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = format('%I', $1::text)::regclass AND i.indisprimary ORDER BY k.n
                """, [.text(name)]
            ).map { try $0.string("attname") }
            guard !primaryKey.isEmpty, primaryKey.allSatisfy({ key in columns.contains { $0.name == key } }) else { throw Failure.noPrimaryKey(name) }
            tables.append(Table(name: name, columns: columns, primaryKey: primaryKey))
        }
        // Parents first, by the target's foreign keys; otherwise by name.
        var parents: [String: Set<String>] = [:]
        for row in try tx.query(
            """
            SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k
            JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
            WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace
            """)
        {
            let child = try row.string("child"), parent = try row.string("parent")
            if child != parent { parents[child, default: []].insert(parent) }
        }
        var ordered: [Table] = []
        var remaining = tables
        while !remaining.isEmpty {
            let placed = Set(ordered.map(\.name))
            let copied = Set(tables.map(\.name))
            guard let next = remaining.firstIndex(where: { table in
                (parents[table.name] ?? []).allSatisfy { placed.contains($0) || !copied.contains($0) }
            }) else { throw Failure.unconvertible(table: remaining[0].name, column: "*", reason: "its foreign keys form a cycle") }
            ordered.append(remaining.remove(at: next))
        }
        return ordered
    }

    private static func targetTableNames(_ tx: PostgresTransaction) throws -> [String] {
        try tx.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).map { try $0.string("table_name") }
    }

    static func quoted(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: - Copy

    private static func copy(from db: Database, to tx: PostgresTransaction, auditKey: SymmetricKey?) throws -> Report {
        let all = try targetTableNames(tx)
        // No other writer while the copy runs; readers of the target may still look.
        try tx.execute("LOCK TABLE \(all.map(quoted).joined(separator: ", ")) IN EXCLUSIVE MODE")
        for table in all where table != "schema_migrations" {
            let rows =
                table == "audit_tip"
                ? try tx.query("SELECT count(*) AS n FROM audit_tip WHERE NOT (last_id = 0 AND hash IS NULL)")
                : try tx.query("SELECT count(*) AS n FROM (SELECT 1 FROM \(quoted(table)) LIMIT 1) AS t")
            if try rows[0].int("n") > 0 { throw Failure.targetNotEmpty(table: table) }
        }
        let plan = try makePlan(db, tx)
        for table in plan { try copy(table, db, tx) }
        let checks = try plan.map { try check($0, db, tx) }
        let report: Report
        if let auditKey {
            let verdicts = try auditVerdicts(db, tx, key: auditKey)
            report = Report(tables: checks, auditChain: verdicts.target)
            if report.mismatch == nil, verdicts.source != verdicts.target {
                throw Failure.auditChainDiffers(source: verdicts.source, target: verdicts.target)
            }
        } else {
            report = Report(tables: checks, auditChain: nil)
        }
        if report.mismatch != nil { throw Failure.verificationFailed(report) }
        return report
    }

    private static func selectSQL(_ table: Table) -> String {
        "SELECT \(table.columns.map(\.source).joined(separator: ", ")) FROM \(quoted(table.name)) ORDER BY \(table.primaryKey.map(quoted).joined(separator: ", "))"
    }

    private static func copy(_ table: Table, _ db: Database, _ tx: PostgresTransaction) throws {
        let names = table.columns.map { quoted($0.name) }.joined(separator: ", ")
        let isAudit = table.name == "audit_events"
        let idIndex = table.columns.firstIndex { $0.name == "id" }
        var tip: Int64 = 0
        var batch: [PostgresValue] = []
        var rowsInBatch = 0, bytesInBatch = 0
        func flush() throws {
            guard rowsInBatch > 0 else { return }
            let width = table.columns.count
            let tuples = (0..<rowsInBatch).map { row in
                "(" + (0..<width).map { "$\(row * width + $0 + 1)" }.joined(separator: ", ") + ")"
            }
            try tx.execute("INSERT INTO \(quoted(table.name)) (\(names)) VALUES \(tuples.joined(separator: ", "))", batch)
            batch.removeAll(keepingCapacity: true)
            rowsInBatch = 0
            bytesInBatch = 0
        }
        let cursor = try Row.fetchCursor(db, sql: selectSQL(table))
        while let row = try cursor.next() {
            let values = try normalise(row, table)
            if isAudit, let idIndex, case .int(let id) = values[idIndex], id != tip + 1 {
                // The trigger accepts only the event after the tip: a trail that does not start at
                // 1, or has a gap, moves the tip to the event before (the chain check reports it).
                try flush()
                try tx.execute("UPDATE audit_tip SET last_id = $1", [.int(id - 1)])
            }
            if isAudit, let idIndex, case .int(let id) = values[idIndex] { tip = id }
            batch += values
            rowsInBatch += 1
            bytesInBatch += values.reduce(0) { $0 + size($1) }
            if rowsInBatch >= batchRows || bytesInBatch >= batchBytes || batch.count + table.columns.count > 60_000 { try flush() }
        }
        try flush()
        if isAudit {
            // The trigger has moved the tip with every row; set it to the last event outright.
            let last = try tx.query("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
            if let last = last.first {
                try tx.execute("UPDATE audit_tip SET last_id = $1, hash = $2", [try last.value("id"), try last.value("hash")])
            }
        }
        // Identity sequences continue past the copied ids (and past SQLite's sqlite_sequence).
        for column in table.columns where column.identity {
            var next = try tx.query("SELECT COALESCE(MAX(\(quoted(column.name))), 0) AS n FROM \(quoted(table.name))")[0].int("n")
            if try db.tableExists("sqlite_sequence"), column.name == "id",
                let seq = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = ?", arguments: [table.name])
            {
                next = max(next, seq)
            }
            if next > 0 {
                try tx.execute("SELECT setval(pg_get_serial_sequence($1, $2), $3)", [.text(quoted(table.name)), .text(column.name), .int(next)])
            }
        }
    }

    private static func size(_ value: PostgresValue) -> Int {
        switch value {
        case .text(let text): text.utf8.count
        case .bytea(let bytes): bytes.count
        default: 8
        }
    }

    /// A source row's values as the target columns' types hold them.
    private static func normalise(_ row: Row, _ table: Table) throws -> [PostgresValue] {
        try table.columns.enumerated().map { index, column in
            let value: DatabaseValue = row[index]
            do {
                return try convert(value, to: column.type)
            } catch let error as Unconvertible {
                throw Failure.unconvertible(table: table.name, column: column.name, reason: error.reason)
            }
        }
    }

    static func convert(_ value: DatabaseValue, to type: String) throws(Unconvertible) -> PostgresValue {
        switch (value.storage, type) {
        case (.null, _): return .null
        case (.int64(let int), "boolean"):
            guard int == 0 || int == 1 else { throw "\(int) is not a 0/1 flag" }
            return .bool(int == 1)
        case (.int64(let int), "bigint"), (.int64(let int), "integer"), (.int64(let int), "smallint"): return .int(int)
        case (.double(let double), "bigint"), (.double(let double), "integer"), (.double(let double), "smallint"):
            guard let int = Int64(exactly: double) else { throw "\(double) is not an integer" }
            return .int(int)
        case (.int64(let int), "double precision"): return .double(Double(int))
        case (.double(let double), "double precision"): return .double(double)
        case (.blob(let data), "bytea"): return .bytea(Array(data))
        case (.string(let text), "bytea"): return .bytea(Array(text.utf8))
        case (.string(let text), "text"):
            guard !text.utf8.contains(0) else { throw "a text value holds NUL, which PostgreSQL text cannot" }
            return .text(text)
        case (.blob(let data), "text"):
            guard let text = String(validating: data, as: UTF8.self), !data.contains(0) else { throw "a blob in a text column is not UTF-8 text" }
            return .text(text)
        default:
            throw "a value stored as \(value.storage.kind) does not fit PostgreSQL \(type)"
        }
    }

    // MARK: - Check

    /// The table's row count and digest on both sides.
    static func check(_ table: Table, _ db: Database, _ tx: PostgresTransaction) throws -> TableCheck {
        var source = Digest(table)
        let cursor = try Row.fetchCursor(db, sql: selectSQL(table))
        while let row = try cursor.next() { source.add(try normalise(row, table)) }
        let sourceCount = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(quoted(table.name))") ?? -1

        var target = Digest(table)
        let columns = table.columns.map { quoted($0.name) }.joined(separator: ", ")
        try tx.execute(
            "DECLARE carehub_migrate_check NO SCROLL CURSOR FOR SELECT \(columns) FROM \(quoted(table.name)) ORDER BY \(table.primaryKey.map(quoted).joined(separator: ", "))")
        while true {
            let rows = try tx.query("FETCH FORWARD 1000 FROM carehub_migrate_check")
            if rows.isEmpty { break }
            for row in rows { target.add(try table.columns.map { try row.value($0.name) }) }
        }
        try tx.execute("CLOSE carehub_migrate_check")
        let targetCount = Int(try tx.query("SELECT count(*) AS n FROM \(quoted(table.name))")[0].int("n"))
        return TableCheck(
            table: table.name, sourceRows: sourceCount, targetRows: targetCount, sourceDigest: source.value, targetDigest: target.value)
    }

    /// SHA-256 chained over a table's rows: the first value covers the table and column names,
    /// each next one the previous value and a row's values, each tagged with its kind and, when
    /// variable, its length.
    struct Digest {
        private(set) var value: [UInt8]
        private(set) var rows = 0

        init(_ table: Table) {
            value = SHA256.hash(Array(([table.name] + table.columns.map(\.name)).joined(separator: "\u{0}").utf8))
        }

        mutating func add(_ values: [PostgresValue]) {
            var bytes = value
            for value in values {
                switch value {
                case .null: bytes.append(0)
                case .int(let int): bytes.append(1); append(UInt64(bitPattern: int), to: &bytes)
                case .double(let double): bytes.append(2); append(double.bitPattern, to: &bytes)
                case .bool(let bool): bytes.append(3); bytes.append(bool ? 1 : 0)
                case .text(let text):
                    bytes.append(4); append(UInt64(text.utf8.count), to: &bytes); bytes += text.utf8
                case .bytea(let data):
                    bytes.append(5); append(UInt64(data.count), to: &bytes); bytes += data
                }
            }
            value = SHA256.hash(bytes)
            rows += 1
        }

        private func append(_ number: UInt64, to bytes: inout [UInt8]) {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: number >> UInt64(shift))) }
        }
    }

    // MARK: - Audit chain

    /// The audit chain recomputed from each side's rows, heads and checkpoints.
    static func auditVerdicts(_ db: Database, _ tx: PostgresTransaction, key: SymmetricKey) throws -> (source: AuditVerdict, target: AuditVerdict) {
        var source = try AuditChainVerifier(auditKey: key)
        sourceWalk: do {
            for row in try Row.fetchAll(db, sql: "SELECT seq, hash, keyed_from, at, mac FROM audit_heads ORDER BY seq") {
                guard source.head(seq: row["seq"], hash: Array(row["hash"] as Data), keyedFrom: row["keyed_from"], at: row["at"], mac: Array(row["mac"] as Data))
                else { break sourceWalk }
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, last_event_id, hash, mac FROM audit_checkpoints ORDER BY last_event_id, id") {
                guard source.checkpoint(id: row["id"], lastEventID: row["last_event_id"], hash: Array(row["hash"] as Data), mac: Array(row["mac"] as Data))
                else { break sourceWalk }
            }
            let rows = try Row.fetchCursor(db, sql: "SELECT id, at, org, actor, address, action, target, detail, hash FROM audit_events ORDER BY id")
            while let row = try rows.next() {
                let event = AuditEvent(
                    at: Date(timeIntervalSince1970: Double(row["at"] as Int64) / 1000), org: OrgID(row["org"]), actor: row["actor"],
                    address: row["address"], action: row["action"], target: row["target"], detail: row["detail"])
                guard source.row(id: row["id"], event: event, stored: (row["hash"] as Data?).map(Array.init) ?? []) else { break }
            }
        }

        var target = try AuditChainVerifier(auditKey: key)
        targetWalk: do {
            for row in try tx.query("SELECT seq, hash, keyed_from, at, mac FROM audit_heads ORDER BY seq") {
                guard target.head(seq: try row.int("seq"), hash: try row.bytes("hash"), keyedFrom: try row.int("keyed_from"), at: try row.int("at"), mac: try row.bytes("mac"))
                else { break targetWalk }
            }
            for row in try tx.query("SELECT id, last_event_id, hash, mac FROM audit_checkpoints ORDER BY last_event_id, id") {
                guard target.checkpoint(id: try row.int("id"), lastEventID: try row.int("last_event_id"), hash: try row.bytes("hash"), mac: try row.bytes("mac"))
                else { break targetWalk }
            }
            try tx.execute("DECLARE carehub_migrate_audit NO SCROLL CURSOR FOR SELECT id, at, org, actor, address, action, target, detail, hash FROM audit_events ORDER BY id")
            defer { _ = try? tx.execute("CLOSE carehub_migrate_audit") }
            fetching: while true {
                let rows = try tx.query("FETCH FORWARD 1000 FROM carehub_migrate_audit")
                if rows.isEmpty { break }
                for row in rows {
                    let event = AuditEvent(
                        at: Date(timeIntervalSince1970: Double(try row.int("at")) / 1000), org: OrgID(try row.string("org")), actor: try row.string("actor"),
                        address: try row.string("address"), action: try row.string("action"), target: try row.string("target"), detail: try row.string("detail"))
                    guard target.row(id: try row.int("id"), event: event, stored: try row.isNull("hash") ? [] : try row.bytes("hash")) else { break fetching }
                }
            }
        }
        return (source.finish(anchor: nil).verdict, target.finish(anchor: nil).verdict)
    }
}

/// Why a source value does not fit its target column.
struct Unconvertible: Error, ExpressibleByStringInterpolation {
    let reason: String
    init(stringLiteral value: String) { reason = value }
    init(stringInterpolation: DefaultStringInterpolation) { reason = String(stringInterpolation: stringInterpolation) }
}

extension DatabaseValue.Storage {
    fileprivate var kind: String {
        switch self {
        case .null: "NULL"
        case .int64: "an integer"
        case .double: "a real"
        case .string: "text"
        case .blob: "a blob"
        }
    }
}
