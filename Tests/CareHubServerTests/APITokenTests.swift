import CareHubCore
import CareHubCrypto
import CareHubPostgresStorage
import CareHubServer
import CareHubStages
import CareHubStorage
import CareHubTesting
import Foundation
import Testing

/// One implementation of the token store under the contract: SQLite on a real file, PostgreSQL
/// on a database of its own, or the double.
struct TokenStoreSubject {
    let name: String
    let store: any APITokenStore
    let audited: () async throws -> [AuditEvent]
    let keep: Any

    static func all(auditRefuses: Bool = false) async throws -> [TokenStoreSubject] {
        let fixture = try KeyFixture()
        let sqliteAudit = SQLiteAuditLog(database: fixture.database, checkpointKey: auditRefuses ? nil : SymmetricKey(randomByteCount: 32))
        let postgres = try await PostgresStoreFixture()
        let postgresAudit = PostgresAuditLog(database: postgres.database, checkpointKey: auditRefuses ? nil : SymmetricKey(randomByteCount: 32))
        let memoryAudit = RecordingAuditLog()
        memoryAudit.failing = auditRefuses
        return [
            TokenStoreSubject(
                name: "sqlite", store: SQLiteAPITokenStore(database: fixture.database, audit: sqliteAudit),
                audited: { try sqliteAudit.entries().map(\.event) }, keep: fixture),
            TokenStoreSubject(
                name: "postgres", store: PostgresAPITokenStore(database: postgres.database, audit: postgresAudit),
                audited: { try await postgresAudit.entries().map(\.event) }, keep: postgres),
            TokenStoreSubject(name: "memory", store: MemoryAPITokenStore(audit: memoryAudit), audited: { memoryAudit.events }, keep: ()),
        ]
    }
}

@Suite("integration token store contract")
struct APITokenStoreContractTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func token(_ org: String = "clinic", state: APITokenState = .active, after seconds: Double = 0) -> APIToken {
        APIToken(
            id: .random(), org: OrgID(org), integration: "ehr", scopes: [.orgRead, .messagesRead], allowFrom: [CIDRBlock("10.0.0.0/8")!],
            createdBy: "dr.admin", createdAt: at.addingTimeInterval(seconds), expiresAt: at.addingTimeInterval(86_400), state: state)
    }

    func event(_ token: APIToken, _ action: String) -> AuditEvent {
        AuditEvent(at: at, org: token.org, actor: "dr.admin", address: "local", action: action, target: token.id.rawValue, detail: "")
    }

    @Test func aTokenIsFoundOnlyByItsDigestAndListedNewestFirst() async throws {
        for subject in try await TokenStoreSubject.all() {
            let first = token()
            let second = token(after: 5)
            let theirs = token("elsewhere")
            for made in [first, second, theirs] {
                try await subject.store.create(made, digest: Array(made.id.rawValue.utf8), recording: [event(made, "token.created")])
            }
            let digest = Array(first.id.rawValue.utf8)
            #expect(try await subject.store.token(first.id, digest: digest) == first, "\(subject.name)")
            #expect(try await subject.store.token(first.id, digest: [9, 9, 9]) == nil, "\(subject.name)")
            #expect(try await subject.store.token(first.id, digest: []) == nil, "\(subject.name)")
            #expect(try await subject.store.token(first.id) == first, "\(subject.name)")
            #expect(try await subject.store.list(org: OrgID("clinic")).map(\.id) == [second.id, first.id], "\(subject.name)")
            #expect(try await subject.audited().filter { $0.action == "token.created" }.count == 3, "\(subject.name)")
        }
    }

    @Test func approvalAndRevocationAreRecordedAndRevocationIsForGood() async throws {
        for subject in try await TokenStoreSubject.all() {
            let waiting = token(state: .awaitingApproval)
            try await subject.store.create(waiting, digest: [1], recording: [])
            let approved = try #require(try await subject.store.decide(waiting.id, state: .active, by: "dr.second", at: at, recording: [event(waiting, "token.approved")]))
            #expect(approved.state == .active && approved.decidedBy == "dr.second" && approved.decidedAt == at, "\(subject.name)")
            let revoked = try await subject.store.decide(waiting.id, state: .revoked, by: "dr.admin", at: at, recording: [event(waiting, "token.revoked")])
            #expect(revoked?.state == .revoked, "\(subject.name)")
            let again = try await subject.store.decide(waiting.id, state: .active, by: "dr.second", at: at, recording: [event(waiting, "token.approved")])
            #expect(again?.state == .revoked && again?.decidedBy == "dr.admin", "\(subject.name): a revoked token stays revoked")
            #expect(try await subject.audited().map(\.action) == ["token.approved", "token.revoked"], "\(subject.name): nothing audited for a change not made")
            #expect(try await subject.store.decide(.random(), state: .revoked, by: "x", at: at, recording: []) == nil, "\(subject.name)")
        }
    }

    @Test func aChangeWhoseAuditCannotBeWrittenIsNotMade() async throws {
        for subject in try await TokenStoreSubject.all(auditRefuses: true) {
            let made = token()
            await #expect(throws: (any Error).self, "\(subject.name)") {
                try await subject.store.create(made, digest: [1], recording: [self.event(made, "token.created")])
            }
            #expect(try await subject.store.token(made.id) == nil, "\(subject.name)")
        }
    }
}

/// The rules of integration tokens, over the in-memory store.
@Suite("integration tokens")
struct APITokensTests {
    static let config = """
        [org riverside]
        hipaa = on
        stage auth twofactor=required
        stage idle timeout=15m
        stage encrypt
        stage store
        stage fanout
        integration ehr type=api baa=yes
        integration dashboard type=api baa=no

        [org lotus]
        hipaa = off
        stage auth
        stage store
        stage fanout
        integration scheduler type=api baa=no
        integration pager type=webhook url=https://pager.example.org/ baa=no
        """

    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let riverside = OrgID("riverside")

    func tokens() throws -> (APITokens, RecordingAuditLog) {
        let config = try StageRegistry.standard.load(Self.config, file: "test.conf")
        let audit = RecordingAuditLog()
        return (APITokens(store: MemoryAPITokenStore(audit: audit), config: { config }), audit)
    }

    func code(_ work: () async throws -> Any) async -> ErrorCode? { await refusalCode(work) }

    @Test func aLowRiskTokenWorksAtOnceAndItsSecretIsShownOnceAndKeptAsADigest() async throws {
        let (tokens, audit) = try tokens()
        let made = try await tokens.create(org: riverside, integration: "dashboard", scopes: [.queueRead, .orgRead], by: "dr.admin", address: "local", at: now)
        #expect(made.token.state == .active && made.token.scopes == [.orgRead, .queueRead])
        #expect(made.secret.hasPrefix("chk_") && APIToken.id(ofSecret: made.secret) == made.token.id)
        #expect(try await tokens.authenticate(made.secret, org: riverside, address: IPAddress("10.1.2.3"), at: now) == made.token)
        let created = try #require(audit.events.first)
        #expect(created.action == "token.created" && created.target == made.token.id.rawValue && created.detail.contains("risk=low state=active"))
        #expect(!audit.events.contains { $0.detail.contains(made.secret) || $0.detail.contains(String(made.secret.suffix(20))) })
        // A secret with one character changed, or of another organisation, opens nothing.
        var wrong = made.secret
        wrong.removeLast()
        wrong.append(made.secret.last == "a" ? "b" : "a")
        #expect(await code { try await tokens.authenticate(wrong, org: riverside, address: nil, at: now) } == .authFailed)
        #expect(await code { try await tokens.authenticate(made.secret, org: OrgID("lotus"), address: nil, at: now) } == .authFailed)
        #expect(await code { try await tokens.authenticate("Bearer nonsense", org: riverside, address: nil, at: now) } == .authFailed)
    }

    @Test func aPHITokenWaitsForASecondAdminAndEndsWhenRevokedOrExpired() async throws {
        let (tokens, audit) = try tokens()
        let made = try await tokens.create(
            org: riverside, integration: "ehr", scopes: [.transcriptsRead], lifetime: 2 * 86_400, by: "dr.admin", address: "local", at: now)
        #expect(made.token.state == .awaitingApproval)
        #expect(await code { try await tokens.authenticate(made.secret, org: riverside, address: nil, at: now) } == .authFailed)
        // Its maker may not approve it, unless confirming with a second factor.
        #expect(await code { try await tokens.approve(org: riverside, id: made.token.id, by: "dr.admin", address: "local", at: now) } == .forbidden)
        let approved = try await tokens.approve(org: riverside, id: made.token.id, by: "dr.second", address: "local", at: now)
        #expect(approved.state == .active && approved.decidedBy == "dr.second")
        #expect(await code { try await tokens.approve(org: riverside, id: made.token.id, by: "dr.second", address: "local", at: now) } == .conflict)
        #expect(try await tokens.authenticate(made.secret, org: riverside, address: nil, at: now).id == made.token.id)
        #expect(await code { try await tokens.authenticate(made.secret, org: riverside, address: nil, at: now.addingTimeInterval(2 * 86_400)) } == .authFailed)
        _ = try await tokens.revoke(org: riverside, id: made.token.id, by: "dr.admin", address: "local", at: now)
        #expect(await code { try await tokens.authenticate(made.secret, org: riverside, address: nil, at: now) } == .authFailed)
        #expect(await code { try await tokens.revoke(org: riverside, id: made.token.id, by: "dr.admin", address: "local", at: now) } == .conflict)
        #expect(audit.actions == ["token.created", "token.approved", "token.revoked"])

        let own = try await tokens.create(org: riverside, integration: "ehr", scopes: [.messagesRead], by: "dr.only", address: "local", at: now)
        let confirmed = try await tokens.approve(org: riverside, id: own.token.id, by: "dr.only", address: "local", at: now, confirmedSecondFactor: true)
        #expect(confirmed.state == .active && audit.events.last?.detail.hasSuffix("second_factor=yes") == true)
    }

    @Test func inAHIPAAOrganisationOnlyABAAIntegrationMayHoldAHighRiskScope() async throws {
        let (tokens, _) = try tokens()
        #expect(await code {
            try await tokens.create(org: riverside, integration: "dashboard", scopes: [.orgRead, .messagesRead], by: "dr.admin", address: "local", at: now)
        } == .forbidden)
        #expect(try await tokens.list(org: riverside).isEmpty, "nothing was made")
        // Outside HIPAA mode a BAA is not asked for.
        let lotus = try await tokens.create(org: OrgID("lotus"), integration: "scheduler", scopes: [.messagesRead], by: "coach", address: "local", at: now)
        #expect(lotus.token.state == .awaitingApproval)
    }

    @Test func tokensBelongToADeclaredAPIIntegrationAndHaveSaneBounds() async throws {
        let (tokens, _) = try tokens()
        #expect(await code { try await tokens.create(org: riverside, integration: "nobody", scopes: [.orgRead], by: "a", address: "l", at: now) } == .notFound)
        #expect(await code { try await tokens.create(org: OrgID("lotus"), integration: "pager", scopes: [.orgRead], by: "a", address: "l", at: now) } == .notFound)
        #expect(await code { try await tokens.create(org: OrgID("nowhere"), integration: "ehr", scopes: [.orgRead], by: "a", address: "l", at: now) } == .unknownOrg)
        #expect(await code { try await tokens.create(org: riverside, integration: "ehr", scopes: [], by: "a", address: "l", at: now) } == .invalidField)
        #expect(await code {
            try await tokens.create(org: riverside, integration: "ehr", scopes: [.orgRead], lifetime: 400 * 86_400, by: "a", address: "l", at: now)
        } == .invalidField)
        #expect(APIScope.list("org:read,messages:read") == [.orgRead, .messagesRead])
        #expect(APIScope.list("org:read,org:read") == nil && APIScope.list("org:write") == nil && APIScope.list("") == nil)
    }

    @Test func aTokenWithAnAllowListWorksOnlyFromThoseAddresses() async throws {
        let (tokens, _) = try tokens()
        let made = try await tokens.create(
            org: riverside, integration: "ehr", scopes: [.orgRead], allowFrom: [CIDRBlock("10.0.0.0/8")!], by: "dr.admin", address: "local", at: now)
        #expect(try await tokens.authenticate(made.secret, org: riverside, address: IPAddress("10.9.8.7"), at: now).id == made.token.id)
        #expect(await code { try await tokens.authenticate(made.secret, org: riverside, address: IPAddress("192.168.1.1"), at: now) } == .authFailed)
        #expect(await code { try await tokens.authenticate(made.secret, org: riverside, address: nil, at: now) } == .authFailed)
    }
}
