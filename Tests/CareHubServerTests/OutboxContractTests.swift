import CareHubCore
import CareHubCrypto
import CareHubPostgres
import CareHubPostgresStorage
import CareHubStorage
import Foundation
import Testing

/// One implementation of the notification outbox under its contract: SQLite on a real file, or
/// PostgreSQL on a fresh database of the throwaway server. The two have item types of their own;
/// the subject sees both as ``Queued``.
struct OutboxSubject {
    struct Queued: Hashable {
        let id: Int64
        let integration: String
        let attempts: Int
        let notification: StaffNotification
    }

    let name: String
    let outbox: any Notifier
    let pending: () async throws -> [Queued]
    let due: (_ at: Date, _ limit: Int, _ excluding: Set<[String]>) async throws -> [Queued]
    let retry: (_ id: Int64, _ attempts: Int, _ next: Date, _ reason: String) async throws -> Void
    let markSent: (_ id: Int64, _ at: Date) async throws -> Void
    let markRefused: (_ id: Int64, _ reason: String, _ at: Date) async throws -> Void
    let markFailed: (_ id: Int64, _ reason: String, _ at: Date) async throws -> Void
    let counts: () async throws -> [String]
    /// Rows that still hold a preview.
    let previews: () async throws -> Int
    let keep: Any

    static func all() async throws -> [OutboxSubject] {
        let fixture = try KeyFixture()
        let sqlite = SQLiteOutbox(database: fixture.database)
        func queued(_ item: SQLiteOutbox.Item) -> Queued {
            Queued(id: item.id, integration: item.integration, attempts: item.attempts, notification: item.notification)
        }
        return [
            OutboxSubject(
                name: "sqlite", outbox: sqlite, pending: { try sqlite.pending().map(queued) },
                due: { at, limit, lanes in
                    try await sqlite.due(at: at, limit: limit, excluding: Set(lanes.map { SQLiteOutbox.Lane(org: OrgID($0[0]), integration: $0[1]) }))
                        .map(queued)
                },
                retry: sqlite.retry, markSent: sqlite.markSent, markRefused: sqlite.markRefused, markFailed: sqlite.markFailed,
                counts: { try await sqlite.counts().map { "\($0.org.rawValue) \($0.state) \($0.count)" } },
                previews: { try fixture.database.rawRead("SELECT COUNT(*) FROM outbox WHERE preview IS NOT NULL") },
                keep: fixture),
            try await postgres(),
        ]
    }

    static func postgres() async throws -> OutboxSubject {
        let fixture = try await PostgresStoreFixture(connections: 2)
        let outbox = PostgresOutbox(database: fixture.database)
        return OutboxSubject(
            name: "postgres", outbox: outbox, pending: { try await outbox.pending().map(queued) },
            due: { at, limit, lanes in
                try await outbox.due(at: at, limit: limit, excluding: Set(lanes.map { PostgresOutbox.Lane(org: OrgID($0[0]), integration: $0[1]) }))
                    .map(queued)
            },
            retry: outbox.retry, markSent: outbox.markSent, markRefused: outbox.markRefused, markFailed: outbox.markFailed,
            counts: { try await outbox.counts().map { "\($0.org.rawValue) \($0.state) \($0.count)" } },
            previews: { Int(try await fixture.database.client.query("SELECT COUNT(*) AS n FROM outbox WHERE preview IS NOT NULL")[0].int("n")) },
            keep: fixture)
    }

    static func queued(_ item: PostgresOutbox.Item) -> Queued {
        Queued(id: item.id, integration: item.integration, attempts: item.attempts, notification: item.notification)
    }
}

@Suite("notification outbox contract")
struct OutboxContractTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func notificationsAreQueuedDurably() async throws {
        for subject in try await OutboxSubject.all() {
            let note = StaffNotification(org: org, conversation: ConversationID("c_1"), unread: 2, preview: "Can I…", from: "visitor", at: at)
            try await subject.outbox.enqueue(note, via: ["pager", "desk"])
            let pending = try await subject.pending()
            #expect(pending.map(\.integration) == ["pager", "desk"], "\(subject.name)")
            #expect(pending.allSatisfy { $0.notification == note && $0.attempts == 0 }, "\(subject.name)")
            // A failed attempt waits for its time; a sent one is done and loses its preview.
            try await subject.retry(pending[0].id, 1, at.addingTimeInterval(60), "HTTP 503")
            #expect(try await subject.due(at, 10, []).map(\.integration) == ["desk"], "\(subject.name)")
            #expect(try await subject.due(at.addingTimeInterval(60), 10, []).map(\.integration) == ["pager", "desk"], "\(subject.name)")
            #expect(try await subject.due(at.addingTimeInterval(60), 10, []).first?.attempts == 1, "\(subject.name)")
            try await subject.markSent(pending[1].id, at)
            #expect(try await subject.pending().map(\.integration) == ["pager"], "\(subject.name)")
            #expect(try await subject.previews() == 1, "\(subject.name)")
        }
    }

    @Test func dueItemsAreOldestFirstWithoutTheLanesBeingSentAndWithinTheLimit() async throws {
        for subject in try await OutboxSubject.all() {
            let other = OrgID("elsewhere")
            try await subject.outbox.enqueue(StaffNotification(org: org, conversation: ConversationID("c_1"), unread: 1, at: at), via: ["pager"])
            try await subject.outbox.enqueue(StaffNotification(org: other, conversation: ConversationID("c_2"), unread: 1, at: at), via: ["pager"])
            try await subject.outbox.enqueue(StaffNotification(org: org, conversation: ConversationID("c_1"), unread: 2, at: at), via: ["pager", "desk"])
            try await subject.outbox.enqueue(StaffNotification(org: org, conversation: ConversationID("c_3"), unread: 1, at: at.addingTimeInterval(5)), via: ["desk"])
            let due = try await subject.due(at, 10, [])
            #expect(due.map { "\($0.notification.org.rawValue)/\($0.integration)/\($0.notification.unread)" }
                == ["clinic/pager/1", "elsewhere/pager/1", "clinic/pager/2", "clinic/desk/2"], "\(subject.name): queued later is not due yet")
            #expect(due.map(\.id) == due.map(\.id).sorted(), "\(subject.name)")
            #expect(try await subject.due(at, 2, []).map(\.id) == Array(due.map(\.id).prefix(2)), "\(subject.name)")
            #expect(try await subject.due(at, 10, [["clinic", "pager"]]).map { "\($0.notification.org.rawValue)/\($0.integration)" }
                == ["elsewhere/pager", "clinic/desk"], "\(subject.name): a lane is an organisation's integration")
            #expect(try await subject.due(at, 10, [["clinic", "pager"], ["elsewhere", "pager"]]).map(\.integration) == ["desk"], "\(subject.name)")
        }
    }

    @Test func finishedItemsAreNeitherPendingNorDueAndAreCounted() async throws {
        for subject in try await OutboxSubject.all() {
            let note = StaffNotification(org: org, conversation: ConversationID("c_1"), unread: 1, preview: "hello", from: "visitor", at: at)
            try await subject.outbox.enqueue(note, via: ["a", "b", "c", "d"])
            try await subject.outbox.enqueue(note, via: [])
            let items = try await subject.pending()
            #expect(items.count == 4, "\(subject.name): no integration, no row")
            try await subject.markSent(items[0].id, at)
            try await subject.markRefused(items[1].id, "integration 'b' no longer configured", at)
            try await subject.markFailed(items[2].id, "HTTP 500", at)
            #expect(try await subject.pending().map(\.integration) == ["d"], "\(subject.name)")
            #expect(try await subject.due(at.addingTimeInterval(3600), 10, []).map(\.integration) == ["d"], "\(subject.name)")
            #expect(try await subject.previews() == 1, "\(subject.name): every finished row loses its preview")
            #expect(try await subject.counts() == ["clinic failed 1", "clinic pending 1", "clinic refused 1", "clinic sent 1"], "\(subject.name)")
        }
    }
}

/// Claiming on PostgreSQL, where several nodes dispatch from one outbox.
@Suite("PostgreSQL outbox claims")
struct PostgresOutboxClaimTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aClaimedRowIsNotDueForAnotherNodeUntilItsLeaseRunsOut() async throws {
        let fixture = try await PostgresStoreFixture(connections: 2)
        let first = PostgresOutbox(database: fixture.database)
        let second = PostgresOutbox(database: try await fixture.node(connections: 2))
        try await first.enqueue(StaffNotification(org: org, conversation: ConversationID("c_1"), unread: 1, at: at), via: ["pager", "desk"])
        try await first.enqueue(StaffNotification(org: org, conversation: ConversationID("c_1"), unread: 2, at: at), via: ["pager"])

        let claimed = try await first.claim(at: at, limit: 2, lease: 60)
        #expect(claimed.map { "\($0.integration)/\($0.notification.unread)" } == ["pager/1", "desk/1"], "oldest first")
        #expect(try await second.claim(at: at, limit: 10, excluding: [PostgresOutbox.Lane(org: org, integration: "pager")], lease: 60).isEmpty,
            "the lane excluded, and the rest is claimed")
        #expect(try await second.claim(at: at.addingTimeInterval(59), limit: 10, lease: 60).map(\.notification.unread) == [2])
        #expect(try await second.claim(at: at.addingTimeInterval(59), limit: 10, lease: 60).isEmpty)
        #expect(try await first.pending().count == 3, "claimed rows stay pending until marked")

        // The first node marks one and lets the other's lease run out (as if it had died).
        try await first.markSent(claimed[0].id, at: at.addingTimeInterval(1))
        let again = try await second.claim(at: at.addingTimeInterval(60), limit: 10, lease: 60)
        #expect(again.map(\.id) == [claimed[1].id], "an abandoned claim is claimed again; a sent row never")
        try await second.retry(again[0].id, attempts: 1, next: at.addingTimeInterval(61), reason: "HTTP 503")
        #expect(try await first.claim(at: at.addingTimeInterval(61), limit: 10, lease: 60).map(\.attempts) == [1], "a retry ends the claim")
    }

    /// Two nodes, each claiming from two tasks at once, until nothing is due: every row is
    /// claimed, and by one claim only.
    @Test func twoNodesClaimingAtOnceNeverClaimTheSameRowAndMissNone() async throws {
        let fixture = try await PostgresStoreFixture(connections: 3)
        let nodes = [PostgresOutbox(database: fixture.database), PostgresOutbox(database: try await fixture.node(connections: 3))]
        let integrations = (0..<8).map { "hook\($0)" }
        for unread in 1...40 {
            try await nodes[0].enqueue(
                StaffNotification(org: OrgID("org\(unread % 3)"), conversation: ConversationID("c_\(unread)"), unread: unread, at: at), via: integrations)
        }
        let queued = Set(try await nodes[0].pending(limit: 1_000).map(\.id))
        #expect(queued.count == 320)

        let claims = try await withThrowingTaskGroup(of: [[Int64]].self) { group in
            for node in nodes {
                for _ in 0..<2 {
                    group.addTask {
                        var claims: [[Int64]] = []
                        while true {
                            let claimed = try await node.claim(at: at.addingTimeInterval(1), limit: 7)
                            if claimed.isEmpty { return claims }
                            #expect(claimed.map(\.id) == claimed.map(\.id).sorted(), "a claim is oldest first")
                            claims.append(claimed.map(\.id))
                        }
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let claimed = claims.flatMap { $0 }
        #expect(claimed.count == Set(claimed).count, "no row was claimed twice")
        #expect(Set(claimed) == queued, "every row was claimed")
    }
}

/// The webhook delivery queue of each adapter, SQLite and PostgreSQL, with its store.
struct WebhookOutboxSubject {
    struct Queued: Hashable {
        let id: Int64
        let webhook: String
        let attempts: Int
    }

    let name: String
    let store: any WebhookStore
    let events: any WebhookEvents
    let pending: () async throws -> [Queued]
    let due: (_ at: Date, _ limit: Int, _ excluding: Set<String>) async throws -> [Queued]
    let retry: (_ id: Int64, _ attempts: Int, _ next: Date, _ reason: String) async throws -> Void
    let markSent: (_ id: Int64, _ at: Date) async throws -> Void
    let keep: Any

    static func all() async throws -> [WebhookOutboxSubject] {
        let fixture = try KeyFixture()
        let sqliteAudit = SQLiteAuditLog(database: fixture.database, checkpointKey: SymmetricKey(randomByteCount: 32))
        let sqlite = SQLiteWebhookOutbox(database: fixture.database)
        let postgres = try await PostgresStoreFixture(connections: 2)
        let postgresAudit = PostgresAuditLog(database: postgres.database, checkpointKey: SymmetricKey(randomByteCount: 32))
        let outbox = PostgresWebhookOutbox(database: postgres.database)
        return [
            WebhookOutboxSubject(
                name: "sqlite", store: SQLiteWebhookStore(database: fixture.database, audit: sqliteAudit), events: sqlite,
                pending: { try sqlite.pending().map { Queued(id: $0.id, webhook: $0.webhook, attempts: $0.attempts) } },
                due: { try await sqlite.due(at: $0, limit: $1, excluding: $2).map { Queued(id: $0.id, webhook: $0.webhook, attempts: $0.attempts) } },
                retry: sqlite.retry, markSent: sqlite.markSent, keep: fixture),
            WebhookOutboxSubject(
                name: "postgres", store: PostgresWebhookStore(database: postgres.database, audit: postgresAudit), events: outbox,
                pending: { try await outbox.pending().map { Queued(id: $0.id, webhook: $0.webhook, attempts: $0.attempts) } },
                due: { try await outbox.due(at: $0, limit: $1, excluding: $2).map { Queued(id: $0.id, webhook: $0.webhook, attempts: $0.attempts) } },
                retry: outbox.retry, markSent: outbox.markSent, keep: postgres),
        ]
    }
}

@Suite("webhook outbox contract")
struct WebhookOutboxContractTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func webhook(after seconds: Double) -> Webhook {
        Webhook(
            id: "wh_" + String(Int(seconds)), org: org, integration: "ehr", url: "https://hooks.example.org/in", events: WebhookEventKind.allCases,
            createdAt: at.addingTimeInterval(seconds))
    }

    @Test func deliveriesAreDueOldestFirstRetriedLaterAndRefusedWhenTheirSubscriptionGoes() async throws {
        for subject in try await WebhookOutboxSubject.all() {
            let first = webhook(after: 0), second = webhook(after: 1)
            for made in [first, second] { #expect(try await subject.store.create(made, limit: 10, recording: []), "\(subject.name)") }
            for seq in 1...2 {
                try await subject.events.raise(WebhookEvent(.messageCreated, org: org, conversation: ConversationID("r1"), seq: UInt64(seq), at: at))
            }
            let queued = try await subject.pending()
            #expect(queued.map(\.webhook) == [first.id, second.id, first.id, second.id], "\(subject.name)")
            #expect(try await subject.due(at, 10, [first.id]).map(\.webhook) == [second.id, second.id], "\(subject.name)")
            #expect(try await subject.due(at, 3, []).map(\.id) == Array(queued.map(\.id).prefix(3)), "\(subject.name)")
            try await subject.retry(queued[0].id, 1, at.addingTimeInterval(30), "HTTP 503")
            #expect(try await subject.due(at, 10, []).map(\.id) == Array(queued.map(\.id).dropFirst()), "\(subject.name)")
            #expect(try await subject.due(at.addingTimeInterval(30), 10, []).first?.attempts == 1, "\(subject.name)")
            try await subject.markSent(queued[1].id, at)
            #expect(try await subject.store.delete(first.id, org: org, recording: []), "\(subject.name)")
            #expect(try await subject.pending().map(\.id) == [queued[3].id], "\(subject.name): the deleted subscription's are refused, the sent one is done")
        }
    }
}

@Suite("PostgreSQL webhook outbox claims")
struct PostgresWebhookOutboxClaimTests {
    let org = OrgID("clinic")
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func twoNodesClaimingAtOnceNeverClaimTheSameDelivery() async throws {
        let fixture = try await PostgresStoreFixture(connections: 3)
        let audit = PostgresAuditLog(database: fixture.database, checkpointKey: SymmetricKey(randomByteCount: 32))
        let store = PostgresWebhookStore(database: fixture.database, audit: audit)
        for index in 0..<4 {
            let made = Webhook(
                id: "wh_\(index)", org: org, integration: "ehr", url: "https://hooks.example.org/\(index)", events: [.messageCreated],
                createdAt: at.addingTimeInterval(Double(index)))
            #expect(try await store.create(made, limit: 10, recording: []))
        }
        let nodes = [PostgresWebhookOutbox(database: fixture.database), PostgresWebhookOutbox(database: try await fixture.node(connections: 3))]
        for seq in 1...60 {
            try await nodes[seq % 2].raise(WebhookEvent(.messageCreated, org: org, conversation: ConversationID("r1"), seq: UInt64(seq), at: at))
        }
        let queued = Set(try await nodes[0].pending(limit: 1_000).map(\.id))
        #expect(queued.count == 240)
        let claimed = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for node in nodes {
                for _ in 0..<2 {
                    group.addTask {
                        var ids: [Int64] = []
                        while true {
                            let claim = try await node.claim(at: at, limit: 5)
                            if claim.isEmpty { return ids }
                            ids += claim.map(\.id)
                        }
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claimed.count == Set(claimed).count, "no delivery was claimed twice")
        #expect(Set(claimed) == queued, "every delivery was claimed")
        #expect(try await nodes[1].claim(at: at.addingTimeInterval(PostgresOutbox.defaultLease), limit: 1).count == 1, "claimable again once the lease ends")
    }
}
