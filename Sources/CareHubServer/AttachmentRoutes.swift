import CareHubCore
import CareHubTransport
import Foundation
import Logging
import Synchronization

/// The HTTP side of attachments: `POST /attachments` (an upload, which is a message in its room)
/// and `GET /attachments/:id` (a download), each run through its organisation's pipeline as an
/// `attach` or `download` request, so the same stages authorise, seal, store, scan and fan out
/// what a frame would. Errors are JSON (`{"code":…,"message":…}`) with the wire's stable codes.
///
/// The widget runs on clinics' own pages, so both answer CORS for the organisation's
/// `widget_origins` (and preflight `OPTIONS`); the credential is a bearer token, never a cookie.
struct AttachmentRoutes: Sendable {
    let configuration: HubConfiguration
    let metrics: HubMetrics
    let clock: any WallClock
    let trustedProxies: [CIDRBlock]
    let logger: Logger

    /// The longest file name kept, in bytes of UTF-8.
    static let maxNameBytes = 255
    /// Request headers the handlers read beyond those libwebsockets knows by name.
    static let keepHeaders: Set<String> = ["x-filename", "x-forwarded-proto"]

    /// Adds the routes.
    func add(to router: inout HTTPRouter) {
        router.keepHeaders.formUnion(Self.keepHeaders)
        router.add(HTTPRoute(.post, "/attachments", maxBodyBytes: OrgAttachments.largestMaxBytes, streamsBody: true) { request in
            await upload(request)
        })
        router.get("/attachments/:id") { request in await download(request) }
        router.add(.options, "/attachments") { request in preflight(request) }
        router.add(.options, "/attachments/:id") { request in preflight(request) }
    }

    // MARK: Handlers

    func upload(_ http: HTTPRequest) async -> HTTPResponse {
        await answer(http, type: "attach") { org in
            guard let room = http.queryValue("room").map(ConversationID.init), !room.rawValue.isEmpty else {
                throw PipelineError(.invalidField, "give the room as ?room=…")
            }
            let name = try Self.fileName(http.headers["x-filename"])
            guard let declared = http.headers["content-length"].flatMap(Int.init), declared >= 0 else {
                throw PipelineError(.invalidField, "send the file's length as Content-Length")
            }
            if let accepted = configuration.config.org(org)?.settings.attachments, declared > accepted.maxBytes {
                throw PipelineError(.tooLarge, "the file is larger than this organisation accepts (\(ByteCountText.describe(accepted.maxBytes)))")
            }
            let upload = AttachmentUpload(name: name, declaredSize: declared, bytes: Self.bytes(of: http))
            let outcome = try await run(.attach(room: room, upload: upload), org: org, http: http)
            guard let attachment = outcome.attachment, let seq = outcome.seq else { throw PipelineError.internal }
            var writer = JSONWriter()
            writer.object("attachment") { $0.write(AttachmentView(attachment)) }
            writer.field("room", room.rawValue)
            writer.field("seq", seq)
            return HTTPResponse(status: 201, headers: ["Content-Type": "application/json"], body: .bytes(Array(writer.finish().utf8)))
        }
    }

    func download(_ http: HTTPRequest) async -> HTTPResponse {
        await answer(http, type: "download") { org in
            guard let id = http.parameters["id"].flatMap(AttachmentID.init(checking:)) else {
                throw PipelineError(.notFound, "no such attachment in this organisation (it may have been erased with its chat)")
            }
            let outcome = try await run(.download(id), org: org, http: http)
            guard let download = outcome.download else { throw PipelineError.internal }
            return Self.file(download)
        }
    }

    /// A download's answer: its type, its name as opened, and its bytes as the client takes them.
    static func file(_ download: AttachmentDownload) -> HTTPResponse {
        var name = "attachment"
        if case .plain(let opened) = download.attachment.name { name = opened }
        return HTTPResponse(status: 200, headers: [
            "Content-Type": download.attachment.contentType,
            "Content-Disposition": disposition(name),
            "Cache-Control": "no-store",
        ], body: .stream(chunks(of: download)))
    }

    /// A browser asks before a cross-origin upload or download with a bearer token.
    func preflight(_ http: HTTPRequest) -> HTTPResponse {
        var response = HTTPResponse(status: 204)
        guard let org = http.queryValue("org").map(OrgID.init), let allowed = allowedOrigin(http, org: org) else { return response }
        response.headers.add("Access-Control-Allow-Origin", allowed)
        response.headers.add("Vary", "Origin")
        response.headers.add("Access-Control-Allow-Methods", "GET, POST")
        response.headers.add("Access-Control-Allow-Headers", "Authorization, X-Filename, Content-Type")
        response.headers.add("Access-Control-Max-Age", "600")
        return response
    }

    // MARK: Running a request

    /// Runs `body` for the organisation the query names, turning a refusal into its JSON answer,
    /// recording the request's metrics, and adding CORS headers for the widget's sites.
    private func answer(_ http: HTTPRequest, type: String, _ body: (OrgID) async throws -> HTTPResponse) async -> HTTPResponse {
        let org = http.queryValue("org").map(OrgID.init)
        var response = await PipelineHTTP.answer(org: org, type: type, metrics: metrics, logger: logger, problem: Self.problem) {
            guard let org, !org.rawValue.isEmpty else { throw PipelineError(.invalidField, "give the organisation as ?org=…") }
            return try await body(org)
        }
        if let org, let allowed = allowedOrigin(http, org: org) {
            response.headers.add("Access-Control-Allow-Origin", allowed)
            response.headers.add("Vary", "Origin")
            response.headers.add("Access-Control-Expose-Headers", "Content-Disposition")
        }
        return response
    }

    private func run(_ frame: ClientFrame, org: OrgID, http: HTTPRequest) async throws -> Outcome {
        let (pipeline, draining) = configuration.pipeline(for: org)
        guard !draining else { throw PipelineError(.unavailable, "the hub is shutting down; try again shortly") }
        guard let pipeline else { throw PipelineError(.unknownOrg, "no organisation '\(org)' on this hub") }
        let request = PipelineHTTP.request(frame, from: http, at: clock.now, trustedProxies: trustedProxies)
        return try await pipeline.run(request)
    }

    /// The page's origin if the organisation lets its widget run there (CORS); nil for the hub's
    /// own pages, which need no CORS, and for every other site.
    private func allowedOrigin(_ http: HTTPRequest, org: OrgID) -> String? {
        guard let sent = http.headers["origin"], let origin = ConfigValue.origin(sent),
              configuration.config.org(org)?.settings.widgetOrigins.contains(origin) == true else { return nil }
        return origin
    }

    // MARK: Bodies

    /// The upload's bytes as they arrive, for the pipeline's one reader (the store stage); a body
    /// cut off or over the hub's limit ends it with the matching refusal.
    static func bytes(of http: HTTPRequest) -> AttachmentBytes {
        guard let stream = http.bodyStream else { return .bytes(http.body) }
        let reader = BodyReader(stream.makeAsyncIterator())
        return AttachmentBytes {
            do {
                return try await reader.next()
            } catch {
                guard error as? HTTPBodyError == .tooLarge else { throw PipelineError(.invalidField, "the upload ended before the file did") }
                throw PipelineError(.tooLarge, "the file is larger than this hub accepts (\(ByteCountText.describe(OrgAttachments.largestMaxBytes)))")
            }
        }
    }

    /// The download's chunks, opened, one at a time as the client takes them.
    static func chunks(of download: AttachmentDownload) -> HTTPStreamBody {
        let index = Mutex(0)
        return HTTPStreamBody(length: download.attachment.size) {
            let next = index.withLock { index in
                defer { index += 1 }
                return index
            }
            guard next < download.chunkCount else { return nil }
            guard case .plain(let bytes) = try await download.chunk(next) else { throw PipelineError.internal }
            return bytes
        }
    }

    // MARK: Wire details

    /// The file name of `X-Filename` (percent-encoded UTF-8): one line of typed text, path
    /// separators replaced, 1–255 bytes.
    static func fileName(_ header: String?) throws -> String {
        guard let header, let decoded = header.removingPercentEncoding else {
            throw PipelineError(.invalidField, "send the file's name, percent-encoded, as X-Filename")
        }
        let cleaned = TypedText.clean(decoded, as: .singleLine)
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "\\", with: "_")
            .trimmingCharacters(in: .whitespaces)
        guard !cleaned.isEmpty, cleaned.utf8.count <= maxNameBytes else {
            throw PipelineError(.invalidField, "the file's name must be 1 to \(maxNameBytes) bytes")
        }
        return cleaned
    }

    /// `attachment; filename="…"; filename*=UTF-8''…`: the name as it is for browsers that read
    /// RFC 6266's form, and an ASCII stand-in for those that do not.
    static func disposition(_ name: String) -> String {
        let ascii = String(name.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0 != "\"" && $0 != "\\" ? Character($0) : "_" })
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? ascii
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }

    /// The HTTP status of each wire code.
    static func status(of code: ErrorCode) -> Int {
        switch code {
        case .badJSON, .invalidField, .binaryFrame, .unknownType: 400
        case .unauthenticated, .authFailed, .sessionExpired, .codeRequired, .signInPending: 401
        case .forbidden, .insecureTransport, .originRefused, .alreadyAuthenticated, .configRefused: 403
        case .notFound, .unknownOrg: 404
        case .conversationEnded, .attachmentHeld, .conflict: 409
        case .tooLarge: 413
        case .unsupportedType: 415
        case .infected: 422
        case .rateLimited: 429
        case .unavailable: 503
        case .internal: 500
        }
    }

    /// `{"code":…,"message":…}` with the code's status.
    static func problem(_ error: PipelineError) -> HTTPResponse {
        var writer = JSONWriter()
        writer.field("code", error.code.rawValue)
        writer.field("message", error.message)
        return HTTPResponse(status: status(of: error.code), headers: ["Content-Type": "application/json"], body: .bytes(Array(writer.finish().utf8)))
    }
}

/// An HTTP body's iterator, read by one task at a time: the store stage pulls the pieces in order,
/// each `next` after the previous one returned.
private final class BodyReader: @unchecked Sendable {
    private var iterator: HTTPBodyStream.AsyncIterator

    init(_ iterator: HTTPBodyStream.AsyncIterator) { self.iterator = iterator }

    func next() async throws(HTTPBodyError) -> [UInt8]? { try await iterator.next() }
}
