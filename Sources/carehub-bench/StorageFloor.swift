import CareHubCore
import CareHubCrypto
import CareHubStorage
import Foundation
import GRDBSQLite
#if canImport(Glibc)
import Glibc
#endif

/// What storing a HIPAA message costs SQLite itself, with nothing of the hub around it: a fresh
/// database with the hub's schema (made by its migrations), one connection with the hub's settings
/// (WAL, `synchronous=FULL`, `secure_delete`), and for each message the two rows the hub commits,
/// the message and its chained `phi.delivered` audit row (an HMAC under the audit key), bound
/// directly to prepared statements, `batch` messages per transaction, with the signed head the
/// hub stores at each commit. The CPU per message it reports is a floor under the hub's
/// storage cost: the hub's writer does this work and more (its thread hand-offs and bookkeeping).
struct StorageFloor {
    let batch: Int
    let messages: Int
    let conversations: Int

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func report() throws -> [String: Any] {
        let withAudit = try measure(audit: true)
        let withoutAudit = try measure(audit: false)
        return [
            "scenario": "storage-floor", "batch": batch, "messages": messages, "conversations": conversations,
            "cpu_us_per_message": withAudit.cpu, "messages_per_s": withAudit.rate,
            "stored": ["messages": withAudit.messages, "delivery_records": withAudit.records],
            "cpu_us_per_message_without_audit": withoutAudit.cpu, "messages_per_s_without_audit": withoutAudit.rate,
        ]
    }

    /// Commits `messages` into a fresh database; CPU microseconds per message, messages/s, and the
    /// messages and delivery records the database holds afterwards.
    private func measure(audit: Bool) throws -> (cpu: Double, rate: Double, messages: Int64, records: Int64) {
        let directory = NSTemporaryDirectory() + "carehub-storage-floor-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try CareHubDatabase(directory: directory)
        try database.close()

        var handle: OpaquePointer?
        guard sqlite3_open(database.path, &handle) == SQLITE_OK, let db = handle else {
            throw Failure(description: "cannot open \(database.path)")
        }
        defer { sqlite3_close_v2(db) }
        func check(_ code: Int32, _ what: String) throws {
            guard code == SQLITE_OK || code == SQLITE_DONE || code == SQLITE_ROW else {
                throw Failure(description: "\(what): \(String(cString: sqlite3_errmsg(db)))")
            }
        }
        try check(sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON", nil, nil, nil), "settings")
        let rooms = (0..<conversations).map { String(format: "c_%032x", $0) }
        for (index, room) in rooms.enumerated() {
            try check(sqlite3_exec(db, "INSERT INTO conversations (id, org, token_digest, started_at) VALUES ('\(room)', 'riverside-clinic', x'\(String(format: "%08x", index))', 0)", nil, nil, nil), "conversation")
        }
        func prepare(_ sql: String) throws -> OpaquePointer {
            var statement: OpaquePointer?
            try check(sqlite3_prepare_v2(db, sql, -1, &statement, nil), "prepare")
            return statement!
        }
        let begin = try prepare("BEGIN")
        let commit = try prepare("COMMIT")
        let head = try prepare("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
        let insertMessage = try prepare("INSERT INTO messages (conversation, seq, sender, at, key_id, body) VALUES (?, ?, ?, ?, ?, ?)")
        let insertEvent = try prepare("INSERT INTO audit_events (id, at, org, actor, address, action, target, detail, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        let insertHead = try prepare("INSERT INTO audit_heads (seq, hash, keyed_from, at, mac) VALUES (?, ?, 1, ?, ?)")
        defer { for statement in [begin, commit, head, insertMessage, insertEvent, insertHead] { sqlite3_finalize(statement) } }
        let keys = try SQLiteAuditLog.ChainKeys(auditKey: SymmetricKey(randomByteCount: 32))
        func step(_ statement: OpaquePointer, _ what: String) throws {
            try check(sqlite3_step(statement), what)
            sqlite3_reset(statement)
        }
        func bind(_ statement: OpaquePointer, _ index: Int32, _ text: String) {
            _ = text.withCString { sqlite3_bind_text(statement, index, $0, -1, Self.transient) }
        }

        // A sealed short message: nonce, ciphertext and tag.
        let body = (0..<60).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        var sequence = [Int64](repeating: 0, count: conversations)
        var previous = [UInt8](repeating: 0, count: 32)
        var id: Int64 = 0
        let cpuBefore = Self.cpuSeconds()
        let started = DispatchTime.now().uptimeNanoseconds
        var sent = 0
        while sent < messages {
            try step(begin, "begin")
            if audit {
                if sqlite3_step(head) == SQLITE_ROW {
                    id = sqlite3_column_int64(head, 0)
                    if sqlite3_column_bytes(head, 1) == 32, let bytes = sqlite3_column_blob(head, 1) {
                        previous = Array(UnsafeRawBufferPointer(start: bytes, count: 32))
                    }
                }
                sqlite3_reset(head)
            }
            for _ in 0..<min(batch, messages - sent) {
                let room = sent % conversations
                sent += 1
                sequence[room] += 1
                let at = Date().timeIntervalSince1970
                bind(insertMessage, 1, rooms[room])
                sqlite3_bind_int64(insertMessage, 2, sequence[room])
                bind(insertMessage, 3, "visitor")
                sqlite3_bind_double(insertMessage, 4, at)
                bind(insertMessage, 5, "d1")
                _ = body.withUnsafeBytes { sqlite3_bind_blob(insertMessage, 6, $0.baseAddress, Int32($0.count), Self.transient) }
                try step(insertMessage, "message")
                guard audit else { continue }
                id += 1
                // As the hub writes it: the sender, the visitor's address, the room, the sequence and reader.
                let event = AuditEvent(
                    at: Date(timeIntervalSince1970: at), org: OrgID("riverside-clinic"), actor: "visitor", address: "127.0.0.1",
                    action: "phi.delivered", target: rooms[room], detail: "seq=\(sequence[room]) readers=bench.staff1")
                previous = keys.chainHash(previous: previous, id: id, event: event)
                sqlite3_bind_int64(insertEvent, 1, id)
                sqlite3_bind_int64(insertEvent, 2, event.at.epochMilliseconds)
                for (offset, field) in [event.org.rawValue, event.actor, event.address, event.action, event.target, event.detail].enumerated() {
                    bind(insertEvent, Int32(3 + offset), field)
                }
                _ = previous.withUnsafeBytes { sqlite3_bind_blob(insertEvent, 9, $0.baseAddress, 32, Self.transient) }
                try step(insertEvent, "audit event")
            }
            if audit {
                let at = Date().epochMilliseconds
                let signature = keys.headSignature(seq: id, keyedFrom: 1, at: at, hash: previous)
                sqlite3_bind_int64(insertHead, 1, id)
                _ = previous.withUnsafeBytes { sqlite3_bind_blob(insertHead, 2, $0.baseAddress, 32, Self.transient) }
                sqlite3_bind_int64(insertHead, 3, at)
                _ = signature.withUnsafeBytes { sqlite3_bind_blob(insertHead, 4, $0.baseAddress, 32, Self.transient) }
                try step(insertHead, "audit head")
            }
            try step(commit, "commit")
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let cpu = (Self.cpuSeconds() - cpuBefore) / Double(messages) * 1e6
        // Read back what was committed, so that the figure is known to be of real rows.
        let count = try prepare("SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM audit_events WHERE action = 'phi.delivered')")
        defer { sqlite3_finalize(count) }
        try check(sqlite3_step(count), "count")
        let stored = (sqlite3_column_int64(count, 0), sqlite3_column_int64(count, 1))
        guard stored == (Int64(messages), audit ? Int64(messages) : 0) else {
            throw Failure(description: "the database holds \(stored.0) messages and \(stored.1) delivery records, not \(messages)")
        }
        return (cpu, Double(messages) / seconds, stored.0, stored.1)
    }

    /// CPU time of this process so far, user and system.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
