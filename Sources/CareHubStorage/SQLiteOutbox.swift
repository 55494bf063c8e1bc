import CareHubCore
import Foundation
import GRDB

/// The durable notification outbox (``Notifier``): notifications wait here until a dispatcher sends them.
public struct SQLiteOutbox: Notifier {
    private let database: CareHubDatabase

    /// Creates the outbox.
    public init(database: CareHubDatabase) { self.database = database }

    public func enqueue(_ notification: StaffNotification) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "INSERT INTO outbox (org, conversation, text, created_at) VALUES (?, ?, ?, ?)",
                arguments: [notification.org.rawValue, notification.conversation.rawValue, notification.text, notification.at.timeIntervalSince1970])
        }
    }

    /// Notifications not sent yet, oldest first.
    public func pending(limit: Int = 100) throws -> [StaffNotification] {
        try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?", arguments: [limit]).map { row in
                StaffNotification(
                    org: OrgID(row["org"]), conversation: ConversationID(row["conversation"]),
                    text: row["text"], at: Date(timeIntervalSince1970: row["created_at"]))
            }
        }
    }
}
