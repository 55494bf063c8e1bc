import CareHubCore
import CareHubCrypto
import CareHubPostgresStorage
import CareHubPostgresTesting
import CareHubStorage
import CareHubTesting
import Foundation

/// One implementation of the message and attachment stores under a contract test: the SQLite
/// adapters on a real file in a temporary directory, or the in-memory doubles the stage tests
/// use, so that a double cannot promise what the adapter does not do, nor the other way round;
/// and (``postgres(auditRefuses:at:)``) the PostgreSQL adapters on a fresh database.
struct StoreSubject {
    let name: String
    let messages: any MessageStore
    /// Finishes its attachments into ``messages``.
    let attachments: any AttachmentStore
    /// The audit events committed so far.
    let audited: () async throws -> [AuditEvent]
    /// Starts a conversation of the organisation.
    let room: (OrgID) async throws -> ConversationID
    let keep: Any

    /// Each implementation, fresh; with `auditRefuses`, its audit trail refuses every event.
    static func all(auditRefuses: Bool = false, at: Date) throws -> [StoreSubject] {
        let fixture = try KeyFixture()
        // Without its key the SQLite trail cannot chain events, and refuses them.
        let sqliteAudit = SQLiteAuditLog(database: fixture.database, checkpointKey: auditRefuses ? nil : SymmetricKey(randomByteCount: 32))
        let conversations = SQLiteConversationStore(database: fixture.database)
        let memoryAudit = RecordingAuditLog()
        memoryAudit.failing = auditRefuses
        let memoryMessages = MemoryMessageStore(audit: memoryAudit)
        return [
            StoreSubject(
                name: "sqlite", messages: SQLiteMessageStore(database: fixture.database, audit: sqliteAudit),
                attachments: SQLiteAttachmentStore(database: fixture.database, audit: sqliteAudit),
                audited: { try sqliteAudit.entries().map(\.event) },
                room: { org in try await conversations.create(org: org, tokenDigest: Array(UUID().uuidString.utf8), at: at).id },
                keep: fixture),
            StoreSubject(
                name: "memory", messages: memoryMessages, attachments: MemoryAttachmentStore(messages: memoryMessages),
                audited: { memoryAudit.events },
                room: { _ in ConversationID("c_\(UUID().uuidString)") },
                keep: ()),
        ]
    }

    /// The PostgreSQL stores on a database of their own; without its key the trail refuses events.
    static func postgres(auditRefuses: Bool = false, at: Date) async throws -> StoreSubject {
        let database = try await PostgresDatabase.open(url: try TestPostgresServer.shared().createDatabase(), connections: 2)
        let audit = PostgresAuditLog(database: database, checkpointKey: auditRefuses ? nil : SymmetricKey(randomByteCount: 32))
        return StoreSubject(
            name: "postgres", messages: PostgresMessageStore(database: database, audit: audit),
            attachments: PostgresAttachmentStore(database: database, audit: audit),
            audited: { try await audit.entries().map(\.event) },
            room: { org in try await PostgresTestRows.conversation(database, org: org, at: at) },
            keep: database)
    }
}
