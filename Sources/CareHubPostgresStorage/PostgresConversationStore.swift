import CareHubCore
import CareHubPostgres
import Foundation

/// ``ConversationStore`` on the hub's PostgreSQL database: `SQLiteConversationStore`'s queries
/// in PostgreSQL's dialect, so that several nodes share the conversations.
///
/// Each write is one statement (PostgreSQL commits it before it returns), except ``claim(_:by:)``,
/// whose update and read-back share a transaction. A negative `limit` lists everything, as
/// SQLite's `LIMIT -1` does.
public struct PostgresConversationStore: ConversationStore {
    private let database: PostgresDatabase

    /// Creates the store.
    public init(database: PostgresDatabase) { self.database = database }

    public func create(org: OrgID, tokenDigest: [UInt8], at: Date, offline: Bool) async throws -> Conversation {
        var generator = SystemRandomNumberGenerator()
        let id = ConversationID("c_" + String(generator.next() as UInt64, radix: 16).leftPadded(to: 16))
        try await database.client.execute(
            "INSERT INTO conversations (id, org, token_digest, started_at, offline) VALUES ($1, $2, $3, $4, $5)",
            [.text(id.rawValue), .text(org.rawValue), .bytea(tokenDigest), .double(at.timeIntervalSince1970), .bool(offline)])
        return Conversation(id: id, org: org, startedAt: at, offline: offline)
    }

    public func find(org: OrgID, tokenDigest: [UInt8]) async throws -> Conversation? {
        try await database.client.query(
            "SELECT * FROM conversations WHERE org = $1 AND token_digest = $2", [.text(org.rawValue), .bytea(tokenDigest)]
        ).first.map(Self.conversation)
    }

    public func conversation(_ id: ConversationID) async throws -> Conversation? {
        try await database.client.query("SELECT * FROM conversations WHERE id = $1", [.text(id.rawValue)]).first.map(Self.conversation)
    }

    public func markEnded(_ id: ConversationID, at: Date) async throws {
        try await database.client.execute(
            "UPDATE conversations SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL", [.double(at.timeIntervalSince1970), .text(id.rawValue)])
    }

    public func list(org: OrgID, limit: Int) async throws -> [Conversation] {
        try await database.client.query(
            "SELECT * FROM conversations WHERE org = $1 ORDER BY started_at DESC LIMIT $2", [.text(org.rawValue), Self.limit(limit)]
        ).map(Self.conversation)
    }

    public func page(org: OrgID, filter: ConversationFilter, limit: Int) async throws -> [Conversation] {
        var sql = "SELECT * FROM conversations WHERE org = $1"
        var parameters: [PostgresValue] = [.text(org.rawValue)]
        /// The placeholder of the next parameter, which it appends.
        func bind(_ value: PostgresValue) -> String {
            parameters.append(value)
            return "$\(parameters.count)"
        }
        if let ended = filter.ended { sql += ended ? " AND ended_at IS NOT NULL" : " AND ended_at IS NULL" }
        if let user = filter.assignedTo { sql += " AND assigned_to = \(bind(.text(user)))" }
        if let cursor = filter.before {
            let startedAt = bind(.double(cursor.startedAt.timeIntervalSince1970))
            sql += " AND (started_at < \(startedAt) OR (started_at = \(startedAt) AND id < \(bind(.text(cursor.id.rawValue)))))"
        }
        sql += " ORDER BY started_at DESC, id DESC LIMIT \(bind(Self.limit(limit)))"
        return try await database.client.query(sql, parameters).map(Self.conversation)
    }

    public func setProfile(_ id: ConversationID, _ body: MessageBody) async throws {
        let keyID: PostgresValue
        let bytes: [UInt8]
        switch body {
        case .plain(let json): (keyID, bytes) = (.null, Array(json.utf8))
        case .sealed(let sealed): (keyID, bytes) = (.text(sealed.keyID), sealed.bytes)
        case .unreadable: return
        }
        try await database.client.execute(
            "UPDATE conversations SET profile_key_id = $1, profile = $2 WHERE id = $3", [keyID, .bytea(bytes), .text(id.rawValue)])
    }

    public func profile(of id: ConversationID) async throws -> MessageBody? {
        guard let row = try await database.client.query(
            "SELECT profile_key_id, profile FROM conversations WHERE id = $1", [.text(id.rawValue)]).first,
            !(try row.isNull("profile"))
        else { return nil }
        let bytes = try row.bytes("profile")
        if !(try row.isNull("profile_key_id")) { return .sealed(SealedText(keyID: try row.string("profile_key_id"), bytes: bytes)) }
        return .plain(String(decoding: bytes, as: UTF8.self))
    }

    public func eraseProfile(_ id: ConversationID) async throws {
        // The hand-over note goes with the pre-chat form: both are ePHI outside the messages.
        try await database.client.execute(
            "UPDATE conversations SET profile_key_id = NULL, profile = NULL, handoff_key_id = NULL, handoff_note = NULL WHERE id = $1",
            [.text(id.rawValue)])
    }

    public func unpurged(org: OrgID, startedBefore date: Date, limit: Int) async throws -> [Conversation] {
        try await database.client.query(
            "SELECT * FROM conversations WHERE org = $1 AND started_at < $2 AND purged_at IS NULL ORDER BY started_at LIMIT $3",
            [.text(org.rawValue), .double(date.timeIntervalSince1970), Self.limit(limit)]
        ).map(Self.conversation)
    }

    public func markPurged(_ id: ConversationID, at: Date) async throws {
        try await database.client.execute(
            """
            UPDATE conversations SET purged_at = $1, ended_at = COALESCE(ended_at, $1), transcript_to = NULL,
                purge_next_at = NULL, purge_error = NULL WHERE id = $2
            """,
            [.double(at.timeIntervalSince1970), .text(id.rawValue)])
    }

    public func duePurges(org: OrgID, at date: Date, limit: Int) async throws -> [Conversation] {
        try await database.client.query(
            """
            SELECT * FROM conversations WHERE org = $1 AND purged_at IS NULL AND ended_at IS NOT NULL
                AND (purge_next_at IS NULL OR purge_next_at <= $2) ORDER BY ended_at LIMIT $3
            """,
            [.text(org.rawValue), .double(date.timeIntervalSince1970), Self.limit(limit)]
        ).map(Self.conversation)
    }

    public func deferPurge(_ id: ConversationID, attempts: Int, retryAt: Date, reason: String) async throws {
        try await database.client.execute(
            "UPDATE conversations SET purge_attempts = $1, purge_next_at = $2, purge_error = $3 WHERE id = $4",
            [.int(Int64(attempts)), .double(retryAt.timeIntervalSince1970), .text(reason), .text(id.rawValue)])
    }

    public func openConversations(org: OrgID, limit: Int) async throws -> [Conversation] {
        try await database.client.query(
            "SELECT * FROM conversations WHERE org = $1 AND purged_at IS NULL AND ended_at IS NULL ORDER BY started_at LIMIT $2",
            [.text(org.rawValue), Self.limit(limit)]
        ).map(Self.conversation)
    }

    public func requestTranscript(_ id: ConversationID, to address: String?) async throws {
        try await database.client.execute(
            "UPDATE conversations SET transcript_to = $1 WHERE id = $2", [address.map(PostgresValue.text) ?? .null, .text(id.rawValue)])
    }

    public func assign(_ id: ConversationID, to user: String?) async throws {
        try await database.client.execute(
            "UPDATE conversations SET assigned_to = $1 WHERE id = $2", [user.map(PostgresValue.text) ?? .null, .text(id.rawValue)])
    }

    public func claim(_ id: ConversationID, by user: String) async throws -> String? {
        // Two statements, not one: a concurrent claimer's UPDATE waits for this one's row lock and
        // then finds the room taken, and its SELECT (a new snapshot, under READ COMMITTED) sees
        // the owner that committed first. A single statement would read from its own snapshot,
        // taken before that owner committed, and answer NULL.
        try await database.client.transaction { tx in
            try tx.execute("UPDATE conversations SET assigned_to = $1 WHERE id = $2 AND assigned_to IS NULL", [.text(user), .text(id.rawValue)])
            guard let row = try tx.query("SELECT assigned_to FROM conversations WHERE id = $1", [.text(id.rawValue)]).first,
                  !(try row.isNull("assigned_to"))
            else { return nil }
            return try row.string("assigned_to")
        }
    }

    public func markRead(_ id: ConversationID, seq: UInt64) async throws -> Bool {
        try await database.client.execute(
            "UPDATE conversations SET read_seq = $1 WHERE id = $2 AND read_seq < $1", [.int(Int64(seq)), .text(id.rawValue)]) > 0
    }

    public func setHandoff(_ id: ConversationID, _ handoff: Handoff) async throws {
        let (keyID, note): (PostgresValue, PostgresValue)
        switch handoff.note {
        case .plain(let text)?: (keyID, note) = (.null, .bytea(Array(text.utf8)))
        case .sealed(let sealed)?: (keyID, note) = (.text(sealed.keyID), .bytea(sealed.bytes))
        case .unreadable?, nil: (keyID, note) = (.null, .null)
        }
        try await database.client.execute(
            """
            UPDATE conversations SET handoff_from = $1, handoff_to = $2, handoff_at = $3, handoff_key_id = $4, handoff_note = $5
            WHERE id = $6
            """,
            [.text(handoff.from), handoff.to.map(PostgresValue.text) ?? .null, .double(handoff.at.timeIntervalSince1970), keyID, note,
             .text(id.rawValue)])
    }

    public func handoff(of id: ConversationID) async throws -> Handoff? {
        guard let row = try await database.client.query(
            "SELECT handoff_from, handoff_to, handoff_at, handoff_key_id, handoff_note FROM conversations WHERE id = $1", [.text(id.rawValue)]
        ).first,
            let from = try Self.optionalString(row, "handoff_from"), !(try row.isNull("handoff_at"))
        else { return nil }
        var note: MessageBody?
        if !(try row.isNull("handoff_note")) {
            let bytes = try row.bytes("handoff_note")
            if let keyID = try Self.optionalString(row, "handoff_key_id") {
                note = .sealed(SealedText(keyID: keyID, bytes: bytes))
            } else {
                note = .plain(String(decoding: bytes, as: UTF8.self))
            }
        }
        return Handoff(
            from: from, to: try Self.optionalString(row, "handoff_to"), at: Date(timeIntervalSince1970: try row.double("handoff_at")), note: note)
    }

    /// A conversation whose end-of-chat hook has not completed (for `carehub conversations --pending-purge`).
    public struct PendingPurge: Sendable {
        public let conversation: Conversation
        public let nextAttempt: Date?
        public let lastError: String?
    }

    /// Ended conversations not purged yet, oldest first; `org` nil lists every organisation.
    public func pendingPurges(org: OrgID?) async throws -> [PendingPurge] {
        try await database.client.query(
            """
            SELECT * FROM conversations WHERE purged_at IS NULL AND ended_at IS NOT NULL AND ($1::text IS NULL OR org = $1)
            ORDER BY ended_at
            """,
            [org.map { .text($0.rawValue) } ?? .null]
        ).map { row in
            PendingPurge(
                conversation: try Self.conversation(row),
                nextAttempt: try row.isNull("purge_next_at") ? nil : Date(timeIntervalSince1970: try row.double("purge_next_at")),
                lastError: try Self.optionalString(row, "purge_error"))
        }
    }

    /// A conversation and whether its transcript is gone.
    public struct Listed: Sendable {
        public let conversation: Conversation
        public let isPurged: Bool
    }

    /// The organisation's most recent conversations, newest first.
    public func recent(org: OrgID, limit: Int) async throws -> [Listed] {
        try await database.client.query(
            "SELECT * FROM conversations WHERE org = $1 ORDER BY started_at DESC LIMIT $2", [.text(org.rawValue), Self.limit(limit)]
        ).map { Listed(conversation: try Self.conversation($0), isPurged: !(try $0.isNull("purged_at"))) }
    }

    /// How many ended conversations of each organisation await their hook (for /metrics).
    public func pendingPurgeCounts() async throws -> [OrgID: Int] {
        var counts: [OrgID: Int] = [:]
        for row in try await database.client.query(
            "SELECT org, COUNT(*) AS n FROM conversations WHERE purged_at IS NULL AND ended_at IS NOT NULL GROUP BY org")
        {
            counts[OrgID(try row.string("org"))] = Int(try row.int("n"))
        }
        return counts
    }

    /// `LIMIT`'s parameter: SQLite reads a negative limit as none, PostgreSQL refuses one but
    /// reads `LIMIT NULL` as none.
    static func limit(_ limit: Int) -> PostgresValue { limit < 0 ? .null : .int(Int64(limit)) }

    static func optionalString(_ row: PostgresRow, _ column: String) throws -> String? {
        try row.isNull(column) ? nil : try row.string(column)
    }

    private static func conversation(_ row: PostgresRow) throws -> Conversation {
        Conversation(
            id: ConversationID(try row.string("id")), org: OrgID(try row.string("org")),
            startedAt: Date(timeIntervalSince1970: try row.double("started_at")),
            endedAt: try row.isNull("ended_at") ? nil : Date(timeIntervalSince1970: try row.double("ended_at")),
            assignedTo: try optionalString(row, "assigned_to"), purgeAttempts: Int(try row.int("purge_attempts")),
            transcriptTo: try optionalString(row, "transcript_to"), offline: try row.bool("offline"),
            readSeq: UInt64(try row.int("read_seq")))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
