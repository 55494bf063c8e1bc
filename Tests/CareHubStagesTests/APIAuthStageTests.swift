import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Synchronization
import Testing

/// The end of a test chain: records every request that reaches it.
private struct RecordingStage: Stage {
    struct Configuration: StageConfiguration {
        init(parameters: inout StageParameters, org: OrgSettings) throws {}
        var summary: [String] { [] }
    }
    static let name = "recording"
    let seen: Seen

    init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) { seen = Seen() }
    init(_ seen: Seen) { self.seen = seen }

    func handle(_ request: Request, next: Next) async throws -> Outcome {
        seen.append(request)
        return try await next(request)
    }
}

private final class Seen: Sendable {
    private let requests = Mutex<[Request]>([])
    func append(_ request: Request) { requests.withLock { $0.append(request) } }
    var all: [Request] { requests.withLock { $0 } }
}

/// HTTP API calls with integration tokens through the auth stage (and the stages after it),
/// over the in-memory doubles.
@Suite("auth stage: integration tokens")
struct APIAuthStageTests {
    static let config = """
        [org clinic]
        name = Riverside Clinic
        hipaa = on
        stage auth visitors=on api_calls=10
        stage idle timeout=10m lifetime=1h
        stage encrypt
        stage store history=50
        stage purge on=end
        stage fanout notify=count via=pager
        integration ehr type=api baa=yes
        integration dashboard type=api baa=no
        integration pager type=webhook url=https://pager.example.org/hook baa=yes
        """

    let route = "GET /api/v1/orgs/{org}/conversations/{id}/messages"

    func harness() throws -> StageHarness { try StageHarness(Self.config) }

    /// A token stored for `hub`'s organisation (or `org`), and its secret.
    func token(
        _ hub: StageHarness, integration: String = "ehr", scopes: [APIScope], org: OrgID? = nil, state: APITokenState = .active,
        allowFrom: [String] = [], life: TimeInterval = 86_400
    ) async throws -> (token: APIToken, secret: String) {
        let id = APITokenID.random()
        let secret = APIToken.secret(for: id, random: String(repeating: "a", count: 52))
        let now = hub.world.clock.now
        let token = APIToken(
            id: id, org: org ?? hub.org.id, integration: integration, scopes: scopes, allowFrom: allowFrom.compactMap { CIDRBlock($0) },
            createdBy: "dr.admin", createdAt: now, expiresAt: now.addingTimeInterval(life), state: state)
        try await hub.tokens.create(token, digest: hub.world.credentials.digest(secret), recording: [])
        return (token, secret)
    }

    /// An API call as the HTTP front end builds it.
    func request(_ hub: StageHarness, _ frame: ClientFrame, secret: String, peer: String = "127.0.0.1", endpoint: String? = nil) -> Request {
        var request = hub.world.request(frame, connection: ConnectionID(900), peer: peer)
        request.credential = secret
        request.endpoint = endpoint
        return request
    }

    /// The error a call is refused with, or nil when it went through.
    func refusal(_ pipeline: Pipeline, _ request: Request) async -> PipelineError? {
        do {
            _ = try await pipeline.run(request)
            return nil
        } catch let error as PipelineError {
            return error
        } catch {
            return .internal
        }
    }

    /// A conversation of `org` (the harness's own by default).
    func room(_ hub: StageHarness, org: OrgID? = nil) async throws -> ConversationID {
        try await hub.world.conversations.create(org: org ?? hub.org.id, tokenDigest: Array(UUID().uuidString.utf8), at: hub.world.clock.now).id
    }

    @Test func aTokenThatIsNotInForceIsRefusedAsAnAuthenticationFailure() async throws {
        let hub = try harness()
        let call = ClientFrame.api(.organisation)
        // The baseline: a token in force goes through.
        let good = try await token(hub, scopes: [.orgRead])
        #expect(await refusal(hub.pipeline, request(hub, call, secret: good.secret)) == nil)

        // Unknown: well formed, never issued; or a real id with another secret.
        let unknown = APIToken.secret(for: .random(), random: String(repeating: "b", count: 52))
        #expect(await refusal(hub.pipeline, request(hub, call, secret: unknown))?.code == .authFailed)
        let guessed = APIToken.secret(for: good.token.id, random: String(repeating: "c", count: 52))
        #expect(await refusal(hub.pipeline, request(hub, call, secret: guessed))?.code == .authFailed)

        let theirs = try await token(hub, scopes: [.orgRead], org: OrgID("elsewhere"))
        #expect(await refusal(hub.pipeline, request(hub, call, secret: theirs.secret))?.code == .authFailed)

        let waiting = try await token(hub, scopes: [.orgRead, .messagesRead], state: .awaitingApproval)
        let revoked = try await token(hub, scopes: [.orgRead], state: .revoked)
        let gone = try await token(hub, integration: "retired", scopes: [.orgRead])
        let webhook = try await token(hub, integration: "pager", scopes: [.orgRead])
        for (made, reason) in [(waiting, "awaiting_approval"), (revoked, "revoked"), (gone, "integration"), (webhook, "integration")] {
            let error = await refusal(hub.pipeline, request(hub, call, secret: made.secret))
            #expect(error?.code == .authFailed, "\(reason)")
            #expect(hub.world.audit.events.last?.action == "api.refused", "\(reason)")
            #expect(hub.world.audit.events.last?.detail == "reason=\(reason)", "\(reason)")
            #expect(hub.world.audit.events.last?.target == made.token.id.rawValue, "\(reason)")
        }
    }

    @Test func aTokenStopsWorkingWhenItExpires() async throws {
        let hub = try harness()
        let made = try await token(hub, scopes: [.orgRead], life: 60)
        #expect(await refusal(hub.pipeline, request(hub, .api(.organisation), secret: made.secret)) == nil)
        hub.world.clock.advance(by: 60)
        #expect(await refusal(hub.pipeline, request(hub, .api(.organisation), secret: made.secret))?.code == .authFailed)
        #expect(hub.world.audit.events.last?.detail == "reason=expired")
    }

    @Test func aTokenWorksOnlyFromTheAddressesItAllows() async throws {
        let hub = try harness()
        let made = try await token(hub, scopes: [.orgRead], allowFrom: ["10.0.0.0/8", "2001:db8::/32"])
        #expect(await refusal(hub.pipeline, request(hub, .api(.organisation), secret: made.secret, peer: "10.20.30.40")) == nil)
        #expect(await refusal(hub.pipeline, request(hub, .api(.organisation), secret: made.secret, peer: "2001:db8::7")) == nil)
        for peer in ["192.168.1.5", "11.0.0.1", "2001:db9::1", "not-an-address"] {
            #expect(await refusal(hub.pipeline, request(hub, .api(.organisation), secret: made.secret, peer: peer))?.code == .authFailed, "\(peer)")
            #expect(hub.world.audit.events.last?.detail == "reason=address", "\(peer)")
        }
    }

    @Test func aHighRiskTokenOfAnIntegrationWithoutABAAIsRefusedInAHIPAAOrganisation() async throws {
        let hub = try harness()
        let room = try await room(hub)
        let phi = try await token(hub, integration: "dashboard", scopes: [.messagesRead])
        #expect(await refusal(hub.pipeline, request(hub, .api(.messages(room, after: 0, limit: 10)), secret: phi.secret))?.code == .authFailed)
        #expect(hub.world.audit.events.last?.detail == "reason=no_baa")
        // Low and medium risk stay open to it, and the same scope is open to the integration with a BAA.
        let figures = try await token(hub, integration: "dashboard", scopes: [.orgRead, .conversationsRead])
        #expect(await refusal(hub.pipeline, request(hub, .api(.conversation(room)), secret: figures.secret)) == nil)
        let covered = try await token(hub, integration: "ehr", scopes: [.messagesRead])
        #expect(await refusal(hub.pipeline, request(hub, .api(.messages(room, after: 0, limit: 10)), secret: covered.secret)) == nil)
    }

    @Test func aCallOutsideTheTokensScopesIsForbiddenAndAudited() async throws {
        let hub = try harness()
        let room = try await room(hub)
        let made = try await token(hub, scopes: [.orgRead, .conversationsRead])
        let error = await refusal(hub.pipeline, request(hub, .api(.messages(room, after: 0, limit: 10)), secret: made.secret, endpoint: route))
        #expect(error?.code == .forbidden)
        let event = try #require(hub.world.audit.events.last)
        #expect(event.action == "api.refused")
        #expect(event.detail == "reason=scope scope=messages:read")
        #expect(event.actor == "integration:ehr")
        #expect(event.target == made.token.id.rawValue)
        // A frame no token may send is forbidden whatever the scopes.
        let everything = try await token(hub, scopes: APIScope.allCases)
        for frame in [ClientFrame.rooms(), .send(room: room, text: "hi"), .subscribe(room: room), .admin(.pipeline), .admin(.tokens)] {
            #expect(await refusal(hub.pipeline, request(hub, frame, secret: everything.secret))?.code == .forbidden, "\(frame)")
        }
    }

    @Test func aRoomOfAnotherOrganisationIsNotFound() async throws {
        let hub = try harness()
        let theirs = try await room(hub, org: OrgID("elsewhere"))
        let made = try await token(hub, scopes: [.conversationsRead, .messagesRead, .conversationsWrite])
        for frame in [ClientFrame.api(.conversation(theirs)), .api(.messages(theirs, after: 0, limit: 10)), .end(room: theirs)] {
            #expect(await refusal(hub.pipeline, request(hub, frame, secret: made.secret))?.code == .notFound, "\(frame)")
        }
        #expect(await refusal(hub.pipeline, request(hub, .api(.conversation(ConversationID("c_missing"))), secret: made.secret))?.code == .notFound)
        #expect(!hub.world.audit.actions.contains("api.phi"), "nothing was read")
    }

    @Test func aPHICallIsAuditedWithTheIntegrationAndTheRouteAndNoText() async throws {
        let hub = try harness()
        let room = try await room(hub)
        try await hub.world.messages.append(StoredMessage(conversation: room, seq: 1, sender: "visitor", at: hub.world.clock.now, body: .plain("my rash is worse")))
        let made = try await token(hub, scopes: [.messagesRead, .conversationsRead, .orgRead])
        let outcome = try await hub.pipeline.run(request(hub, .api(.messages(room, after: 0, limit: 10)), secret: made.secret, endpoint: route))
        #expect(outcome.history.map(\.seq) == [1])
        #expect(outcome.caller?.principal == .integration(name: "ehr", token: made.token.id, scopes: made.token.scopes))
        let phi = hub.world.audit.events.filter { $0.action == "api.phi" }
        #expect(phi.count == 1)
        let event = try #require(phi.first)
        #expect(event.actor == "integration:ehr")
        #expect(event.target == room.rawValue)
        #expect(event.detail == "token=\(made.token.id) scope=messages:read method=GET route=/api/v1/orgs/{org}/conversations/{id}/messages")
        #expect(event.org == hub.org.id)

        // Medium and low risk reads are not PHI and leave no such record.
        _ = try await hub.pipeline.run(request(hub, .api(.conversation(room)), secret: made.secret, endpoint: "GET /api/v1/orgs/{org}/conversations/{id}"))
        _ = try await hub.pipeline.run(request(hub, .api(.organisation), secret: made.secret, endpoint: "GET /api/v1/orgs/{org}"))
        #expect(hub.world.audit.events.filter { $0.action == "api.phi" }.count == 1)

        // Opening a conversation carries the message through the stages: its text is on no record.
        let opener = try await token(hub, scopes: [.conversationsOpen])
        _ = try await hub.pipeline.run(request(hub, .api(.open(text: "your biopsy results")), secret: opener.secret, endpoint: "POST /api/v1/orgs/{org}/conversations"))
        #expect(hub.world.audit.events.filter { $0.action == "api.phi" }.count == 2)
        for event in hub.world.audit.events {
            for field in [event.detail, event.target, event.actor] {
                #expect(!field.contains("rash") && !field.contains("biopsy"), "\(event.action): \(field)")
            }
        }
    }

    @Test func eachTokenHasItsOwnRateLimit() async throws {
        let hub = try harness()
        let busy = try await token(hub, scopes: [.orgRead])
        let other = try await token(hub, scopes: [.orgRead])
        for call in 1...10 {
            #expect(await refusal(hub.pipeline, request(hub, .api(.organisation), secret: busy.secret)) == nil, "call \(call) of api_calls=10")
        }
        let error = try #require(await refusal(hub.pipeline, request(hub, .api(.organisation), secret: busy.secret)))
        #expect(error.code == .rateLimited)
        let wait = try #require(error.retryAfter)
        #expect(wait >= 1)
        // Another token of the same integration has its own allowance.
        #expect(await refusal(hub.pipeline, request(hub, .api(.organisation), secret: other.secret)) == nil)
        // Once the wait is over, the token works again.
        hub.world.clock.advance(by: TimeInterval(wait))
        #expect(await refusal(hub.pipeline, request(hub, .api(.organisation), secret: busy.secret)) == nil)
    }

    @Test func theIdleStageNeverExpiresAnIntegrationCall() async throws {
        let hub = try harness()
        let seen = Seen()
        let pipeline = hub.chain(["auth", "idle"], then: [RecordingStage(seen)])
        #expect(pipeline.stageNames == ["auth", "idle", "recording"])
        let made = try await token(hub, scopes: [.orgRead], life: 30 * 86_400)
        #expect(await refusal(pipeline, request(hub, .api(.organisation), secret: made.secret)) == nil)
        // Past the idle timeout and the session lifetime, with ticks in between.
        for _ in 0..<3 {
            hub.world.clock.advance(by: 2 * 3600)
            await pipeline.tick(at: hub.world.clock.now)
            #expect(await refusal(pipeline, request(hub, .api(.organisation), secret: made.secret)) == nil)
        }
        #expect(seen.all.count == 4)
        #expect(seen.all.allSatisfy { $0.session?.principal.integration == "ehr" })
        // The call's session is never stored, so there is nothing to expire.
        #expect(hub.world.sessions.sessions(of: hub.org.id).isEmpty)
        #expect(!hub.world.audit.actions.contains("session.expired"))
    }

    @Test func openingAConversationSendsItsFirstMessageDownTheChain() async throws {
        let hub = try harness()
        let seen = Seen()
        let pipeline = hub.chain(["auth", "idle"], then: [RecordingStage(seen)])
        let made = try await token(hub, scopes: [.conversationsOpen])
        let outcome = try await pipeline.run(request(hub, .api(.open(text: "Please call us about your appointment")), secret: made.secret))

        let conversation = try #require(outcome.conversation)
        #expect(conversation.org == hub.org.id)
        #expect(try await hub.world.conversations.conversation(conversation.id) == conversation, "the conversation is stored")
        let token = try #require(outcome.visitorToken)
        // Stored only as its digest, and the patient's widget resumes the conversation with it.
        #expect(try await hub.world.conversations.find(org: hub.org.id, tokenDigest: hub.world.credentials.digest(token))?.id == conversation.id)

        let forwarded = try #require(seen.all.first)
        #expect(seen.all.count == 1)
        #expect(forwarded.frame == .send(room: conversation.id, text: "Please call us about your appointment"))
        #expect(forwarded.startsConversation)
        #expect(forwarded.conversation?.id == conversation.id)
        #expect(forwarded.session?.principal.displayName == "integration:ehr")

        // Through the whole chain the patient resumes it from the widget and finds the message.
        let full = try await hub.pipeline.run(request(hub, .api(.open(text: "Your prescription is ready")), secret: made.secret))
        let room = try #require(full.conversation?.id)
        let resumed = try expectWelcome(await hub.run(.hello(org: hub.org.id, token: try #require(full.visitorToken)), from: 5))
        #expect(resumed.room == room)
        #expect(try await hub.world.messages.history(of: room, limit: 10).map(\.sender) == ["integration:ehr"])
    }
}
