import CareHubAudit
import CareHubCore
import CareHubCrypto
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// The audit trail in SQLite: append-only, and tamper-evident without trusting the database.
///
/// Each row stores `HMAC-SHA256(chain key, previous row's value ‖ canonical encoding of the row)`,
/// so editing, deleting or reordering a row breaks the chain from that row on, and nobody without
/// the audit key can chain rows of their own. Every commit that adds rows also stores a signed
/// head (`audit_heads`: the last row's id and value, the time, an HMAC under the audit key) and
/// hands it to the ``AuditHeadSink``, which keeps it outside the database. `verify` checks rows,
/// heads and an anchored head, and names the first row that does not hold.
///
/// Trails written before the chain was keyed keep their unkeyed SHA-256 rows and their signed
/// checkpoints (`audit_checkpoints`): rows before the boundary every signed head names
/// (`keyed_from`) are checked the old way. The boundary is the first row after the last signed
/// checkpoint, so unkeyed rows nothing signed are never vouched for. The hub never updates or
/// deletes audit rows; retention is therefore unlimited (at least the six years HIPAA asks).
public final class SQLiteAuditLog: AuditLog {
    /// A verdict on the chain.
    public typealias Verdict = AuditVerdict

    /// A verdict for one organisation's admin (CareHubAudit's, shared by every store).
    public typealias OrgVerdict = AuditOrgVerdict

    private let database: CareHubDatabase
    private let keys: AuditKeys?
    private let sink: (any AuditHeadSink)?
    private struct Writer {
        var queue: [(AuditEvent, CheckedContinuation<Void, any Error>)] = []
        var draining = false
    }
    private let writer = Mutex(Writer())
    private let writerQueue = DispatchQueue(label: "carehub.audit-writer")
    /// Where the keyed chain starts, once a committed head has said so (it never changes).
    private let keyedFrom = Mutex<Int64?>(nil)

    /// `checkpointKey` (the audit key) chains rows and signs heads; without it (read-only tools)
    /// nothing can be appended. `sink` receives each committed head.
    public init(database: CareHubDatabase, checkpointKey: SymmetricKey? = nil, sink: (any AuditHeadSink)? = nil) {
        self.database = database
        self.keys = checkpointKey.flatMap { try? AuditKeys($0) }
        self.sink = sink
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
    /// message with its delivery record; account changes commit with their event), with the signed
    /// head that covers them. The head reaches the sink once the transaction commits.
    func append(_ events: [AuditEvent], within db: Database) throws {
        guard !events.isEmpty else { return }
        guard let keys else { throw StorageError.auditKeyMissing }
        let head = try Self.head(db)
        let boundary = try keyedFrom(db, keys: keys)
        let chained = keys.chain(events, afterID: head?.id ?? 0, hash: head?.hash, keyedFrom: boundary, at: Date().epochMilliseconds)
        let insert = try db.cachedStatement(sql: "INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        for stored in chained.rows {
            let event = stored.event
            try HotInsert.run(insert) { row in
                row.integer(stored.id)
                row.integer(AuditChain.milliseconds(event.at))
                for field in [event.org.rawValue, event.actor, event.address, event.action, event.target, event.detail] { row.text(field) }
                row.blob(stored.hash)
            }
        }
        let signed = chained.head
        let insertHead = try db.cachedStatement(sql: "INSERT INTO audit_heads (seq, hash, keyed_from, at, mac) VALUES (?, ?, ?, ?, ?)")
        try HotInsert.run(insertHead) { row in
            row.integer(signed.seq)
            row.blob(signed.hash)
            row.integer(boundary)
            row.integer(chained.at)
            row.blob(signed.signature)
        }
        db.afterNextTransaction { [self] _ in
            keyedFrom.withLock { $0 = boundary }
            sink?.publish(signed)
        }
    }

    /// Where the keyed chain starts: what the signed heads say, or, on a trail without one, the
    /// first row after the last validly signed legacy checkpoint (1 on a new trail).
    private func keyedFrom(_ db: Database, keys: AuditKeys) throws -> Int64 {
        if let known = keyedFrom.withLock({ $0 }) { return known }
        if let stored = try Int64.fetchOne(db, sql: "SELECT keyed_from FROM audit_heads ORDER BY seq DESC LIMIT 1") { return stored }
        let checkpoints = try Row.fetchAll(db, sql: "SELECT last_event_id, hash, mac FROM audit_checkpoints").map { row in
            (lastEventID: row["last_event_id"] as Int64, hash: Array(row["hash"] as Data), mac: Array(row["mac"] as Data))
        }
        return keys.keyedFrom(checkpoints: checkpoints)
    }

    /// Hands the newest committed head to the sink and waits until it is kept (the hub does this
    /// at shutdown). Every commit is signed as it happens, so nothing is left to sign; rows that no
    /// head covers are never signed afterwards.
    public func checkpoint() throws {
        sink?.flush()
    }

    /// The hash row `id` holding `event` gets after a row hashed `previous` in the unkeyed
    /// encoding of trails written before the chain was keyed (the keyed chain MACs the same bytes).
    public static func chainHash(previous: [UInt8], id: Int64, event: AuditEvent) -> [UInt8] {
        AuditChain.hash(previous: previous, id: id, event: event)
    }

    /// The keyed chain value row `id` holding `event` gets after a row valued `previous`, and the
    /// signature of a head, as the hub computes them under `auditKey`: for tools that write rows
    /// as the hub does (the benchmark's storage floor).
    public struct ChainKeys: Sendable {
        fileprivate let keys: AuditKeys

        /// The keys derived from the audit key.
        public init(auditKey: SymmetricKey) throws { keys = try AuditKeys(auditKey) }

        /// The chain value of row `id`.
        public func chainHash(previous: [UInt8], id: Int64, event: AuditEvent) -> [UInt8] {
            AuditChain.hash(key: keys.chain, previous: previous, id: id, event: event)
        }

        /// The signature of a head stored in `audit_heads`.
        public func headSignature(seq: Int64, keyedFrom: Int64, at: Int64, hash: [UInt8]) -> [UInt8] {
            keys.head.mac(AuditChain.headMessage(seq: seq, keyedFrom: keyedFrom, at: at, hash: hash))
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

    /// A stored event with its row id (CareHubAudit's, shared by every store).
    public typealias Entry = AuditEntry

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

    /// Up to `limit` of an organisation's events with ids above `after`, oldest first (an export, page by page).
    public func page(org: OrgID, after: Int64, limit: Int) async throws -> [Entry] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM audit_events WHERE org = ? AND id > ? ORDER BY id LIMIT ?",
                arguments: [org.rawValue, after, limit]
            ).map { Entry(id: $0["id"], event: AuditChain.event($0)) }
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

    /// Walks the whole chain, its signed heads and legacy checkpoints, and, when given, checks
    /// that the trail still holds `anchor` (a head kept outside the database) unchanged and does
    /// not end before it; names the first row that does not hold.
    public func verify(checkpointKey: SymmetricKey, anchor: AuditHead? = nil) async throws -> Verdict {
        try await walk(checkpointKey: checkpointKey, anchor: anchor).verdict
    }

    /// Verifies the whole chain as ``verify(checkpointKey:anchor:)`` does, and reports it as
    /// `org`'s admin may see it: the organisation's own event count, and the broken event only
    /// when it is the organisation's.
    public func verify(checkpointKey: SymmetricKey, for org: OrgID) async throws -> OrgVerdict {
        let (verdict, brokenOrg) = try await walk(checkpointKey: checkpointKey, anchor: nil)
        let events = try await database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_events WHERE org = ?", arguments: [org.rawValue]) ?? 0
        }
        return OrgVerdict(verdict, brokenOrg: brokenOrg, for: org, events: events)
    }

    private func walk(checkpointKey: SymmetricKey, anchor: AuditHead?) async throws -> (verdict: Verdict, brokenOrg: String?) {
        return try await database.pool.read { db in
            var verifier = try AuditChainVerifier(auditKey: checkpointKey)
            // Signed heads, then legacy checkpoints: every signature first.
            for row in try Row.fetchAll(db, sql: "SELECT seq, hash, keyed_from, at, mac FROM audit_heads ORDER BY seq") {
                guard verifier.head(seq: row["seq"], hash: Array(row["hash"] as Data), keyedFrom: row["keyed_from"], at: row["at"], mac: Array(row["mac"] as Data))
                else { return verifier.finish(anchor: anchor) }
            }
            for row in try Row.fetchAll(db, sql: "SELECT * FROM audit_checkpoints ORDER BY last_event_id, id") {
                guard verifier.checkpoint(id: row["id"], lastEventID: row["last_event_id"], hash: Array(row["hash"] as Data), mac: Array(row["mac"] as Data))
                else { return verifier.finish(anchor: anchor) }
            }
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM audit_events ORDER BY id")
            while let row = try rows.next() {
                guard verifier.row(id: row["id"], event: AuditChain.event(row), stored: (row["hash"] as Data?).map(Array.init) ?? [])
                else { break }
            }
            return verifier.finish(anchor: anchor)
        }
    }
}

extension AuditChain {
    /// The event a stored row holds.
    static func event(_ row: Row) -> AuditEvent {
        AuditEvent(
            at: date(milliseconds: row["at"]), org: OrgID(row["org"]), actor: row["actor"],
            address: row["address"], action: row["action"], target: row["target"], detail: row["detail"])
    }

    /// The unkeyed value of a stored row after `previous`.
    static func hash(previous: [UInt8], row: Row) -> [UInt8] {
        hash(previous: previous, id: row["id"], event: event(row))
    }
}
