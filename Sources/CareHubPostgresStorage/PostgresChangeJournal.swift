import CareHubCore
import CareHubPostgres
import Foundation

/// The ``ChangeJournal`` in PostgreSQL: one row per change in `changes`, read by every node.
///
/// Followers read `id > cursor ORDER BY id`, so ids must commit in order: an identity value is
/// handed out at the insert, not at the commit, and a follower that read a higher id committed
/// first would never return for the lower one. Each ``record(_:at:)`` therefore takes
/// `LOCK TABLE changes IN SHARE ROW EXCLUSIVE MODE` before its insert (writers, on every node,
/// queue behind one another until commit; readers do not wait), and ``newest()`` waits for a
/// writer under way, so that a follower starting from it cannot skip that writer's row.
public struct PostgresChangeJournal: ChangeJournal {
    private let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    @discardableResult
    public func record(_ change: Change, at date: Date) async throws -> Change {
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
        let parameters: [PostgresValue] = [
            .double(date.timeIntervalSince1970), .text(change.org.rawValue), .text(change.origin), .text(kind),
            Self.text(user), Self.text(room), Self.text(previous), Self.text(reason),
        ]
        let id = try await database.client.transaction { tx -> Int64 in
            try tx.execute("LOCK TABLE changes IN SHARE ROW EXCLUSIVE MODE")
            let rows = try tx.query(
                "INSERT INTO changes (at, org, origin, kind, \"user\", room, previous, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                parameters)
            return try rows[0].int("id")
        }
        return Change(id: id, org: change.org, kind: change.kind, origin: change.origin)
    }

    public func newest() async throws -> Int64 {
        try await database.client.transaction { tx in
            // SHARE conflicts with the writers' SHARE ROW EXCLUSIVE: this waits for a change being
            // recorded to commit (or roll back), whose id the sequence already holds.
            try tx.execute("LOCK TABLE changes IN SHARE MODE")
            // The sequence outlives deleted rows, so a journal emptied by `forget` still answers
            // the last id it handed out.
            return try tx.query("SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('changes', 'id')), 0) AS seq")[0].int("seq")
        }
    }

    public func changes(after id: Int64, limit: Int) async throws -> [Change] {
        try await database.client.query(
            "SELECT id, org, origin, kind, \"user\", room, previous, reason FROM changes WHERE id > $1 ORDER BY id LIMIT $2",
            [.int(id), .int(Int64(max(0, limit)))]
        ).compactMap { row in
            let kind: Change.Kind
            switch try row.string("kind") {
            case "sessions_revoked":
                guard let user = try Self.optionalString(row, "user"), let reason = try Self.optionalString(row, "reason") else { return nil }
                kind = .sessionsRevoked(user: user, reason: reason)
            case "assigned":
                guard let room = try Self.optionalString(row, "room") else { return nil }
                kind = .assigned(room: ConversationID(room), user: try Self.optionalString(row, "user"), previous: try Self.optionalString(row, "previous"))
            default:
                return nil  // written by a newer version: not ours to apply
            }
            return Change(id: try row.int("id"), org: OrgID(try row.string("org")), kind: kind, origin: try row.string("origin"))
        }
    }

    @discardableResult
    public func forget(before date: Date) async throws -> Int {
        try await database.client.execute("DELETE FROM changes WHERE at < $1", [.double(date.timeIntervalSince1970)])
    }

    private static func text(_ value: String?) -> PostgresValue { value.map(PostgresValue.text) ?? .null }

    private static func optionalString(_ row: PostgresRow, _ column: String) throws -> String? {
        try row.isNull(column) ? nil : try row.string(column)
    }
}
