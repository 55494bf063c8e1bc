import CareHubCore
import Foundation
import GRDB

/// The ``ChangeJournal`` in SQLite: one row per change in `changes`.
public struct SQLiteChangeJournal: ChangeJournal {
    private let database: CareHubDatabase

    public init(database: CareHubDatabase) {
        self.database = database
    }

    @discardableResult
    public func record(_ change: Change, at date: Date) async throws -> Change {
        let id = try await database.pool.write { db -> Int64 in
            var user: String?, room: String?, previous: String?, reason: String?
            let kind: String
            switch change.kind {
            case .sessionsRevoked(let revoked, let why):
                kind = "sessions_revoked"
                user = revoked
                reason = why
            case .assigned(let assigned, let assignee, let before):
                kind = "assigned"
                room = assigned.rawValue
                user = assignee
                previous = before
            }
            try db.execute(
                sql: "INSERT INTO changes (at, org, origin, kind, user, room, previous, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [date.timeIntervalSince1970, change.org.rawValue, change.origin, kind, user, room, previous, reason])
            return db.lastInsertedRowID
        }
        return Change(id: id, org: change.org, kind: change.kind, origin: change.origin)
    }

    public func newest() async throws -> Int64 {
        try await database.pool.read { db in
            // The sequence outlives deleted rows, so a journal emptied by `forget` still answers
            // the last id it handed out.
            try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'changes'") ?? 0
        }
    }

    public func changes(after id: Int64, limit: Int) async throws -> [Change] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, org, origin, kind, user, room, previous, reason FROM changes WHERE id > ? ORDER BY id LIMIT ?",
                arguments: [id, max(0, limit)]
            ).compactMap { row in
                let kind: Change.Kind
                switch row["kind"] as String {
                case "sessions_revoked":
                    guard let user: String = row["user"], let reason: String = row["reason"] else { return nil }
                    kind = .sessionsRevoked(user: user, reason: reason)
                case "assigned":
                    guard let room: String = row["room"] else { return nil }
                    kind = .assigned(room: ConversationID(room), user: row["user"], previous: row["previous"])
                default:
                    return nil  // written by a newer version: not ours to apply
                }
                return Change(id: row["id"], org: OrgID(row["org"]), kind: kind, origin: row["origin"])
            }
        }
    }

    @discardableResult
    public func forget(before date: Date) async throws -> Int {
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM changes WHERE at < ?", arguments: [date.timeIntervalSince1970])
            return db.changesCount
        }
    }
}
