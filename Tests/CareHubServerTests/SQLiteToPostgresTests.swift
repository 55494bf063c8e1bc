import CareHubAudit
import CareHubCore
import CareHubCrypto
import CareHubPostgres
import CareHubPostgresStorage
import CareHubPostgresTesting
import CareHubServer
import CareHubStorage
import Foundation
import Testing

/// A data directory filled through the SQLite adapters, as a hub leaves it.
final class SQLiteDataSet: @unchecked Sendable {
    let directory = NSTemporaryDirectory() + "carehub-migrate-\(UUID().uuidString)"
    let auditKey = SymmetricKey(randomByteCount: 32)
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000.125)
    private(set) var rooms: [ConversationID] = []

    init() {}

    func fill() async throws {
        let database = try CareHubDatabase(directory: directory)
        defer { try? database.close() }
        let audit = SQLiteAuditLog(database: database, checkpointKey: auditKey)
        let conversations = SQLiteConversationStore(database: database)
        let messages = SQLiteMessageStore(database: database, audit: audit)
        let attachments = SQLiteAttachmentStore(database: database, audit: audit)
        func event(_ action: String, _ target: String, _ detail: String = "") -> AuditEvent {
            AuditEvent(at: at, org: org, actor: "dr.kim", address: "10.0.0.7", action: action, target: target, detail: detail)
        }

        for index in 0..<3 {
            let room = try await conversations.create(org: org, tokenDigest: SHA256.hash(Array("visitor-\(index)".utf8)), at: at.addingTimeInterval(Double(index)), offline: index == 1).id
            rooms.append(room)
            for seq in 1...4 {
                try await messages.append(
                    StoredMessage(conversation: room, seq: UInt64(seq), sender: seq % 2 == 0 ? "dr.kim" : "visitor", at: at.addingTimeInterval(Double(seq) + 0.5), body: .plain("message \(seq) — ünïcode")),
                    recording: [event("phi.delivered", room.rawValue, "seq=\(seq)")])
            }
        }
        try await conversations.setProfile(rooms[0], .plain("{\"name\":\"Ann\"}"))
        try await conversations.markEnded(rooms[2], at: at.addingTimeInterval(60))

        let file = Attachment(id: .random(), org: org, conversation: rooms[0], sender: "visitor", name: .plain("scan.png"), contentType: "application/octet-stream", at: at)
        try await attachments.begin(file)
        try await attachments.appendChunk(file.id, index: 0, .plain(Array(repeating: 0xAB, count: 70_000)))
        try await attachments.appendChunk(file.id, index: 1, .plain([0, 1, 2, 255]))
        try await attachments.finish(
            file.id, state: .ready, size: 70_004, contentType: "image/png",
            message: StoredMessage(conversation: rooms[0], seq: 5, sender: "visitor", at: at.addingTimeInterval(9), body: .plain(""), attachment: file.id),
            recording: [event("phi.uploaded", rooms[0].rawValue)])

        let users = SQLiteUserDirectory(database: database, audit: audit)
        try await users.add(StaffUser(org: org, name: "kim", role: .admin, passwordHash: "scrypt$…"), audit: event("user.added", "kim"))
        try await users.add(StaffUser(org: org, name: "lee", role: .staff, passwordHash: "scrypt$…"), audit: event("user.added", "lee"))
        try await users.setDisabled(org: org, name: "lee", disabled: true, audit: event("user.disabled", "lee"))
        _ = try await users.recordFailure(org: org, name: "kim", at: at, lockAfter: 5, lockFor: 60)

        try await EnvelopeCipher(master: SymmetricKey(randomByteCount: 32), store: SQLiteKeyStore(database: database)).prepare(.conversation(org, rooms[1]))

        let outbox = SQLiteOutbox(database: database)
        try await outbox.enqueue(StaffNotification(org: org, conversation: rooms[0], unread: 2, preview: "Can I…", from: "visitor", at: at), via: ["pager", "mail"])

        let token = APIToken(
            id: .random(), org: org, integration: "ehr", scopes: [.orgRead, .messagesRead], allowFrom: [CIDRBlock("10.0.0.0/8")!],
            createdBy: "kim", createdAt: at, expiresAt: at.addingTimeInterval(86_400), state: .active)
        try await SQLiteAPITokenStore(database: database, audit: audit).create(token, digest: SHA256.hash([1, 2, 3]), recording: [event("token.created", token.id.rawValue)])

        let webhook = Webhook(id: "wh_0123456789abcdef", org: org, integration: "ehr", url: "https://hooks.example.org/in", events: WebhookEventKind.allCases, createdAt: at)
        #expect(try await SQLiteWebhookStore(database: database, audit: audit).create(webhook, limit: 10, recording: [event("webhook.created", webhook.id)]))
        try await SQLiteWebhookOutbox(database: database).raise(WebhookEvent(.messageCreated, org: org, conversation: rooms[0], seq: 3, at: at))

        // Changes: two forgotten, one kept; ids continue after the forgotten ones.
        let journal = SQLiteChangeJournal(database: database)
        _ = try await journal.record(Change(org: org, kind: .sessionsRevoked(user: "lee", reason: "disabled"), origin: "cli"), at: at)
        _ = try await journal.record(Change(org: org, kind: .assigned(room: rooms[0], user: "kim", previous: nil), origin: "cli"), at: at)
        _ = try await journal.forget(before: at.addingTimeInterval(1))
        _ = try await journal.record(Change(org: org, kind: .assigned(room: rooms[1], user: nil, previous: "kim"), origin: "cli"), at: at.addingTimeInterval(5))

        try await audit.record(event("keys.rotated", "kek-v1"))
        #expect(try await audit.verify(checkpointKey: auditKey).description.hasPrefix("the audit chain holds"))
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite("carehub migrate: SQLite to PostgreSQL", .serialized)
struct SQLiteToPostgresTests {
    @Test func everyTableIsCopiedAndVerifiedAndTheTargetContinuesAfterTheCopiedIds() async throws {
        let data = SQLiteDataSet()
        try await data.fill()
        let url = try TestPostgresServer.shared().createDatabase()
        let report = try await SQLiteToPostgres.migrate(directory: data.directory, url: url, auditKey: data.auditKey)

        #expect(report.mismatch == nil)
        let rows = Dictionary(uniqueKeysWithValues: report.tables.map { ($0.table, $0.targetRows) })
        let filled = [
            "conversations": 3, "messages": 13, "attachments": 1, "attachment_chunks": 2, "users": 2, "org_keks": 1, "data_keys": 1,
            "outbox": 2, "api_tokens": 1, "webhooks": 1, "webhook_deliveries": 1, "changes": 1,
        ]
        for (table, count) in filled { #expect(rows[table] == count, "\(table)") }
        #expect(rows["audit_events"] == 19, "12 + 1 messages, 2 users, a disabling, a token, a webhook, a key rotation")
        #expect((rows["audit_heads"] ?? 0) >= 1)
        #expect(rows["sessions"] == nil, "PostgreSQL's own table is not part of the copy")
        #expect(report.tables.allSatisfy { $0.sourceDigest == $0.targetDigest && $0.sourceRows == $0.targetRows })
        guard case .holds(let events, _) = try #require(report.auditChain) else { Issue.record("the copied audit chain does not hold"); return }
        #expect(events == rows["audit_events"])

        let database = try await PostgresDatabase.open(url: url, connections: 1)
        let client = database.client
        // Flags and blobs by their PostgreSQL types.
        #expect(try await client.query("SELECT disabled FROM users WHERE name = 'lee'")[0].bool("disabled"))
        #expect(try await client.query("SELECT count(*) AS n FROM conversations WHERE offline")[0].int("n") == 1)
        #expect(try await client.query("SELECT body FROM messages WHERE seq = 1 ORDER BY conversation LIMIT 1")[0].bytes("body") == Array("message 1 — ünïcode".utf8))
        #expect(try await client.query("SELECT octet_length(bytes) AS n FROM attachment_chunks WHERE idx = 0")[0].int("n") == 70_000)
        // last_seq is the counter the next message's seq comes from.
        #expect(try await client.query("SELECT last_seq FROM conversations WHERE id = $1", [.text(data.rooms[0].rawValue)])[0].int("last_seq") == 5)
        // The chain's tip is the last event; the next event chains from it.
        let tip = try await client.query("SELECT last_id, hash FROM audit_tip")[0]
        let last = try await client.query("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")[0]
        #expect(try tip.int("last_id") == last.int("id") && tip.bytes("hash") == last.bytes("hash"))
        // Identity sequences continue after the copied ids, and after the forgotten changes.
        let outboxNext = try await client.query("SELECT nextval(pg_get_serial_sequence('outbox', 'id')) AS n")[0].int("n")
        #expect(outboxNext == 3)
        let changesNext = try await client.query("SELECT nextval(pg_get_serial_sequence('changes', 'id')) AS n")[0].int("n")
        #expect(changesNext == 4)
        let rowidNext = try await client.query("SELECT nextval(pg_get_serial_sequence('attachments', 'rowid')) AS n")[0].int("n")
        #expect(rowidNext == 2)
        await client.close()

        // The check alone, after the commit, still finds both sides equal.
        let again = try await SQLiteToPostgres.verify(directory: data.directory, url: url, auditKey: data.auditKey)
        #expect(again.mismatch == nil && again.tables.count == report.tables.count)
    }

    @Test func aSecondMigrationIntoTheSameDatabaseIsRefused() async throws {
        let data = SQLiteDataSet()
        try await data.fill()
        let url = try TestPostgresServer.shared().createDatabase()
        _ = try await SQLiteToPostgres.migrate(directory: data.directory, url: url, auditKey: data.auditKey)
        let error = await #expect(throws: SQLiteToPostgres.Failure.self) {
            try await SQLiteToPostgres.migrate(directory: data.directory, url: url, auditKey: data.auditKey)
        }
        guard case .targetNotEmpty = try #require(error) else { Issue.record("refused for another reason: \(String(describing: error))"); return }
        #expect("\(try #require(error))".contains("not empty"))
    }

    @Test func aChangedOrMissingTargetRowFailsTheCheckNamingItsTable() async throws {
        let data = SQLiteDataSet()
        try await data.fill()
        let url = try TestPostgresServer.shared().createDatabase()
        _ = try await SQLiteToPostgres.migrate(directory: data.directory, url: url, auditKey: data.auditKey)
        let client = try PostgresClient(url: url, connections: 1)
        defer { Task { await client.close() } }

        try await client.execute("UPDATE messages SET body = body || '\\x00'::bytea WHERE seq = 2")
        var report = try await SQLiteToPostgres.verify(directory: data.directory, url: url)
        #expect(report.mismatch?.table == "messages")
        #expect(report.mismatch?.sourceRows == report.mismatch?.targetRows)

        try await client.execute("UPDATE messages SET body = substring(body FROM 1 FOR octet_length(body) - 1) WHERE seq = 2")
        report = try await SQLiteToPostgres.verify(directory: data.directory, url: url)
        #expect(report.mismatch == nil)

        try await client.execute("UPDATE users SET disabled = FALSE WHERE name = 'lee'")
        report = try await SQLiteToPostgres.verify(directory: data.directory, url: url)
        #expect(report.mismatch?.table == "users")
        try await client.execute("UPDATE users SET disabled = TRUE WHERE name = 'lee'")

        try await client.execute("DELETE FROM webhook_deliveries")
        report = try await SQLiteToPostgres.verify(directory: data.directory, url: url)
        #expect(report.mismatch?.table == "webhook_deliveries" && report.mismatch?.targetRows == 0)
    }

    @Test func aCopyThatDoesNotVerifyIsRolledBack() async throws {
        let data = SQLiteDataSet()
        try await data.fill()
        let url = try TestPostgresServer.shared().createDatabase()
        let database = try await PostgresDatabase.open(url: url, connections: 1)
        // A target that alters what it is given: the check must catch it before commit.
        try await database.client.execute("""
            CREATE FUNCTION rewrite_url() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.url := 'https://elsewhere.example/'; RETURN NEW; END; $$
            """)
        try await database.client.execute("CREATE TRIGGER rewrite_url BEFORE INSERT ON webhooks FOR EACH ROW EXECUTE FUNCTION rewrite_url()")
        let error = await #expect(throws: SQLiteToPostgres.Failure.self) {
            try await SQLiteToPostgres.migrate(directory: data.directory, url: url, auditKey: data.auditKey)
        }
        guard case .verificationFailed(let report) = try #require(error) else { Issue.record("failed otherwise: \(String(describing: error))"); return }
        #expect(report.mismatch?.table == "webhooks")
        #expect("\(try #require(error))".contains("table webhooks differs"))
        for table in ["conversations", "messages", "audit_events", "webhooks"] {
            #expect(try await database.client.query("SELECT count(*) AS n FROM \(table)")[0].int("n") == 0, "\(table) was rolled back")
        }
        #expect(try await database.client.query("SELECT last_id FROM audit_tip")[0].int("last_id") == 0)
        await database.client.close()
    }

    @Test func aDatabaseTheHubHasNotUpgradedIsRefused() async throws {
        let data = SQLiteDataSet()
        let database = try CareHubDatabase(directory: data.directory)
        try database.rawWrite("DELETE FROM grdb_migrations WHERE identifier = 'v14-webhooks'")
        try database.close()
        let url = try TestPostgresServer.shared().createDatabase()
        let error = await #expect(throws: SQLiteToPostgres.Failure.self) {
            try await SQLiteToPostgres.migrate(directory: data.directory, url: url)
        }
        guard case .migrationsPending(let names) = try #require(error) else { Issue.record("refused otherwise: \(String(describing: error))"); return }
        #expect(names == ["v14-webhooks"])
        #expect("\(try #require(error))".contains("start the hub once"))
    }
}
