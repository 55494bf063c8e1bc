import CareHubCore
import CareHubPostgres
import Foundation

/// The durable notification outbox (``Notifier``) on PostgreSQL, shared by every hub node, with
/// the rows of ``CareHubStorage/SQLiteOutbox``: one per notification and integration, kept until
/// a dispatcher has sent it, refused it, or given up on it.
///
/// Several nodes dispatch from it. A node takes work with ``claim(at:limit:excluding:lease:)``,
/// never with ``due(at:limit:excluding:)`` (which only looks): in one transaction it locks due rows
/// with `SELECT … ORDER BY id LIMIT $n FOR UPDATE SKIP LOCKED`, so rows another node is claiming
/// at that moment are passed over rather than waited for, and moves their `next_at` to the end of
/// a lease, so that once it commits no other node finds them due. A row is then in one node's hands
/// until it is marked (sent, refused, failed, or retried later) or its lease runs out: a node that
/// dies mid-send leaves its rows to be claimed again then, so a notification is sent at least once
/// and, while its sender lives, by one node only.
///
/// Order kept: a claim returns its rows oldest first (by id, the order they were queued), so the
/// rows of one lane (an organisation's integration) that one claim takes go out in queue order
/// when the dispatcher sends a lane's items one after the other. A node passes the lanes it is
/// sending now as `excluding`, so it never claims a lane's later rows behind its own back. Lanes
/// are not pinned to a node: a row queued after another node claimed the earlier ones of its lane
/// (or queued behind a row that waits for a retry, as in SQLite) may be claimed by a second node
/// while the first still sends, and those two may then arrive in either order.
public struct PostgresOutbox: Notifier {
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

    /// How long a claimed row stays with the node that claimed it, unless marked sooner.
    public static let defaultLease: TimeInterval = 300

    private let client: PostgresClient

    /// Creates the outbox.
    public init(database: PostgresDatabase) { self.client = database.client }

    public func enqueue(_ notification: StaffNotification, via integrations: [String]) async throws {
        guard !integrations.isEmpty else { return }
        var sql = "INSERT INTO outbox (org, integration, conversation, unread, preview, sender, created_at, next_at) VALUES "
        var parameters: [PostgresValue] = []
        for (index, integration) in integrations.enumerated() {
            let base = index * 8
            sql += (index == 0 ? "" : ", ") + "(" + (1...8).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
            parameters += [
                .text(notification.org.rawValue), .text(integration), .text(notification.conversation.rawValue), .int(Int64(notification.unread)),
                notification.preview.map { .text($0) } ?? .null, notification.from.map { .text($0) } ?? .null,
                .double(notification.at.timeIntervalSince1970), .double(notification.at.timeIntervalSince1970),
            ]
        }
        // One statement: every integration's row or none.
        try await client.execute(sql, parameters)
    }

    /// Pending notifications due at `date`, oldest first, leaving out those of the lanes in
    /// `excluding`. Only looks: a dispatcher takes its work with ``claim(at:limit:excluding:lease:)``.
    public func due(at date: Date, limit: Int, excluding lanes: Set<Lane> = []) async throws -> [Item] {
        let (condition, parameters) = Self.dueCondition(at: date, excluding: lanes)
        return try await client.query(
            "SELECT * FROM outbox WHERE \(condition) ORDER BY id LIMIT $\(parameters.count + 1)", parameters + [.int(Int64(limit))]
        ).map(Self.item)
    }

    /// Takes up to `limit` pending notifications due at `date` for this node, oldest first,
    /// leaving out those of the lanes in `excluding` and any row another node holds: each row
    /// taken is due again only at `date + lease` (unless marked before). Two nodes claiming at
    /// once never take the same row.
    public func claim(at date: Date, limit: Int, excluding lanes: Set<Lane> = [], lease: TimeInterval = defaultLease) async throws -> [Item] {
        let (condition, parameters) = Self.dueCondition(at: date, excluding: lanes)
        let rows = try await client.query(
            """
            UPDATE outbox SET next_at = $\(parameters.count + 2)
            WHERE id IN (SELECT id FROM outbox WHERE \(condition) ORDER BY id LIMIT $\(parameters.count + 1) FOR UPDATE SKIP LOCKED)
            RETURNING *
            """,
            parameters + [.int(Int64(limit)), .double(date.addingTimeInterval(lease).timeIntervalSince1970)])
        return try rows.map(Self.item).sorted { $0.id < $1.id }
    }

    /// `state = 'pending' AND next_at <= $1`, without the lanes given, and its parameters.
    private static func dueCondition(at date: Date, excluding lanes: Set<Lane>) -> (String, [PostgresValue]) {
        var sql = "state = 'pending' AND next_at <= $1"
        var parameters: [PostgresValue] = [.double(date.timeIntervalSince1970)]
        for lane in lanes.sorted(by: { ($0.org.rawValue, $0.integration) < ($1.org.rawValue, $1.integration) }) {
            sql += " AND NOT (org = $\(parameters.count + 1) AND integration = $\(parameters.count + 2))"
            parameters += [.text(lane.org.rawValue), .text(lane.integration)]
        }
        return (sql, parameters)
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

    /// A failed attempt; try again at `next` (which also ends this node's claim on it).
    public func retry(_ id: Int64, attempts: Int, next: Date, reason: String) async throws {
        try await client.execute(
            "UPDATE outbox SET attempts = $1, next_at = $2, last_error = $3 WHERE id = $4",
            [.int(Int64(attempts)), .double(next.timeIntervalSince1970), .text(reason), .int(id)])
    }

    private func finish(_ id: Int64, state: String, error: String?, at date: Date) async throws {
        try await client.execute(
            "UPDATE outbox SET state = $1, last_error = $2, done_at = $3, preview = NULL, sender = NULL, attempts = attempts + 1 WHERE id = $4",
            [.text(state), error.map { .text($0) } ?? .null, .double(date.timeIntervalSince1970), .int(id)])
    }

    /// Rows per organisation and state (for /metrics).
    public func counts() async throws -> [(org: OrgID, state: String, count: Int)] {
        try await client.query("SELECT org, state, COUNT(*) AS n FROM outbox GROUP BY org, state ORDER BY org, state").map {
            (OrgID(try $0.string("org")), try $0.string("state"), Int(try $0.int("n")))
        }
    }

    /// Pending notifications, oldest first, claimed or not (for tools and tests).
    public func pending(limit: Int = 100) async throws -> [Item] {
        try await client.query("SELECT * FROM outbox WHERE state = 'pending' ORDER BY id LIMIT $1", [.int(Int64(limit))]).map(Self.item)
    }

    private static func item(_ row: PostgresRow) throws -> Item {
        Item(
            id: try row.int("id"), integration: try row.string("integration"), attempts: Int(try row.int("attempts")),
            notification: StaffNotification(
                org: OrgID(try row.string("org")), conversation: ConversationID(try row.string("conversation")), unread: Int(try row.int("unread")),
                preview: try row.isNull("preview") ? nil : try row.string("preview"),
                from: try row.isNull("sender") ? nil : try row.string("sender"),
                at: Date(timeIntervalSince1970: try row.double("created_at"))))
    }
}
