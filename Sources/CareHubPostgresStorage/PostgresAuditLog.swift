import CareHubAudit
import CareHubCore
import CareHubCrypto
import CareHubPostgres
import Foundation
import Synchronization

/// The audit trail on PostgreSQL, shared by every hub node: append-only and tamper-evident
/// without trusting the database, as ``CareHubStorage/SQLiteAuditLog`` is, with the same rows.
///
/// Each row stores `HMAC-SHA256(chain key, previous row's value ‖ canonical encoding of the row)`
/// (``AuditChain``), and every transaction that adds rows stores a signed head (`audit_heads`)
/// and, once it commits, hands it to the ``AuditHeadSink``. The chain is one sequence over every
/// organisation and node, so each appending transaction first locks its tip
/// (`SELECT … FROM audit_tip FOR UPDATE`) and chains from what the previous writer committed:
/// writers on any node take turns and the chain never forks. The schema's trigger moves the tip
/// with every row and refuses a row that does not follow it (SQLSTATE 40001). Rows before the
/// boundary the signed heads name (`keyed_from`) are checked as unkeyed SHA-256 rows under their
/// legacy checkpoints (`audit_checkpoints`, copied from an older SQLite trail). The hub never
/// updates or deletes audit rows.
public final class PostgresAuditLog: AuditLog {
    /// A verdict on the chain.
    public typealias Verdict = AuditVerdict

    private let client: PostgresClient
    private let keys: AuditKeys?
    private let sink: (any AuditHeadSink)?
    private struct Writer {
        var queue: [(AuditEvent, CheckedContinuation<Void, any Error>)] = []
        var draining = false
    }
    private let writer = Mutex(Writer())
    /// Where the keyed chain starts, once a committed head has said so (it never changes).
    private let keyedFrom = Mutex<Int64?>(nil)
    /// Rows read per statement while verifying.
    private static let verifyPage = 5_000

    /// `checkpointKey` (the audit key) chains rows and signs heads; without it (read-only tools)
    /// nothing can be appended. `sink` receives each committed head.
    public init(database: PostgresDatabase, checkpointKey: SymmetricKey? = nil, sink: (any AuditHeadSink)? = nil) {
        self.client = database.client
        self.keys = checkpointKey.flatMap { try? AuditKeys($0) }
        self.sink = sink
    }

    /// Appends an event; returns once it is committed. Concurrent events of this node share a
    /// transaction (one turn at the tip's lock for all of them).
    public func record(_ event: AuditEvent) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let start = writer.withLock { state -> Bool in
                state.queue.append((event, continuation))
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = writer.withLock { state -> [(AuditEvent, CheckedContinuation<Void, any Error>)] in
                defer { state.queue.removeAll(keepingCapacity: true) }
                if state.queue.isEmpty { state.draining = false }
                return state.queue
            }
            guard !batch.isEmpty else { return }
            let events = batch.map(\.0)
            do {
                try await client.transaction { tx in try self.append(events, in: tx) }
                for (_, continuation) in batch { continuation.resume() }
            } catch {
                for (_, continuation) in batch { continuation.resume(throwing: error) }
            }
        }
    }

    /// Appends `events` inside a transaction the caller holds (the message store commits a HIPAA
    /// message with its delivery record; account changes commit with their event), with the signed
    /// head that covers them. It locks the chain's tip until that transaction ends, so append
    /// audit rows last in it; the head reaches the sink once the transaction commits.
    /// - Throws: ``PostgresStorageError/auditKeyMissing`` without the audit key; the server's
    ///   error when a statement fails (the caller's transaction is then aborted).
    public func append(_ events: [AuditEvent], in tx: PostgresTransaction) throws {
        guard !events.isEmpty else { return }
        guard let keys else { throw PostgresStorageError.auditKeyMissing }
        // The next writer, on any node, waits here until this transaction ends.
        guard let tip = try tx.query("SELECT last_id, hash FROM audit_tip FOR UPDATE").first else {
            throw PostgresError.unexpectedNull("audit_tip")
        }
        let tipID = try tip.int("last_id")
        let tipHash = try tip.isNull("hash") ? nil : try tip.bytes("hash")
        let boundary = try keyedFrom(tx, keys: keys)
        let chained = keys.chain(events, afterID: tipID, hash: tipHash, keyedFrom: boundary, at: Date().epochMilliseconds)
        // Multi-row inserts, 9 parameters a row, well under the protocol's 65535.
        var start = chained.rows.startIndex
        while start < chained.rows.endIndex {
            let rows = chained.rows[start..<min(start + 500, chained.rows.endIndex)]
            var sql = "INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES "
            var parameters: [PostgresValue] = []
            parameters.reserveCapacity(rows.count * 9)
            for (index, row) in rows.enumerated() {
                let base = index * 9
                sql += (index == 0 ? "" : ", ") + "(" + (1...9).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
                let event = row.event
                parameters += [
                    .int(row.id), .int(AuditChain.milliseconds(event.at)), .text(event.org.rawValue), .text(event.actor),
                    .text(event.address), .text(event.action), .text(event.target), .text(event.detail), .bytea(row.hash),
                ]
            }
            try tx.execute(sql, parameters)
            start = rows.endIndex
        }
        let head = chained.head
        try tx.execute(
            "INSERT INTO audit_heads (seq, hash, keyed_from, at, mac) VALUES ($1, $2, $3, $4, $5)",
            [.int(head.seq), .bytea(head.hash), .int(boundary), .int(chained.at), .bytea(head.signature)])
        tx.afterCommit { [self] in
            keyedFrom.withLock { $0 = boundary }
            sink?.publish(head)
        }
    }

    /// Where the keyed chain starts: what the signed heads say, or, on a trail without one, the
    /// first row after the last validly signed legacy checkpoint (1 on a new trail).
    private func keyedFrom(_ tx: PostgresTransaction, keys: AuditKeys) throws -> Int64 {
        if let known = keyedFrom.withLock({ $0 }) { return known }
        if let stored = try tx.query("SELECT keyed_from FROM audit_heads ORDER BY seq DESC LIMIT 1").first {
            return try stored.int("keyed_from")
        }
        let checkpoints = try tx.query("SELECT last_event_id, hash, mac FROM audit_checkpoints").map { row in
            (lastEventID: try row.int("last_event_id"), hash: try row.bytes("hash"), mac: try row.bytes("mac"))
        }
        return keys.keyedFrom(checkpoints: checkpoints)
    }

    /// Hands the newest committed head to the sink and waits until it is kept (the hub does this
    /// at shutdown). Every commit is signed as it happens, so nothing is left to sign.
    public func checkpoint() throws {
        sink?.flush()
    }

    // MARK: Reading

    /// A stored event with its row id.
    public typealias Entry = AuditEntry

    /// Events, oldest first, filtered by organisation, start time, actor, target or action.
    public func entries(org: OrgID? = nil, since: Date? = nil, actor: String? = nil, target: String? = nil, action: String? = nil, limit: Int = 1_000_000) async throws -> [Entry] {
        var sql = "SELECT * FROM audit_events WHERE TRUE"
        var parameters: [PostgresValue] = []
        func add(_ condition: String, _ value: PostgresValue) {
            parameters.append(value)
            sql += " AND \(condition) $\(parameters.count)"
        }
        if let org { add("org =", .text(org.rawValue)) }
        if let since { add("at >=", .int(AuditChain.milliseconds(since))) }
        if let actor { add("actor =", .text(actor)) }
        if let target { add("target =", .text(target)) }
        if let action { add("action =", .text(action)) }
        parameters.append(.int(Int64(limit)))
        sql += " ORDER BY id LIMIT $\(parameters.count)"
        return try await client.query(sql, parameters).map(Self.entry)
    }

    /// Up to `limit` of an organisation's events with ids above `after`, oldest first (an export, page by page).
    public func page(org: OrgID, after: Int64, limit: Int) async throws -> [Entry] {
        try await client.query(
            "SELECT * FROM audit_events WHERE org = $1 AND id > $2 ORDER BY id LIMIT $3",
            [.text(org.rawValue), .int(after), .int(Int64(limit))]
        ).map(Self.entry)
    }

    /// An organisation's events, newest first, with ids below `before` when given (for paging).
    public func recent(org: OrgID, before: Int64?, limit: Int) async throws -> [Entry] {
        try await client.query(
            "SELECT * FROM audit_events WHERE org = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            [.text(org.rawValue), .int(before ?? Int64.max), .int(Int64(limit))]
        ).map(Self.entry)
    }

    /// Walks the whole chain, its signed heads and legacy checkpoints, and, when given, checks
    /// that the trail still holds `anchor` (a head kept outside the database) unchanged and does
    /// not end before it; names the first row that does not hold. Everything is read from one
    /// snapshot, so writers on other nodes may go on meanwhile.
    public func verify(checkpointKey: SymmetricKey, anchor: AuditHead? = nil) async throws -> Verdict {
        try await walk(checkpointKey: checkpointKey, anchor: anchor, org: nil).verdict
    }

    /// Verifies the whole chain as ``verify(checkpointKey:anchor:)`` does, and reports it as
    /// `org`'s admin may see it: the organisation's own event count, and the broken event only
    /// when it is the organisation's.
    public func verify(checkpointKey: SymmetricKey, for org: OrgID) async throws -> AuditOrgVerdict {
        let (verdict, brokenOrg, events) = try await walk(checkpointKey: checkpointKey, anchor: nil, org: org)
        return AuditOrgVerdict(verdict, brokenOrg: brokenOrg, for: org, events: events)
    }

    private func walk(checkpointKey: SymmetricKey, anchor: AuditHead?, org: OrgID?) async throws -> (verdict: Verdict, brokenOrg: String?, orgEvents: Int) {
        let verifier = try AuditChainVerifier(auditKey: checkpointKey)
        return try await client.transaction(isolation: .repeatableRead) { [verifier] tx in
            var verifier = verifier
            let orgEvents = try org.map { org in
                try tx.query("SELECT COUNT(*) AS n FROM audit_events WHERE org = $1", [.text(org.rawValue)]).first?.int("n") ?? 0
            } ?? 0
            func finish() -> (Verdict, String?, Int) {
                let (verdict, brokenOrg) = verifier.finish(anchor: anchor)
                return (verdict, brokenOrg, Int(orgEvents))
            }
            // Signed heads, then legacy checkpoints: every signature first.
            for row in try tx.query("SELECT seq, hash, keyed_from, at, mac FROM audit_heads ORDER BY seq") {
                guard verifier.head(
                    seq: try row.int("seq"), hash: try row.bytes("hash"), keyedFrom: try row.int("keyed_from"),
                    at: try row.int("at"), mac: try row.bytes("mac"))
                else { return finish() }
            }
            for row in try tx.query("SELECT id, last_event_id, hash, mac FROM audit_checkpoints ORDER BY last_event_id, id") {
                guard verifier.checkpoint(id: try row.int("id"), lastEventID: try row.int("last_event_id"), hash: try row.bytes("hash"), mac: try row.bytes("mac"))
                else { return finish() }
            }
            var after = Int64.min
            while true {
                let rows = try tx.query("SELECT * FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2", [.int(after), .int(Int64(Self.verifyPage))])
                for row in rows {
                    let entry = try Self.entry(row)
                    let stored = try row.isNull("hash") ? [] : try row.bytes("hash")
                    guard verifier.row(id: entry.id, event: entry.event, stored: stored) else { return finish() }
                    after = entry.id
                }
                if rows.count < Self.verifyPage { return finish() }
            }
        }
    }

    /// The event a stored row holds, with its id.
    static func entry(_ row: PostgresRow) throws -> Entry {
        Entry(
            id: try row.int("id"),
            event: AuditEvent(
                at: AuditChain.date(milliseconds: try row.int("at")), org: OrgID(try row.string("org")), actor: try row.string("actor"),
                address: try row.string("address"), action: try row.string("action"), target: try row.string("target"),
                detail: try row.string("detail")))
    }
}
