import CareHubCore
import Foundation
import GRDB

/// ``ConversationStore`` on the hub's SQLite database.
public struct SQLiteConversationStore: ConversationStore {
    private let database: CareHubDatabase

    /// Creates the store.
    public init(database: CareHubDatabase) { self.database = database }

    public func create(org: OrgID, tokenDigest: [UInt8], at: Date) async throws -> Conversation {
        var generator = SystemRandomNumberGenerator()
        let id = ConversationID("c_" + String(generator.next() as UInt64, radix: 16).leftPadded(to: 16))
        try await database.pool.write { db in
            try db.execute(
                sql: "INSERT INTO conversations (id, org, token_digest, started_at) VALUES (?, ?, ?, ?)",
                arguments: [id.rawValue, org.rawValue, Data(tokenDigest), at.timeIntervalSince1970])
        }
        return Conversation(id: id, org: org, startedAt: at)
    }

    public func find(org: OrgID, tokenDigest: [UInt8]) async throws -> Conversation? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM conversations WHERE org = ? AND token_digest = ?", arguments: [org.rawValue, Data(tokenDigest)])
                .map(Self.conversation)
        }
    }

    public func conversation(_ id: ConversationID) async throws -> Conversation? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM conversations WHERE id = ?", arguments: [id.rawValue]).map(Self.conversation)
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
            try db.execute(sql: "UPDATE conversations SET profile_key_id = NULL, profile = NULL WHERE id = ?", arguments: [id.rawValue])
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
                sql: "UPDATE conversations SET purged_at = ?, ended_at = IFNULL(ended_at, ?) WHERE id = ?",
                arguments: [at.timeIntervalSince1970, at.timeIntervalSince1970, id.rawValue])
        }
    }

    private static func conversation(_ row: Row) -> Conversation {
        let ended: Double? = row["ended_at"]
        return Conversation(
            id: ConversationID(row["id"]), org: OrgID(row["org"]),
            startedAt: Date(timeIntervalSince1970: row["started_at"]),
            endedAt: ended.map(Date.init(timeIntervalSince1970:)))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
