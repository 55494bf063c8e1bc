import CareHubCore
import CareHubCrypto
import CareHubStages
import CareHubStorage
import CareHubTransport
import Foundation
import Logging
import Synchronization

/// The HTTP API for integrations, under `/api/v1/orgs/{org}/…`, described by `docs/openapi.yaml`
/// (served at `/api/v1/openapi.yaml`).
///
/// Every call is a request through the organisation's pipeline, as a frame would be: the call
/// becomes the frame that stands for it (`end`, `assign`, the admin API's user and audit
/// operations, `download`), or an ``APICall`` where none does, and carries the bearer token for
/// the auth stage to check with the scope ``APIScope/required(for:)`` names. The stages after it
/// seal, store, open and fan out what they would for a frame; operations the admin API carries
/// out are carried out by ``AdminService`` in the integration's name once the chain allowed them.
///
/// Answers are JSON (times in epoch milliseconds, as on the WebSocket); errors are RFC 9457
/// problem details carrying the wire's stable `code`. Lists page by cursor; the figures a
/// dashboard polls carry an `ETag`.
struct APIRoutes: Sendable {
    let configuration: HubConfiguration
    let admin: AdminService
    let audit: SQLiteAuditLog
    let metrics: HubMetrics
    let clock: any WallClock
    let trustedProxies: [CIDRBlock]
    let openAPI: [UInt8]
    let webhooks: WebhookSubscriptions
    let logger: Logger

    /// The route prefix.
    static let prefix = "/api/v1/orgs/:org"
    /// Page sizes: the default and the largest a client may ask for.
    static let defaultPage = 50
    static let largestPage = 200
    /// Audit events per export page.
    static let exportPage = 5_000

    /// Adds the routes.
    func add(to router: inout HTTPRouter) {
        // The transport's own refusals under /api/ are problem details too.
        router.refusals.append(("/api/", { status, message in Self.problem(status: status, message) }))
        router.get("/api/v1/openapi.yaml") { _ in
            HTTPResponse(status: 200, headers: ["Content-Type": "application/yaml", "Cache-Control": "no-cache"], body: .bytes(openAPI))
        }
        let p = Self.prefix
        route(&router, .get, p) { _ in .call(.api(.organisation)) } answer: { organisation($0) }
        route(&router, .get, "\(p)/queue", polled: true) { _ in .call(.api(.queue)) } answer: { queue($0) }
        route(&router, .get, "\(p)/users") { _ in .admin(.users) } answer: { $0.json }
        route(&router, .post, "\(p)/users", status: 201) { http in
            .admin(try Self.adminRequest("users.add", http, fields: ["user", "role", "password", "displayName"]))
        } answer: { try user($0.json, named: try Self.fields($0.http, allowed: ["user", "role", "password", "displayName"])["user"] as? String) }
        route(&router, .post, "\(p)/users/:user/disable") { http in
            .admin(try Self.adminRequest("users.disable", http, fields: [], adding: ["user": http.parameters["user"] ?? ""]))
        } answer: { try user($0.json, named: $0.http.parameters["user"]) }
        route(&router, .post, "\(p)/users/:user/enable") { http in
            .admin(try Self.adminRequest("users.enable", http, fields: [], adding: ["user": http.parameters["user"] ?? ""]))
        } answer: { try user($0.json, named: $0.http.parameters["user"]) }
        route(&router, .put, "\(p)/users/:user/role") { http in
            .admin(try Self.adminRequest("users.set_role", http, fields: ["role"], adding: ["user": http.parameters["user"] ?? ""]))
        } answer: { try user($0.json, named: $0.http.parameters["user"]) }
        route(&router, .get, "\(p)/conversations", polled: true) { http in
            .call(.api(.conversations(try Self.filter(http), limit: try Self.limit(http))))
        } answer: { conversations($0) }
        route(&router, .post, "\(p)/conversations", status: 201) { http in
            .call(.api(.open(text: try Self.text(http))))
        } answer: { opened($0) }
        route(&router, .get, "\(p)/conversations/:room", polled: true) { http in
            .call(.api(.conversation(try Self.room(http))))
        } answer: { conversation($0) }
        route(&router, .post, "\(p)/conversations/:room/end") { http in
            .call(.end(room: try Self.room(http)))
        } answer: { ended($0) }
        route(&router, .put, "\(p)/conversations/:room/assignee") { http in
            let fields = try Self.fields(http, allowed: ["user"])
            guard let user = fields["user"] as? String, StaffUser.isValidName(user) else {
                throw PipelineError(.invalidField, "field 'user' must be 1-64 letters, digits, '.', '_' or '-'")
            }
            return .call(.assign(room: try Self.room(http), user: user))
        } answer: { conversation($0) }
        route(&router, .get, "\(p)/conversations/:room/messages") { http in
            let after = try Self.integer(http, "after", in: 0...Int64.max, default: 0)
            return .call(.api(.messages(try Self.room(http), after: UInt64(after), limit: try Self.limit(http))))
        } answer: { messages($0, paged: true) }
        route(&router, .get, "\(p)/conversations/:room/transcript") { http in
            .call(.api(.transcript(try Self.room(http))))
        } answer: { messages($0, paged: false) }
        route(&router, .get, "\(p)/conversations/:room/form") { http in
            .call(.api(.form(try Self.room(http))))
        } answer: { form($0) }
        route(&router, .get, "\(p)/attachments/:attachment") { http in
            guard let id = http.parameters["attachment"].flatMap(AttachmentID.init(checking:)) else {
                throw PipelineError(.notFound, "no such attachment in this organisation (it may have been erased with its chat)")
            }
            return .call(.download(id))
        } answer: { _ in nil }
        route(&router, .get, "\(p)/audit") { http in
            let before = try Self.integer(http, "cursor", in: 1...Int64.max, default: Int64.max)
            return .admin(.audit(limit: Int(try Self.limit(http)), before: before == Int64.max ? nil : before))
        } answer: { try auditPage($0) }
        route(&router, .get, "\(p)/audit/export") { http in
            .call(.api(.auditExport(after: try Self.integer(http, "after", in: 0...Int64.max, default: 0))))
        } answer: { _ in nil }
        route(&router, .get, "\(p)/audit/verify") { _ in .admin(.verifyAudit) } answer: { $0.json }
        route(&router, .get, "\(p)/webhooks") { _ in .call(.api(.webhooks)) } answer: { _ in nil }
        route(&router, .post, "\(p)/webhooks", status: 201) { http in
            .call(.api(try WebhookSubscriptions.creation(try Self.fields(http, allowed: ["url", "events"]))))
        } answer: { _ in nil }
        route(&router, .delete, "\(p)/webhooks/:webhook") { http in
            guard let id = http.parameters["webhook"], Webhook.isValidID(id) else {
                throw PipelineError(.notFound, "no such webhook subscription of this integration")
            }
            return .call(.api(.deleteWebhook(id: id)))
        } answer: { _ in nil }
    }

    /// `docs/openapi.yaml`, built into the hub.
    static func description() -> [UInt8] { PackageResources.openapi_yaml }

    // MARK: Running a call

    /// What an endpoint asks the pipeline for.
    enum Action {
        /// A request the chain carries out and the outcome answers.
        case call(ClientFrame)
        /// An admin API operation: the chain authorises it, ``AdminService`` carries it out.
        case admin(AdminRequest)
    }

    /// What an endpoint's answer is made from.
    struct Answered {
        let http: HTTPRequest
        let org: OrgID
        let outcome: Outcome
        /// The admin API's JSON result, for ``Action/admin(_:)``.
        let json: String
    }

    private func route(
        _ router: inout HTTPRouter, _ method: HTTPMethod, _ pattern: String, status: Int = 200, polled: Bool = false,
        _ action: @escaping @Sendable (HTTPRequest) throws -> Action, answer: @escaping @Sendable (Answered) throws -> String?
    ) {
        let endpoint = "\(method.rawValue) \(pattern.replacingOccurrences(of: ":org", with: "{org}").replacingOccurrences(of: ":room", with: "{room}").replacingOccurrences(of: ":user", with: "{user}").replacingOccurrences(of: ":webhook", with: "{webhook}"))"
        router.add(method, pattern, maxBodyBytes: 32 * 1024) { http in
            await respond(http, endpoint: endpoint) { org in
                let done = try await run(try action(http), org: org, http: http, endpoint: endpoint)
                switch done.frame {
                case .api(.auditExport(let after)): return try await export(org, after: after, http: http)
                case .api(let call) where call.isWebhookCall:
                    guard let caller = done.answered.outcome.caller else { throw PipelineError.internal }
                    let address = PipelineHTTP.request(done.frame, from: http, at: clock.now, trustedProxies: trustedProxies).peer
                    guard let json = try await webhooks.answer(call, org: org, caller: caller.principal, address: address, at: clock.now) else {
                        return HTTPResponse(status: 204)
                    }
                    return Self.json(json, status: status)
                case .download:
                    guard let download = done.answered.outcome.download else { throw PipelineError.internal }
                    return AttachmentRoutes.file(download)
                default: break
                }
                guard let json = try answer(done.answered) else { throw PipelineError.internal }
                var response = Self.json(json, status: status)
                if polled { response = Self.tagged(response, json: json, http: http) }
                return response
            }
        }
    }

    private struct Done {
        let frame: ClientFrame
        let answered: Answered
    }

    private func run(_ action: Action, org: OrgID, http: HTTPRequest, endpoint: String) async throws -> Done {
        let frame: ClientFrame
        switch action {
        case .call(let call): frame = call
        case .admin(let request): frame = .admin(request)
        }
        let (pipeline, draining) = configuration.pipeline(for: org)
        guard !draining else { throw PipelineError(.unavailable, "the hub is shutting down; try again shortly") }
        guard let pipeline else { throw PipelineError(.unknownOrg, "no organisation '\(org)' on this hub") }
        var request = PipelineHTTP.request(frame, from: http, at: clock.now, trustedProxies: trustedProxies)
        guard let credential = request.credential, APIToken.id(ofSecret: credential) != nil else {
            throw PipelineError(.unauthenticated, "send an integration token as Authorization: Bearer chk_…")
        }
        request.endpoint = endpoint
        let outcome = try await pipeline.run(request)
        var json = ""
        if case .admin(let operation) = action {
            guard let caller = outcome.caller else { throw PipelineError.internal }
            switch await admin.administer(operation, session: caller, address: request.peer, id: nil) {
            case .admin(_, _, let result): json = result
            case .error(_, let error): throw error
            case .configRefused(_, let message, _): throw PipelineError(.configRefused, message)
            default: throw PipelineError.internal
            }
        }
        return Done(frame: frame, answered: Answered(http: http, org: org, outcome: outcome, json: json))
    }

    /// Runs `body` for the organisation the path names, turning a refusal into its problem
    /// details and recording the call's metrics (by route, never by value).
    private func respond(_ http: HTTPRequest, endpoint: String, _ body: (OrgID) async throws -> HTTPResponse) async -> HTTPResponse {
        let org = http.parameters["org"].flatMap { OrgID.isValid($0) ? OrgID($0) : nil }
        var response = await PipelineHTTP.answer(org: org, type: "api", metrics: metrics, logger: logger, problem: { Self.problem($0) }) {
            guard let org else { throw PipelineError(.unknownOrg, "no such organisation on this hub") }
            return try await body(org)
        }
        if !response.headers.contains("Cache-Control") { response.headers.add("Cache-Control", "no-store") }
        return response
    }

    // MARK: Answers

    private func organisation(_ done: Answered) -> String? {
        guard let settings = configuration.config.org(done.org)?.settings else { return nil }
        let now = clock.now
        var w = JSONWriter()
        w.field("id", settings.id.rawValue)
        w.field("name", settings.displayName)
        w.field("hipaa", settings.hipaa)
        w.field("staffAccess", settings.staffAccess.rawValue)
        let open = settings.hours?.isOpen(at: now) ?? true
        w.field("open", open)
        if let hours = settings.hours {
            w.field("hours", hours.description)
            w.field("timeZone", hours.timeZoneIdentifier)
            if !open, let next = hours.nextOpening(after: now) { w.field("opensAt", next.epochMilliseconds) } else { w.null("opensAt") }
        } else {
            w.null("hours")
            w.null("timeZone")
            w.null("opensAt")
        }
        return w.finish()
    }

    private func queue(_ done: Answered) -> String? {
        guard let figures = done.outcome.queue else { return nil }
        var w = JSONWriter()
        w.field("waiting", Int64(figures.waiting))
        if let since = figures.oldestWaitingSince { w.field("oldestWaitingSince", since.epochMilliseconds) } else { w.null("oldestWaitingSince") }
        w.field("staffOnline", Int64(figures.staffOnline))
        w.field("staffAvailable", Int64(figures.staffAvailable))
        return w.finish()
    }

    /// The admin API's account list narrowed to one account.
    private func user(_ json: String, named wanted: String?) throws -> String? {
        guard let wanted, let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let users = object["users"] as? [[String: Any]], let account = users.first(where: { $0["user"] as? String == wanted })
        else { return nil }
        let data = try JSONSerialization.data(withJSONObject: account, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    private func conversations(_ done: Answered) -> String? {
        let outcome = done.outcome
        var w = JSONWriter()
        w.array("conversations", Array(zip(outcome.conversations, outcome.rooms))) { element, pair in
            Self.write(pair.0, pair.1, to: &element)
        }
        let limit = (try? Self.limit(done.http)) ?? Self.defaultPage
        // A full page may have more after it; the cursor names its last conversation.
        if outcome.conversations.count == limit, let last = outcome.conversations.last {
            w.field("nextCursor", ConversationCursor(startedAt: last.startedAt, id: last.id).text)
        } else {
            w.null("nextCursor")
        }
        return w.finish()
    }

    private func conversation(_ done: Answered) -> String? {
        let outcome = done.outcome
        guard let conversation = outcome.conversations.first ?? outcome.conversation else { return nil }
        var w = JSONWriter()
        Self.write(conversation, outcome.rooms.first, to: &w)
        return w.finish()
    }

    private func ended(_ done: Answered) -> String? {
        guard let conversation = done.outcome.conversation else { return nil }
        var w = JSONWriter()
        Self.write(conversation, nil, to: &w)
        return w.finish()
    }

    private func opened(_ done: Answered) -> String? {
        guard let conversation = done.outcome.conversation, let token = done.outcome.visitorToken, let seq = done.outcome.seq else { return nil }
        var w = JSONWriter()
        w.field("id", conversation.id.rawValue)
        w.field("seq", seq)
        w.field("visitorToken", token)
        return w.finish()
    }

    private func messages(_ done: Answered, paged: Bool) -> String? {
        let outcome = done.outcome
        var w = JSONWriter()
        if let room = done.outcome.conversation?.id ?? done.http.parameters["room"].map(ConversationID.init) { w.field("conversation", room.rawValue) }
        w.array("messages", outcome.history) { element, message in
            element.write(HistoryEntry(message, names: outcome.senderNames, attachments: outcome.historyAttachments))
        }
        if paged {
            let limit = (try? Self.limit(done.http)) ?? Self.defaultPage
            if outcome.history.count == limit, let last = outcome.history.last { w.field("nextAfter", last.seq) } else { w.null("nextAfter") }
        } else {
            w.field("complete", outcome.history.count < StoreStage.transcriptLimit)
        }
        return w.finish()
    }

    private func form(_ done: Answered) -> String? {
        var w = JSONWriter()
        // None, or one sealed under a key that could not be opened: no text shows.
        if case .plain(let json)? = done.outcome.profile, let form = VisitorProfile(json: Array(json.utf8)) {
            w.raw("form", String(decoding: form.json, as: UTF8.self))
        } else {
            w.null("form")
        }
        return w.finish()
    }

    private func auditPage(_ done: Answered) throws -> String? {
        guard let object = try JSONSerialization.jsonObject(with: Data(done.json.utf8)) as? [String: Any],
              let events = object["events"] as? [[String: Any]] else { return nil }
        let more = object["more"] as? Bool ?? false
        var json = String(done.json.dropLast())
        if more, let last = events.last?["id"] as? Int64 ?? (events.last?["id"] as? Int).map(Int64.init) {
            json += ",\"nextCursor\":\(last)}"
        } else {
            json += ",\"nextCursor\":null}"
        }
        return json
    }

    /// One page of the organisation's audit events as JSON Lines, oldest first; `Link: rel=next`
    /// names the next page while there is one.
    private func export(_ org: OrgID, after: Int64, http: HTTPRequest) async throws -> HTTPResponse {
        let entries = try await audit.page(org: org, after: after, limit: Self.exportPage)
        var body = ""
        for entry in entries {
            var w = JSONWriter()
            entry.write(to: &w)
            body += w.finish()
            body += "\n"
        }
        var response = HTTPResponse(status: 200, headers: ["Content-Type": "application/jsonl"], body: .bytes(Array(body.utf8)))
        if entries.count == Self.exportPage, let last = entries.last {
            response.headers.add("Link", "</api/v1/orgs/\(org.rawValue)/audit/export?after=\(last.id)>; rel=\"next\"")
        }
        return response
    }

    /// A conversation's state: `id`, `startedAt`, `endedAt`, `assignedTo`, `offline`, `readSeq`,
    /// and where known its progress (`lastAt`, `lastFrom`, `waitingSince`, `unanswered`).
    static func write(_ conversation: Conversation, _ summary: RoomSummary?, to w: inout JSONWriter) {
        w.field("id", conversation.id.rawValue)
        w.field("startedAt", conversation.startedAt.epochMilliseconds)
        if let endedAt = conversation.endedAt { w.field("endedAt", endedAt.epochMilliseconds) } else { w.null("endedAt") }
        if let user = conversation.assignedTo { w.field("assignedTo", user) } else { w.null("assignedTo") }
        w.field("offline", conversation.offline)
        w.field("readSeq", conversation.readSeq)
        if let activity = summary?.activity { w.writeProgress(activity) }
    }

    // MARK: Reading the request

    /// The request's JSON object, with only the `allowed` fields.
    static func fields(_ http: HTTPRequest, allowed: Set<String>) throws -> [String: Any] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(http.body.isEmpty ? Array("{}".utf8) : http.body))
        } catch {
            throw PipelineError(.badJSON, "the body is not valid JSON")
        }
        guard let fields = object as? [String: Any] else { throw PipelineError(.badJSON, "the body must be a JSON object") }
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw PipelineError(.invalidField, "unknown field '\(TypedText.clean(String(unknown.prefix(40)), as: .singleLine))'")
        }
        return fields
    }

    /// An admin API operation from the body's fields (and the path's), decoded by the same
    /// rules as the WebSocket's `admin` frame.
    static func adminRequest(_ op: String, _ http: HTTPRequest, fields allowed: Set<String>, adding extra: [String: String] = [:]) throws -> AdminRequest {
        var fields = try fields(http, allowed: allowed)
        for (name, value) in extra { fields[name] = value }
        fields["type"] = "admin"
        fields["op"] = op
        guard case .admin(let request) = try decode(fields) else { throw PipelineError.internal }
        return request
    }

    /// A message's text, by the same rules as the `send` frame's.
    static func text(_ http: HTTPRequest) throws -> String {
        var fields = try fields(http, allowed: ["text"])
        fields["type"] = "send"
        fields["room"] = "new"
        guard case .send(_, let text) = try decode(fields) else { throw PipelineError.internal }
        return text
    }

    private static func decode(_ fields: [String: Any]) throws -> ClientFrame {
        let data = try JSONSerialization.data(withJSONObject: fields)
        switch Envelope.decode(Array(data)) {
        case .success(let envelope): return envelope.frame
        case .failure(let failure): throw failure.error
        }
    }

    static func room(_ http: HTTPRequest) throws -> ConversationID {
        guard let room = http.parameters["room"], !room.isEmpty, room.utf8.count <= 64, !TypedText.hasControlCharacters(room) else {
            throw PipelineError(.notFound, "no such conversation in this organisation")
        }
        return ConversationID(room)
    }

    static func limit(_ http: HTTPRequest) throws -> Int {
        Int(try integer(http, "limit", in: 1...Int64(largestPage), default: Int64(defaultPage)))
    }

    static func integer(_ http: HTTPRequest, _ name: String, in range: ClosedRange<Int64>, default value: Int64) throws -> Int64 {
        guard let text = http.queryValue(name) else { return value }
        guard let number = Int64(text), range.contains(number) else {
            throw PipelineError(.invalidField, "query parameter '\(name)' must be a whole number from \(range.lowerBound)\(range.upperBound == .max ? " up" : " to \(range.upperBound)")")
        }
        return number
    }

    static func filter(_ http: HTTPRequest) throws -> ConversationFilter {
        var filter = ConversationFilter()
        switch http.queryValue("state") {
        case nil, "all": break
        case "open": filter.ended = false
        case "ended": filter.ended = true
        default: throw PipelineError(.invalidField, "query parameter 'state' must be open, ended or all")
        }
        if let user = http.queryValue("assignedTo") {
            guard StaffUser.isValidName(user) else {
                throw PipelineError(.invalidField, "query parameter 'assignedTo' must be 1-64 letters, digits, '.', '_' or '-'")
            }
            filter.assignedTo = user
        }
        if let cursor = http.queryValue("cursor") {
            guard let parsed = ConversationCursor(text: cursor) else {
                throw PipelineError(.invalidField, "query parameter 'cursor' is not a cursor this API gave")
            }
            filter.before = parsed
        }
        return filter
    }

    // MARK: Wire details

    static func json(_ json: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: .bytes(Array(json.utf8)))
    }

    /// A polled answer with its `ETag` (the SHA-256 of the body); `304 Not Modified` when the
    /// client already holds it.
    static func tagged(_ response: HTTPResponse, json: String, http: HTTPRequest) -> HTTPResponse {
        let tag = "\"" + Hex.encode(Array(SHA256.hash(Array(json.utf8)).prefix(16))) + "\""
        let sent = http.headers["if-none-match"]?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
        if sent.contains(tag) || sent.contains("*") {
            return HTTPResponse(status: 304, headers: ["ETag": tag])
        }
        var tagged = response
        tagged.headers.add("ETag", tag)
        return tagged
    }

    /// The transport's refusal (404, 405, 411, 413) as problem details.
    static func problem(status: Int, _ message: String) -> HTTPResponse {
        let code: ErrorCode = switch status {
        case 404: .notFound
        case 413: .tooLarge
        default: .invalidField
        }
        return problem(PipelineError(code, message), status: status)
    }

    /// RFC 9457 problem details with the wire's stable code, and the code's status unless given.
    static func problem(_ error: PipelineError, status given: Int? = nil) -> HTTPResponse {
        let status = given ?? AttachmentRoutes.status(of: error.code)
        var w = JSONWriter()
        w.field("type", "urn:carehub:problem:\(error.code.rawValue)")
        w.field("title", error.code.rawValue.replacingOccurrences(of: "_", with: " "))
        w.field("status", Int64(status))
        w.field("detail", error.message)
        w.field("code", error.code.rawValue)
        var response = HTTPResponse(status: status, headers: ["Content-Type": "application/problem+json"], body: .bytes(Array(w.finish().utf8)))
        if let wait = error.retryAfter { response.headers.add("Retry-After", "\(wait)") }
        if status == 401 { response.headers.add("WWW-Authenticate", "Bearer realm=\"carehub\"") }
        return response
    }
}
