import CareHubCore
import Foundation
import Testing

/// The one table of which scope an integration token needs for each frame, held to the risk
/// levels APIToken.swift documents, and the listing cursor a client hands back.
@Suite("HTTP API calls: scopes and cursors")
struct APICallTests {
    let room = ConversationID("c_1")

    /// Every API call, with the scope it needs and that scope's documented risk: organisation
    /// information and queue figures are low, the conversation list and state and the audit log
    /// medium, messages, transcripts, pre-chat forms and opening a conversation to a patient high.
    var calls: [(APICall, APIScope, APIRisk)] {
        [
            (.organisation, .orgRead, .low),
            (.queue, .queueRead, .low),
            (.conversations(ConversationFilter(), limit: 50), .conversationsRead, .medium),
            (.conversations(ConversationFilter(ended: true, assignedTo: "joy", before: ConversationCursor(startedAt: Date(), id: room)), limit: 1),
             .conversationsRead, .medium),
            (.conversation(room), .conversationsRead, .medium),
            (.messages(room, after: 0, limit: 100), .messagesRead, .high),
            (.transcript(room), .transcriptsRead, .high),
            (.form(room), .formsRead, .high),
            (.open(text: "Your results are ready"), .conversationsOpen, .high),
            (.auditExport(after: 0), .auditRead, .medium),
        ]
    }

    /// One or more frames of each kind; the switch makes a new kind a compile error here.
    func frames(of kind: ClientFrame.Kind) -> [ClientFrame] {
        let org = OrgID("clinic")
        switch kind {
        case .hello: return [.hello(org: org, token: nil), .hello(org: org, token: "t", offline: true)]
        case .login: return [.login(org: org, user: "joy", password: Password("pw"), totp: "123456")]
        case .sso: return [.sso(org: org, ticket: "t", totp: nil), .sso(org: org, ticket: "t", totp: "123456")]
        case .ssoDevice: return [.ssoDevice(org: org)]
        case .rooms: return [.rooms(), .rooms(visitors: true)]
        case .subscribe: return [.subscribe(room: room)]
        case .unsubscribe: return [.unsubscribe(room: room)]
        case .send: return [.send(room: room, text: "hello")]
        case .end: return [.end(room: room)]
        case .typing: return [.typing(room: room)]
        case .activity: return [.activity]
        case .logout: return [.logout]
        case .transcript: return [.transcript(room: room, to: "patient@example.org")]
        case .assign: return [.assign(room: room, user: "joy")]
        case .admin: return AdminRequest.Op.allCases.map { .admin(request(of: $0)) }
        case .availability: return [.availability(org: org)]
        case .presence: return Presence.allCases.map { .presence($0) }
        case .team: return [.team]
        case .claim: return [.claim(room: room)]
        case .transfer: return [.transfer(room: room, to: "kim", note: "n"), .transfer(room: room, to: nil, note: nil)]
        case .read: return [.read(room: room, seq: 3)]
        case .replies: return [.replies]
        case .attach:
            return [.attach(room: room, upload: AttachmentUpload(id: AttachmentID("a_1"), name: "x.pdf", declaredSize: 1, bytes: AttachmentBytes { nil }))]
        case .download: return [.download(AttachmentID("a_1"))]
        case .api: return calls.map { .api($0.0) }
        }
    }

    /// An admin request of each operation; the switch makes a new operation a compile error here.
    func request(of op: AdminRequest.Op) -> AdminRequest {
        switch op {
        case .pipelineGet: return .pipeline
        case .pipelineCheck: return .replacePipeline(text: "stage auth", base: nil, apply: false)
        case .pipelineReplace: return .replacePipeline(text: "stage auth", base: "v1", apply: true)
        case .hipaaEnable: return .enableHIPAA(BAAAttestation(signedOn: "2026-01-02", officerName: "Ann", officerEmail: "ann@example.org"))
        case .hipaaDisable: return .disableHIPAA(purge: true)
        case .usersList: return .users
        case .usersAdd: return .addUser(name: "kim", role: .staff, password: Password("pw"))
        case .usersDisable: return .setDisabled(user: "kim", disabled: true)
        case .usersEnable: return .setDisabled(user: "kim", disabled: false)
        case .usersSetRole: return .setRole(user: "kim", role: .admin)
        case .usersReset2FA: return .resetSecondFactor(user: "kim")
        case .usersUnlock: return .unlock(user: "kim")
        case .usersSetDisplayName: return .setDisplayName(user: "kim", displayName: "Dr Kim")
        case .auditList: return .audit(limit: 10, before: nil)
        case .auditVerify: return .verifyAudit
        case .repliesList: return .replies
        case .repliesSet: return .saveReply(CannedReply(name: "hi", text: "Hello"))
        case .repliesDelete: return .deleteReply(name: "hi")
        case .tokensList: return .tokens
        case .tokensCreate: return .createToken(integration: "ehr", scopes: [.orgRead], expiresDays: 1, allowFrom: [])
        case .tokensApprove: return .approveToken(id: APITokenID("tok_0123456789abcdef"), totp: "123456")
        case .tokensRevoke: return .revokeToken(id: APITokenID("tok_0123456789abcdef"))
        }
    }

    @Test func everyAPICallNeedsTheScopeOfItsDocumentedRisk() {
        for (call, scope, risk) in calls {
            #expect(APIScope.required(for: .api(call)) == scope, "\(call)")
            #expect(APIScope.required(for: .api(call))?.risk == risk, "\(call)")
        }
    }

    @Test func framesThatStandForAnAPICallNeedTheScopeOfTheirData() {
        // Ending and assigning change a conversation's state: medium. An attachment is PHI: high.
        #expect(APIScope.required(for: .end(room: room)) == .conversationsWrite)
        #expect(APIScope.required(for: .assign(room: room, user: "joy")) == .conversationsWrite)
        #expect(APIScope.conversationsWrite.risk == .medium)
        #expect(APIScope.required(for: .download(AttachmentID("a_1"))) == .attachmentsRead)
        #expect(APIScope.attachmentsRead.risk == .high)
        // Staff names are low; changes to accounts and the audit log medium.
        #expect(APIScope.required(for: .admin(.users)) == .usersRead)
        #expect(APIScope.usersRead.risk == .low)
        for op in [AdminRequest.Op.usersAdd, .usersDisable, .usersEnable, .usersSetRole] {
            #expect(APIScope.required(for: .admin(request(of: op))) == .usersWrite, "\(op)")
        }
        #expect(APIScope.usersWrite.risk == .high)
        #expect(APIScope.required(for: .admin(.audit(limit: 10, before: 7))) == .auditRead)
        #expect(APIScope.required(for: .admin(.verifyAudit)) == .auditRead)
        #expect(APIScope.auditRead.risk == .medium)
    }

    @Test func everyOtherFrameIsOneATokenMayNeverSend() {
        let mapped: Set<ClientFrame.Kind> = [.end, .assign, .download, .api]
        let mappedOps: Set<AdminRequest.Op> = [.usersList, .usersAdd, .usersDisable, .usersEnable, .usersSetRole, .auditList, .auditVerify]
        for kind in ClientFrame.Kind.allCases where !mapped.contains(kind) {
            for frame in frames(of: kind) where kind != .admin {
                #expect(APIScope.required(for: frame) == nil, "\(frame)")
            }
        }
        // The pipeline, HIPAA switch, second factors, lock-outs, display names, canned replies
        // and tokens themselves are an admin's at a console, never an integration's.
        for op in AdminRequest.Op.allCases where !mappedOps.contains(op) {
            #expect(APIScope.required(for: .admin(request(of: op))) == nil, "\(op)")
        }
        for kind in mapped {
            for frame in frames(of: kind) { #expect(APIScope.required(for: frame) != nil, "\(frame)") }
        }
    }

    @Test func aCursorsTextGivesBackTheSameCursor() throws {
        for seconds in [1_800_000_000, 1_800_000_000.5, 1_800_000_000.123_456, 1_800_000_000.000_001, 1_799_999_999.999_999_8, 0, 1e-5, 1e12] {
            let cursor = ConversationCursor(startedAt: Date(timeIntervalSince1970: seconds), id: ConversationID("c_\(seconds)"))
            let parsed = try #require(ConversationCursor(text: cursor.text), "\(cursor.text)")
            #expect(parsed == cursor, "\(cursor.text)")
            #expect(parsed.startedAt.timeIntervalSince1970 == cursor.startedAt.timeIntervalSince1970, "\(cursor.text): the start time exactly as stored")
            #expect(parsed.text == cursor.text)
        }
        // An id may hold any printable character, `~` included: only the first one separates.
        let odd = try #require(ConversationCursor(text: "1800000000.25~c_a~b!{}"))
        #expect(odd.id == ConversationID("c_a~b!{}"))
        #expect(odd.startedAt == Date(timeIntervalSince1970: 1_800_000_000.25))
        #expect(odd.text == "1800000000.25~c_a~b!{}")
    }

    @Test func malformedCursorTextIsRefused() {
        let id = String(repeating: "c", count: 64)
        #expect(ConversationCursor(text: "1800000000.5~\(id)") != nil, "the longest id accepted")
        for text in [
            "", "~", "1800000000", "c_1", "1800000000~", "~c_1", "1800000000.5 c_1",
            "-1~c_1", "-0.5~c_1", "nan~c_1", "inf~c_1", "-inf~c_1", "infinity~c_1", "1e999~c_1",
            "abc~c_1", " 1800000000~c_1", "1800000000 ~c_1",
            String(repeating: "1", count: 33) + "~c_1", "1800000000~" + id + "c",
            "1800000000~c 1", "1800000000~c_1\n", "1800000000~c\u{0}1", "1800000000~c\u{7f}", "1800000000~c_\u{1b}[0m", "1800000000~c_é",
        ] {
            #expect(ConversationCursor(text: text) == nil, "\(text.debugDescription)")
        }
    }
}
