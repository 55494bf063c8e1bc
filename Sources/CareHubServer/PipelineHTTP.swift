import CareHubCore
import CareHubTransport
import Foundation
import Logging
import Synchronization

/// What the HTTP routes that run requests through a pipeline (attachments, the integration API)
/// share: the request as the pipeline sees it, and the answer to a refusal with its metrics.
enum PipelineHTTP {
    /// HTTP requests get connection ids of their own, which no socket has.
    private static let nextID = Atomic<UInt64>(1 << 62)

    /// `frame` as the pipeline receives it from `http`: the client's address and channel as the
    /// trusted proxies say, and the bearer token of `Authorization`.
    static func request(_ frame: ClientFrame, from http: HTTPRequest, at now: Date, trustedProxies: [CIDRBlock]) -> Request {
        let client = ClientAddress(
            peer: http.peer, forwardedFor: http.headers["x-forwarded-for"], forwardedProto: http.headers["x-forwarded-proto"],
            tls: http.tls, origin: http.headers["origin"], host: http.headers["host"], trustedProxies: trustedProxies)
        let id = ConnectionID(nextID.add(1, ordering: .relaxed).newValue)
        var request = Request(connection: id, peer: client.address, id: nil, frame: frame, receivedAt: now, session: nil)
        request.channel = client.channel
        request.credential = bearer(http.headers["authorization"])
        return request
    }

    /// Runs `body`, turning what it throws into `problem`'s answer (an unexpected error logged by
    /// its type only), and records the request's metrics by `type`, never by value.
    static func answer(
        org: OrgID?, type: String, metrics: HubMetrics, logger: Logger, problem: (PipelineError) -> HTTPResponse,
        _ body: () async throws -> HTTPResponse
    ) async -> HTTPResponse {
        let started = ContinuousClock.now
        var failure: ErrorCode?
        var response: HTTPResponse
        do {
            response = try await body()
        } catch {
            let refusal = error as? PipelineError ?? .internal
            if refusal == .internal {
                logger.error("HTTP request failed", metadata: ["http.route": "\(type)", "error.type": "\(Swift.type(of: error))"])
            }
            failure = refusal.code
            response = problem(refusal)
        }
        metrics.record(org: failure == .unknownOrg ? nil : org, type: type, seconds: (ContinuousClock.now - started).seconds, error: failure)
        return response
    }

    /// The token of `Authorization: Bearer TOKEN`.
    static func bearer(_ header: String?) -> String? {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }
}
