import CareHubCore
import Foundation
import GRDB

/// The durable notification outbox (``Notifier``): one row per notification and integration,
/// kept until the dispatcher has sent it, refused it, or given up on it.
public struct SQLiteOutbox: Notifier {
    /// A queued notification and where it goes.
    public struct Item: Sendable, Hashable {
        /// The row id.
        public let id: Int64
        /// The integration it goes to.
        public let integration: String
        /// Attempts made so far.
        public let attempts: Int
        /// The notification.
        public let notification: StaffNotification

        /// The organisation's integration it goes through.
        public var lane: Lane { Lane(org: notification.org, integration: integration) }
    }

    /// An organisation's integration: its notifications go out one after the other, in order.
    public struct Lane: Sendable, Hashable {
        /// The organisation.
        public let org: OrgID
        /// The integration's name.
        public let integration: String

        /// Names a lane.
        public init(org: OrgID, integration: String) {
            self.org = org
            self.integration = integration
        }
    }

    private let database: CareHubDatabase

    /// Creates the outbox.
    public init(database: CareHubDatabase) { self.database = database }

    public func enqueue(_ notification: StaffNotification, via integrations: [String]) async throws {
        guard !integrations.isEmpty else { return }
        try await database.pool.write { db in
            for integration in integrations {
                try db.execute(
                    sql: """
                        INSERT INTO outbox (org, integration, conversation, unread, preview, sender, created_at, next_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        notification.org.rawValue, integration, notification.conversation.rawValue, notification.unread,
                        notification.preview, notification.from, notification.at.timeIntervalSince1970, notification.at.timeIntervalSince1970,
                    ])
            }
        }
    }

    /// Pending notifications due at `date`, oldest first, leaving out those of the
    /// (organisation, integration) pairs in `excluding` (ones being sent to now).
    public func due(at date: Date, limit: Int, excluding lanes: Set<Lane> = []) async throws -> [Item] {
        try await database.pool.read { db in
            var sql = "SELECT * FROM outbox WHERE state = 'pending' AND next_at <= ?"
            var arguments: StatementArguments = [date.timeIntervalSince1970]
            for lane in lanes.sorted(by: { ($0.org.rawValue, $0.integration) < ($1.org.rawValue, $1.integration) }) {
                sql += " AND NOT (org = ? AND integration = ?)"
                arguments += [lane.org.rawValue, lane.integration]
            }
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql + " ORDER BY id LIMIT ?", arguments: arguments).map(Self.item)
        }
    }

    /// Delivered: the preview, if any, is erased.
    public func markSent(_ id: Int64, at date: Date) async throws {
        try await finish(id, state: "sent", error: nil, at: date)
    }

    /// Never to be sent (the integration is gone, or may not receive from this organisation now).
    public func markRefused(_ id: Int64, reason: String, at date: Date) async throws {
        try await finish(id, state: "refused", error: reason, at: date)
    }

    /// Given up after too many attempts.
    public func markFailed(_ id: Int64, reason: String, at date: Date) async throws {
        try await finish(id, state: "failed", error: reason, at: date)
    }

    /// A failed attempt; try again at `next`.
    public func retry(_ id: Int64, attempts: Int, next: Date, reason: String) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
                arguments: [attempts, next.timeIntervalSince1970, reason, id])
        }
    }

    private func finish(_ id: Int64, state: String, error: String?, at date: Date) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE outbox SET state = ?, last_error = ?, done_at = ?, preview = NULL, sender = NULL, attempts = attempts + 1 WHERE id = ?",
                arguments: [state, error, date.timeIntervalSince1970, id])
        }
    }

    /// Rows per organisation and state (for /metrics).
    public func counts() async throws -> [(org: OrgID, state: String, count: Int)] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT org, state, COUNT(*) AS n FROM outbox GROUP BY org, state ORDER BY org, state").map {
                (OrgID($0["org"]), $0["state"], $0["n"])
            }
        }
    }

    /// Pending notifications, oldest first. Synchronous: for tools and tests.
    public func pending(limit: Int = 100) throws -> [Item] {
        try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE state = 'pending' ORDER BY id LIMIT ?", arguments: [limit]).map(Self.item)
        }
    }

    private static func item(_ row: Row) -> Item {
        Item(
            id: row["id"], integration: row["integration"], attempts: row["attempts"],
            notification: StaffNotification(
                org: OrgID(row["org"]), conversation: ConversationID(row["conversation"]), unread: row["unread"],
                preview: row["preview"], from: row["sender"], at: Date(timeIntervalSince1970: row["created_at"])))
    }
}
