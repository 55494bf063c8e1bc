import CareHubCore
import CareHubCrypto
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// The audit trail in SQLite: append-only, and tamper-evident.
///
/// Each row stores `SHA-256(previous row's hash ‖ canonical encoding of the row)`, so editing,
/// deleting or reordering a row breaks the chain from that row on. Every `checkpointInterval`
/// rows (and at close) the hub signs the chain head with an HMAC key kept apart from the data keys;
/// `verify` checks both and names the first row that does not hold. The hub never updates or
/// deletes audit rows; retention is therefore unlimited (at least the six years HIPAA asks).
public final class SQLiteAuditLog: AuditLog {
    /// A verdict on the chain.
    public enum Verdict: Sendable, Equatable, CustomStringConvertible {
        case holds(events: Int, checkpoints: Int)
        case broken(eventID: Int64, reason: String)

        public var description: String {
            switch self {
            case .holds(let events, let checkpoints): "the audit chain holds: \(events) events, \(checkpoints) signed checkpoints"
            case .broken(let id, let reason): "the audit chain is broken at event \(id): \(reason)"
            }
        }
    }

    private let database: CareHubDatabase
    private let checkpointKey: SymmetricKey?
    private let checkpointInterval: Int
    private struct Writer {
        var queue: [(AuditEvent, CheckedContinuation<Void, any Error>)] = []
        var draining = false
        var sinceCheckpoint = 0
    }
    private let writer = Mutex(Writer())
    private let writerQueue = DispatchQueue(label: "carehub.audit-writer")

    /// `checkpointKey` signs checkpoints; without it (read-only tools) none are written.
    public init(database: CareHubDatabase, checkpointKey: SymmetricKey? = nil, checkpointInterval: Int = 100) {
        self.database = database
        self.checkpointKey = checkpointKey
        self.checkpointInterval = checkpointInterval
    }

    /// Appends an event; returns once it is committed. Concurrent events share a transaction.
    public func record(_ event: AuditEvent) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let start = writer.withLock { state -> Bool in
                state.queue.append((event, continuation))
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if start { writerQueue.async { self.drain() } }
        }
    }

    private func drain() {
        while true {
            let batch = writer.withLock { state -> [(AuditEvent, CheckedContinuation<Void, any Error>)] in
                defer { state.queue.removeAll(keepingCapacity: true) }
                if state.queue.isEmpty { state.draining = false }
                return state.queue
            }
            guard !batch.isEmpty else { return }
            do {
                try database.pool.write { db in try append(batch.map(\.0), within: db) }
                for (_, continuation) in batch { continuation.resume() }
            } catch {
                for (_, continuation) in batch { continuation.resume(throwing: error) }
            }
        }
    }

    /// Appends `events` inside a transaction the caller holds (the message store commits a HIPAA
    /// message with its delivery record), counting them toward the next signed checkpoint.
    func append(_ events: [AuditEvent], within db: Database) throws {
        guard !events.isEmpty else { return }
        try Self.append(events, db)
        let due = writer.withLock { state -> Bool in
            state.sinceCheckpoint += events.count
            return state.sinceCheckpoint >= checkpointInterval
        }
        if due { try checkpoint(db) }
    }

    /// Signs the chain head now (the hub does this at shutdown too).
    public func checkpoint() throws {
        try database.pool.write { db in try checkpoint(db) }
    }

    private func checkpoint(_ db: Database) throws {
        guard let checkpointKey else { return }
        guard let (id, storedHash) = try Self.head(db), let hash = storedHash else { return }
        let mac = checkpointKey.withUnsafeBytes { HMAC.sha256(key: Array($0), message: Self.checkpointMessage(id: id, hash: hash)) }
        try db.execute(
            sql: "INSERT INTO audit_checkpoints (last_event_id, hash, mac, at) VALUES (?, ?, ?, ?)",
            arguments: [id, Data(hash), Data(mac), Date().timeIntervalSince1970])
        writer.withLock { $0.sinceCheckpoint = 0 }
    }

    /// The hash row `id` holding `event` gets after a row hashed `previous`: the chain's encoding,
    /// for tools that write rows as the hub does (the benchmark's storage floor).
    public static func chainHash(previous: [UInt8], id: Int64, event: AuditEvent) -> [UInt8] {
        AuditChain.hash(previous: previous, id: id, event: event)
    }

    static func checkpointMessage(id: Int64, hash: [UInt8]) -> [UInt8] {
        Array("carehub.audit.checkpoint.v1|\(id)|".utf8) + hash
    }

    /// Appends inside an open transaction (also used by account changes, atomically with them).
    static func append(_ event: AuditEvent, _ db: Database) throws {
        try append(CollectionOfOne(event), db)
    }

    /// Appends `events` in order inside an open transaction, reading the chain head once.
    static func append(_ events: some Collection<AuditEvent>, _ db: Database) throws {
        let head = try Self.head(db)
        var previous = head?.hash ?? AuditChain.genesis
        var id = head?.id ?? 0
        let insert = try db.cachedStatement(sql: "INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        for event in events {
            id += 1
            let hash = AuditChain.hash(previous: previous, id: id, event: event)
            try HotInsert.run(insert) { row in
                row.integer(id)
                row.integer(AuditChain.milliseconds(event.at))
                for field in [event.org.rawValue, event.actor, event.address, event.action, event.target, event.detail] { row.text(field) }
                row.blob(hash)
            }
            previous = hash
        }
    }

    /// The chain head, the last event's id and hash (nil before the first event), read with the
    /// statement's columns directly: the message writer reads it once per commit.
    static func head(_ db: Database) throws -> (id: Int64, hash: [UInt8]?)? {
        let statement = try db.cachedStatement(sql: "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        defer { sqlite3_reset(handle) }
        switch sqlite3_step(handle) {
        case SQLITE_ROW:
            let id = sqlite3_column_int64(handle, 0)
            guard sqlite3_column_type(handle, 1) != SQLITE_NULL else { return (id, nil) }
            let count = Int(sqlite3_column_bytes(handle, 1))
            let bytes = sqlite3_column_blob(handle, 1)
            return (id, bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? [])
        case SQLITE_DONE:
            return nil
        case let code:
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: sqlite3_errmsg(db.sqliteConnection).map { String(cString: $0) }, sql: statement.sql)
        }
    }

    // MARK: Reading

    /// A stored event with its row id.
    public struct Entry: Sendable, Hashable {
        public let id: Int64
        public let event: AuditEvent

        /// The event's fields as JSON (`id`, `at` in epoch milliseconds, `org`, `actor`,
        /// `address`, `action`, `target`, `detail`), for `carehub audit export` and the admin API.
        public func write(to writer: inout JSONWriter) {
            writer.field("id", id)
            writer.field("at", event.at.epochMilliseconds)
            writer.field("org", event.org.rawValue)
            writer.field("actor", event.actor)
            writer.field("address", event.address)
            writer.field("action", event.action)
            writer.field("target", event.target)
            writer.field("detail", event.detail)
        }
    }

    /// Events, oldest first, filtered by organisation, start time, actor, target or action.
    public func entries(org: OrgID? = nil, since: Date? = nil, actor: String? = nil, target: String? = nil, action: String? = nil, limit: Int = 1_000_000) throws -> [Entry] {
        try database.pool.read { db in
            var sql = "SELECT * FROM audit_events WHERE 1"
            var arguments: StatementArguments = []
            if let org { sql += " AND org = ?"; arguments += [org.rawValue] }
            if let since { sql += " AND at >= ?"; arguments += [AuditChain.milliseconds(since)] }
            if let actor { sql += " AND actor = ?"; arguments += [actor] }
            if let target { sql += " AND target = ?"; arguments += [target] }
            if let action { sql += " AND action = ?"; arguments += [action] }
            sql += " ORDER BY id LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { Entry(id: $0["id"], event: AuditChain.event($0)) }
        }
    }

    /// An organisation's events, newest first, with ids below `before` when given (for paging).
    public func recent(org: OrgID, before: Int64?, limit: Int) async throws -> [Entry] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM audit_events WHERE org = ? AND id < ? ORDER BY id DESC LIMIT ?",
                arguments: [org.rawValue, before ?? Int64.max, limit]
            ).map { Entry(id: $0["id"], event: AuditChain.event($0)) }
        }
    }

    /// Walks the whole chain and the signed checkpoints; names the first row that does not hold.
    public func verify(checkpointKey: SymmetricKey) async throws -> Verdict {
        try await database.pool.read { db in
            var previous = AuditChain.genesis
            var expectedID: Int64 = 1
            var hashes: [Int64: [UInt8]] = [:]
            var count = 0
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM audit_events ORDER BY id")
            while let row = try rows.next() {
                let id: Int64 = row["id"]
                if id != expectedID {
                    return .broken(eventID: expectedID, reason: id > expectedID ? "event \(expectedID) is missing (deleted)" : "events are out of order")
                }
                let stored = (row["hash"] as Data?).map(Array.init) ?? []
                let recomputed = AuditChain.hash(previous: previous, row: row)
                if stored != recomputed {
                    // Either this row was edited, or it was moved here from elsewhere in the chain.
                    let alone = AuditChain.hash(previous: previous, id: id, event: AuditChain.event(row))
                    let reason = alone == stored ? "it was altered" : "its contents or position were altered (edited, swapped or reordered)"
                    return .broken(eventID: id, reason: reason)
                }
                hashes[id] = stored
                previous = stored
                expectedID += 1
                count += 1
            }
            var checkpoints = 0
            for checkpoint in try Row.fetchAll(db, sql: "SELECT * FROM audit_checkpoints ORDER BY id") {
                let last: Int64 = checkpoint["last_event_id"]
                let hash = Array(checkpoint["hash"] as Data)
                let mac = Array(checkpoint["mac"] as Data)
                let expected = checkpointKey.withUnsafeBytes { HMAC.sha256(key: Array($0), message: Self.checkpointMessage(id: last, hash: hash)) }
                guard constantTimeEquals(expected, mac) else {
                    return .broken(eventID: last, reason: "checkpoint \(checkpoint["id"] as Int64) has an invalid signature")
                }
                guard let current = hashes[last] else {
                    return .broken(eventID: last, reason: "a signed checkpoint covers event \(last), which is gone (events were deleted from the end)")
                }
                guard current == hash else {
                    return .broken(eventID: last, reason: "the chain no longer matches signed checkpoint \(checkpoint["id"] as Int64)")
                }
                checkpoints += 1
            }
            return .holds(events: count, checkpoints: checkpoints)
        }
    }
}

/// The canonical encoding and hash of audit rows.
enum AuditChain {
    static let genesis = [UInt8](repeating: 0, count: 32)

    static func milliseconds(_ date: Date) -> Int64 { date.epochMilliseconds }

    static func event(_ row: Row) -> AuditEvent {
        let at: Int64 = row["at"]
        return AuditEvent(
            at: Date(timeIntervalSince1970: Double(at) / 1000), org: OrgID(row["org"]), actor: row["actor"],
            address: row["address"], action: row["action"], target: row["target"], detail: row["detail"])
    }

    static func hash(previous: [UInt8], row: Row) -> [UInt8] {
        hash(previous: previous, id: row["id"], event: event(row))
    }

    /// SHA-256 over the previous hash and the length-prefixed fields, id and time included.
    static func hash(previous: [UInt8], id: Int64, event: AuditEvent) -> [UInt8] {
        // Built in one buffer of the right size: every delivery of a HIPAA message hashes a row.
        let (id, at) = (String(id), String(milliseconds(event.at)))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(previous.count + 8 * 4 + id.utf8.count + at.utf8.count + event.org.rawValue.utf8.count
            + event.actor.utf8.count + event.address.utf8.count + event.action.utf8.count + event.target.utf8.count + event.detail.utf8.count)
        bytes.append(contentsOf: previous)
        func add(_ field: String) {
            withUnsafeBytes(of: UInt32(field.utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: field.utf8)
        }
        add(id)
        add(at)
        add(event.org.rawValue)
        add(event.actor)
        add(event.address)
        add(event.action)
        add(event.target)
        add(event.detail)
        return SHA256.hash(bytes)
    }
}
