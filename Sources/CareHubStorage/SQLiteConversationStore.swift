import CareHubCore
import Foundation
import GRDB

/// ``ConversationStore`` on the hub's SQLite database.
public struct SQLiteConversationStore: ConversationStore {
    private let database: CareHubDatabase

    /// Creates the store.
    public init(database: CareHubDatabase) { self.database = database }

    public func create(org: OrgID, tokenDigest: [UInt8], at: Date, offline: Bool) async throws -> Conversation {
        var generator = SystemRandomNumberGenerator()
        let id = ConversationID("c_" + String(generator.next() as UInt64, radix: 16).leftPadded(to: 16))
        try await database.pool.write { db in
            try db.execute(
                sql: "INSERT INTO conversations (id, org, token_digest, started_at, offline) VALUES (?, ?, ?, ?, ?)",
                arguments: [id.rawValue, org.rawValue, Data(tokenDigest), at.timeIntervalSince1970, offline])
        }
        return Conversation(id: id, org: org, startedAt: at, offline: offline)
    }

    public func find(org: OrgID, tokenDigest: [UInt8]) async throws -> Conversation? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM conversations WHERE org = ? AND token_digest = ?", arguments: [org.rawValue, Data(tokenDigest)])
                .map(Self.conversation)
        }
    }

    public func conversation(_ id: ConversationID) async throws -> Conversation? {
        try await database.pool.read { db in
            // Read for every frame that names a room: a cached statement is compiled once.
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM conversations WHERE id = ?"), arguments: [id.rawValue]).map(Self.conversation)
        }
    }

    public func markEnded(_ id: ConversationID, at: Date) async throws {
        try await database.pool.write { db in
            try db.execute(sql: "UPDATE conversations SET ended_at = ? WHERE id = ? AND ended_at IS NULL", arguments: [at.timeIntervalSince1970, id.rawValue])
        }
    }

    public func list(org: OrgID, limit: Int) async throws -> [Conversation] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM conversations WHERE org = ? ORDER BY started_at DESC LIMIT ?", arguments: [org.rawValue, limit])
                .map(Self.conversation)
        }
    }

    public func page(org: OrgID, filter: ConversationFilter, limit: Int) async throws -> [Conversation] {
        var sql = "SELECT * FROM conversations WHERE org = ?"
        var arguments: StatementArguments = [org.rawValue]
        if let ended = filter.ended { sql += ended ? " AND ended_at IS NOT NULL" : " AND ended_at IS NULL" }
        if let user = filter.assignedTo {
            sql += " AND assigned_to = ?"
            arguments += [user]
        }
        if let cursor = filter.before {
            sql += " AND (started_at < ? OR (started_at = ? AND id < ?))"
            arguments += [cursor.startedAt.timeIntervalSince1970, cursor.startedAt.timeIntervalSince1970, cursor.id.rawValue]
        }
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        arguments += [limit]
        return try await database.pool.read { [sql, arguments] db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.conversation)
        }
    }

    public func setProfile(_ id: ConversationID, _ body: MessageBody) async throws {
        let keyID: String?
        let bytes: Data
        switch body {
        case .plain(let json): (keyID, bytes) = (nil, Data(json.utf8))
        case .sealed(let sealed): (keyID, bytes) = (sealed.keyID, Data(sealed.bytes))
        case .unreadable: return
        }
        try await database.pool.write { db in
            try db.execute(sql: "UPDATE conversations SET profile_key_id = ?, profile = ? WHERE id = ?", arguments: [keyID, bytes, id.rawValue])
        }
    }

    public func profile(of id: ConversationID) async throws -> MessageBody? {
        try await database.pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT profile_key_id, profile FROM conversations WHERE id = ?", arguments: [id.rawValue]),
                  let bytes = row["profile"] as Data?
            else { return nil }
            if let keyID = row["profile_key_id"] as String? { return .sealed(SealedText(keyID: keyID, bytes: Array(bytes))) }
            return .plain(String(decoding: bytes, as: UTF8.self))
        }
    }

    public func eraseProfile(_ id: ConversationID) async throws {
        try await database.pool.write { db in
            // The hand-over note goes with the pre-chat form: both are ePHI outside the messages.
            try db.execute(
                sql: "UPDATE conversations SET profile_key_id = NULL, profile = NULL, handoff_key_id = NULL, handoff_note = NULL WHERE id = ?",
                arguments: [id.rawValue])
        }
    }

    public func unpurged(org: OrgID, startedBefore date: Date, limit: Int) async throws -> [Conversation] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM conversations WHERE org = ? AND started_at < ? AND purged_at IS NULL ORDER BY started_at LIMIT ?",
                arguments: [org.rawValue, date.timeIntervalSince1970, limit]).map(Self.conversation)
        }
    }

    public func markPurged(_ id: ConversationID, at: Date) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: """
                    UPDATE conversations SET purged_at = ?, ended_at = IFNULL(ended_at, ?), transcript_to = NULL,
                        purge_next_at = NULL, purge_error = NULL WHERE id = ?
                    """,
                arguments: [at.timeIntervalSince1970, at.timeIntervalSince1970, id.rawValue])
        }
    }

    public func duePurges(org: OrgID, at date: Date, limit: Int) async throws -> [Conversation] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT * FROM conversations WHERE org = ? AND purged_at IS NULL AND ended_at IS NOT NULL
                        AND (purge_next_at IS NULL OR purge_next_at <= ?) ORDER BY ended_at LIMIT ?
                    """,
                arguments: [org.rawValue, date.timeIntervalSince1970, limit]).map(Self.conversation)
        }
    }

    public func deferPurge(_ id: ConversationID, attempts: Int, retryAt: Date, reason: String) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE conversations SET purge_attempts = ?, purge_next_at = ?, purge_error = ? WHERE id = ?",
                arguments: [attempts, retryAt.timeIntervalSince1970, reason, id.rawValue])
        }
    }

    public func openConversations(org: OrgID, limit: Int) async throws -> [Conversation] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM conversations WHERE org = ? AND purged_at IS NULL AND ended_at IS NULL ORDER BY started_at LIMIT ?",
                arguments: [org.rawValue, limit]).map(Self.conversation)
        }
    }

    public func requestTranscript(_ id: ConversationID, to address: String?) async throws {
        try await database.pool.write { db in
            try db.execute(sql: "UPDATE conversations SET transcript_to = ? WHERE id = ?", arguments: [address, id.rawValue])
        }
    }

    public func assign(_ id: ConversationID, to user: String?) async throws {
        try await database.pool.write { db in
            try db.execute(sql: "UPDATE conversations SET assigned_to = ? WHERE id = ?", arguments: [user, id.rawValue])
        }
    }

    public func claim(_ id: ConversationID, by user: String) async throws -> String? {
        try await database.pool.write { db in
            try db.execute(sql: "UPDATE conversations SET assigned_to = ? WHERE id = ? AND assigned_to IS NULL", arguments: [user, id.rawValue])
            return try Row.fetchOne(db, sql: "SELECT assigned_to FROM conversations WHERE id = ?", arguments: [id.rawValue])?["assigned_to"]
        }
    }

    public func markRead(_ id: ConversationID, seq: UInt64) async throws -> Bool {
        try await database.pool.write { db in
            try db.execute(sql: "UPDATE conversations SET read_seq = ? WHERE id = ? AND read_seq < ?", arguments: [Int64(seq), id.rawValue, Int64(seq)])
            return db.changesCount > 0
        }
    }

    public func setHandoff(_ id: ConversationID, _ handoff: Handoff) async throws {
        let (keyID, note): (String?, Data?)
        switch handoff.note {
        case .plain(let text)?: (keyID, note) = (nil, Data(text.utf8))
        case .sealed(let sealed)?: (keyID, note) = (sealed.keyID, Data(sealed.bytes))
        case .unreadable?, nil: (keyID, note) = (nil, nil)
        }
        try await database.pool.write { db in
            try db.execute(
                sql: """
                    UPDATE conversations SET handoff_from = ?, handoff_to = ?, handoff_at = ?, handoff_key_id = ?, handoff_note = ?
                    WHERE id = ?
                    """,
                arguments: [handoff.from, handoff.to, handoff.at.timeIntervalSince1970, keyID, note, id.rawValue])
        }
    }

    public func handoff(of id: ConversationID) async throws -> Handoff? {
        try await database.pool.read { db in
            guard let row = try Row.fetchOne(
                db, sql: "SELECT handoff_from, handoff_to, handoff_at, handoff_key_id, handoff_note FROM conversations WHERE id = ?",
                arguments: [id.rawValue]),
                let from = row["handoff_from"] as String?, let at = row["handoff_at"] as Double?
            else { return nil }
            var note: MessageBody?
            if let bytes = row["handoff_note"] as Data? {
                if let keyID = row["handoff_key_id"] as String? {
                    note = .sealed(SealedText(keyID: keyID, bytes: Array(bytes)))
                } else {
                    note = .plain(String(decoding: bytes, as: UTF8.self))
                }
            }
            return Handoff(from: from, to: row["handoff_to"], at: Date(timeIntervalSince1970: at), note: note)
        }
    }

    /// A conversation whose end-of-chat hook has not completed (for `carehub conversations --pending-purge`).
    public struct PendingPurge: Sendable {
        public let conversation: Conversation
        public let nextAttempt: Date?
        public let lastError: String?
    }

    /// Ended conversations not purged yet, oldest first; `org` nil lists every organisation.
    /// Synchronous: for the CLI, never for the hub's async code.
    public func pendingPurges(org: OrgID?) throws -> [PendingPurge] {
        try database.pool.read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT * FROM conversations WHERE purged_at IS NULL AND ended_at IS NOT NULL AND (? IS NULL OR org = ?)
                    ORDER BY ended_at
                    """,
                arguments: [org?.rawValue, org?.rawValue]).map { row in
                let next: Double? = row["purge_next_at"]
                return PendingPurge(conversation: Self.conversation(row), nextAttempt: next.map(Date.init(timeIntervalSince1970:)), lastError: row["purge_error"])
            }
        }
    }

    /// A conversation and whether its transcript is gone.
    public struct Listed: Sendable {
        public let conversation: Conversation
        public let isPurged: Bool
    }

    /// The organisation's most recent conversations, newest first. Synchronous: for the CLI.
    public func recent(org: OrgID, limit: Int) throws -> [Listed] {
        try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM conversations WHERE org = ? ORDER BY started_at DESC LIMIT ?", arguments: [org.rawValue, limit])
                .map { Listed(conversation: Self.conversation($0), isPurged: ($0["purged_at"] as Double?) != nil) }
        }
    }

    /// How many ended conversations of each organisation await their hook (for /metrics).
    public func pendingPurgeCounts() async throws -> [OrgID: Int] {
        try await database.pool.read { db in
            var counts: [OrgID: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT org, COUNT(*) AS n FROM conversations WHERE purged_at IS NULL AND ended_at IS NOT NULL GROUP BY org") {
                counts[OrgID(row["org"])] = row["n"]
            }
            return counts
        }
    }

    private static func conversation(_ row: Row) -> Conversation {
        let ended: Double? = row["ended_at"]
        return Conversation(
            id: ConversationID(row["id"]), org: OrgID(row["org"]),
            startedAt: Date(timeIntervalSince1970: row["started_at"]),
            endedAt: ended.map(Date.init(timeIntervalSince1970:)),
            assignedTo: row["assigned_to"], purgeAttempts: row["purge_attempts"], transcriptTo: row["transcript_to"],
            offline: row["offline"], readSeq: UInt64(row["read_seq"] as Int64))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
