import CareHubCore
import CareHubCrypto
import CareHubPostgres
import CareHubPostgresStorage
import CareHubPostgresTesting
import Foundation

/// One implementation of the message store under its contract test: each ``StoreSubject`` (the
/// SQLite adapter and the in-memory double), and the PostgreSQL adapter on a fresh database of
/// the throwaway server.
struct MessageStoreSubject {
    let name: String
    let messages: any MessageStore
    /// The audit events committed so far.
    let audited: () async throws -> [AuditEvent]
    /// Starts a conversation of the organisation.
    let room: (OrgID) async throws -> ConversationID
    let keep: Any

    /// Each implementation, fresh; with `auditRefuses`, its audit trail refuses every event.
    static func all(auditRefuses: Bool = false, at: Date) async throws -> [MessageStoreSubject] {
        try StoreSubject.all(auditRefuses: auditRefuses, at: at).map { subject in
            MessageStoreSubject(name: subject.name, messages: subject.messages, audited: subject.audited, room: subject.room, keep: subject.keep)
        } + [try await postgres(auditRefuses: auditRefuses, at: at)]
    }

    /// The PostgreSQL store on a database of its own; without its key the trail refuses events.
    static func postgres(auditRefuses: Bool = false, at: Date) async throws -> MessageStoreSubject {
        let database = try await PostgresDatabase.open(url: try TestPostgresServer.shared().createDatabase(), connections: 2)
        let audit = PostgresAuditLog(database: database, checkpointKey: auditRefuses ? nil : SymmetricKey(randomByteCount: 32))
        return MessageStoreSubject(
            name: "postgres", messages: PostgresMessageStore(database: database, audit: audit),
            audited: { try await audit.entries().map(\.event) },
            room: { org in try await PostgresTestRows.conversation(database, org: org, at: at) },
            keep: database)
    }
}

/// Rows the PostgreSQL tests need that no PostgreSQL adapter writes yet.
enum PostgresTestRows {
    /// A new conversation row of `org`; returns its id.
    static func conversation(_ database: PostgresDatabase, org: OrgID, at: Date) async throws -> ConversationID {
        let id = "c_" + String(UInt64.random(in: .min ... .max), radix: 16).leftPadded(to: 16)
        try await database.client.execute(
            "INSERT INTO conversations (id, org, token_digest, started_at) VALUES ($1, $2, $3, $4)",
            [.text(id), .text(org.rawValue), .bytea(Array(UUID().uuidString.utf8)), .double(at.timeIntervalSince1970)])
        return ConversationID(id)
    }
}

private extension String {
    func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}
