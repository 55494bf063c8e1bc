import CareHubCore
import CareHubCrypto
import CareHubPostgresStorage
@testable import CareHubServer
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// One implementation of the webhook store under the contract: SQLite on a real file or
/// PostgreSQL on a fresh database (each with its outbox as the events port), or the double (its
/// own events port).
struct WebhookStoreSubject {
    let name: String
    let store: any WebhookStore
    let events: any WebhookEvents
    /// The subscriptions each raised event was queued for, in order.
    let queued: () async throws -> [String]
    let audited: () async throws -> [AuditEvent]
    let keep: Any

    static func all(auditRefuses: Bool = false) async throws -> [WebhookStoreSubject] {
        let fixture = try KeyFixture()
        let sqliteAudit = SQLiteAuditLog(database: fixture.database, checkpointKey: auditRefuses ? nil : SymmetricKey(randomByteCount: 32))
        let memoryAudit = RecordingAuditLog()
        memoryAudit.failing = auditRefuses
        let memory = MemoryWebhookStore(audit: memoryAudit)
        let outbox = SQLiteWebhookOutbox(database: fixture.database)
        return [
            WebhookStoreSubject(
                name: "sqlite", store: SQLiteWebhookStore(database: fixture.database, audit: sqliteAudit), events: outbox,
                queued: { try outbox.pending().map(\.webhook) },
                audited: { try sqliteAudit.entries().map(\.event) }, keep: fixture),
            WebhookStoreSubject(
                name: "memory", store: memory, events: memory, queued: { memory.raised.map(\.webhook) }, audited: { memoryAudit.events }, keep: ()),
            try await postgres(auditRefuses: auditRefuses),
        ]
    }

    /// The PostgreSQL store and outbox on a database of their own; without its key the trail refuses events.
    static func postgres(auditRefuses: Bool) async throws -> WebhookStoreSubject {
        let fixture = try await PostgresStoreFixture(connections: 2)
        let audit = PostgresAuditLog(database: fixture.database, checkpointKey: auditRefuses ? nil : SymmetricKey(randomByteCount: 32))
        let outbox = PostgresWebhookOutbox(database: fixture.database)
        return WebhookStoreSubject(
            name: "postgres", store: PostgresWebhookStore(database: fixture.database, audit: audit), events: outbox,
            queued: { try await outbox.pending().map(\.webhook) },
            audited: { try await audit.entries().map(\.event) }, keep: fixture)
    }
}

@Suite("webhook store contract")
struct WebhookStoreContractTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func webhook(_ org: String = "clinic", events: [WebhookEventKind] = WebhookEventKind.allCases, after seconds: Double = 0) -> Webhook {
        Webhook(
            id: "wh_" + Hex.encode(SecureRandom.bytes(8)), org: OrgID(org), integration: "ehr", url: "https://hooks.example.org/in",
            events: events, createdAt: at.addingTimeInterval(seconds))
    }

    func event(_ webhook: Webhook, _ action: String) -> AuditEvent {
        AuditEvent(at: at, org: webhook.org, actor: "integration:ehr", address: "local", action: action, target: webhook.id)
    }

    @Test func subscriptionsAreListedPerOrganisationOldestFirstAndAudited() async throws {
        for subject in try await WebhookStoreSubject.all() {
            let first = webhook()
            let second = webhook(after: 5)
            let theirs = webhook("elsewhere")
            for made in [first, second, theirs] {
                #expect(try await subject.store.create(made, limit: 10, recording: [event(made, "webhook.created")]), "\(subject.name)")
            }
            #expect(try await subject.store.list(org: OrgID("clinic")) == [first, second], "\(subject.name)")
            #expect(try await subject.store.webhook(theirs.id, org: OrgID("clinic")) == nil, "\(subject.name): another organisation's")
            #expect(try await subject.store.webhook(first.id, org: OrgID("clinic")) == first, "\(subject.name)")
            #expect(try await subject.audited().map(\.target) == [first.id, second.id, theirs.id], "\(subject.name)")
        }
    }

    @Test func anOrganisationHoldsNoMoreThanTheLimit() async throws {
        for subject in try await WebhookStoreSubject.all() {
            for _ in 0..<3 { #expect(try await subject.store.create(webhook(), limit: 3, recording: []), "\(subject.name)") }
            #expect(try await subject.store.create(webhook(), limit: 3, recording: []) == false, "\(subject.name)")
            #expect(try await subject.store.create(webhook("elsewhere"), limit: 3, recording: []), "\(subject.name): the limit is per organisation")
            #expect(try await subject.store.list(org: OrgID("clinic")).count == 3, "\(subject.name)")
        }
    }

    @Test func deletingTouchesOnlyTheOrganisationsOwnAndIsAudited() async throws {
        for subject in try await WebhookStoreSubject.all() {
            let mine = webhook()
            #expect(try await subject.store.create(mine, limit: 10, recording: []), "\(subject.name)")
            #expect(try await subject.store.delete(mine.id, org: OrgID("elsewhere"), recording: [event(mine, "webhook.deleted")]) == false, "\(subject.name)")
            #expect(try await subject.audited().isEmpty, "\(subject.name): nothing deleted, nothing recorded")
            #expect(try await subject.store.delete(mine.id, org: OrgID("clinic"), recording: [event(mine, "webhook.deleted")]), "\(subject.name)")
            #expect(try await subject.audited().map(\.action) == ["webhook.deleted"], "\(subject.name)")
            #expect(try await subject.store.list(org: OrgID("clinic")).isEmpty, "\(subject.name)")
        }
    }

    @Test func aChangeTheAuditTrailRefusesIsNotMade() async throws {
        for subject in try await WebhookStoreSubject.all(auditRefuses: true) {
            let refused = webhook()
            await #expect(throws: (any Error).self, "\(subject.name)") {
                _ = try await subject.store.create(refused, limit: 10, recording: [event(refused, "webhook.created")])
            }
            #expect(try await subject.store.list(org: OrgID("clinic")).isEmpty, "\(subject.name)")
        }
    }

    @Test func anEventIsQueuedOnlyForTheOrganisationsSubscriptionsThatAskedForIt() async throws {
        for subject in try await WebhookStoreSubject.all() {
            let messages = webhook(events: [.messageCreated])
            let ends = webhook(events: [.conversationEnded], after: 1)
            let theirs = webhook("elsewhere", events: [.messageCreated])
            for made in [messages, ends, theirs] { #expect(try await subject.store.create(made, limit: 10, recording: []), "\(subject.name)") }
            try await subject.events.raise(WebhookEvent(.messageCreated, org: OrgID("clinic"), conversation: ConversationID("r1"), seq: 3, at: at))
            try await subject.events.raise(WebhookEvent(.conversationOpened, org: OrgID("clinic"), conversation: ConversationID("r1"), at: at))
            #expect(try await subject.queued() == [messages.id], "\(subject.name)")
        }
    }
}

@Suite("webhook signatures")
struct WebhookSignatureTests {
    @Test func theSignatureIsHMACSHA256OfTimestampDotBodyUnderTheSecret() {
        // Computed independently: Python's hmac.new(b"whsec_test", b'1767000000.{"event":"message.created"}', sha256).
        #expect(WebhookSigner.signature(secret: "whsec_test", timestamp: "1767000000", body: #"{"event":"message.created"}"#)
            == "sha256=3d1a32e461e614ce2fd3a99c78116b9e158b6195bf957bfbf11a256564b14a87")
        #expect(WebhookSigner.signature(secret: "whsec_test", timestamp: "1767000001", body: #"{"event":"message.created"}"#)
            != "sha256=3d1a32e461e614ce2fd3a99c78116b9e158b6195bf957bfbf11a256564b14a87")
    }

    @Test func eachSubscriptionHasItsOwnSecretThatTheMasterKeyDerivesAgain() throws {
        let master = SymmetricKey(randomByteCount: 32)
        let signer = WebhookSigner(master: master)
        let first = try signer.secret(for: "wh_0123456789abcdef")
        #expect(first.hasPrefix("whsec_") && first.utf8.count == 6 + 64)
        #expect(try WebhookSigner(master: master).secret(for: "wh_0123456789abcdef") == first, "derived again, never stored")
        #expect(try signer.secret(for: "wh_0123456789abcdee") != first)
        #expect(try WebhookSigner(master: SymmetricKey(randomByteCount: 32)).secret(for: "wh_0123456789abcdef") != first)
    }

    @Test func anEventsBodyCarriesIdsAndTimesOnly() {
        let event = WebhookEvent(
            .messageCreated, org: OrgID("clinic"), conversation: ConversationID("r1"), seq: 7, at: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(event.json == #"{"event":"message.created","org":"clinic","conversation":"r1","seq":7,"at":1800000000000}"#)
        #expect(!WebhookEvent(.conversationEnded, org: OrgID("clinic"), conversation: ConversationID("r1"), at: Date()).json.contains("seq"))
    }
}
