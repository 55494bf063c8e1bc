import CareHubCore
import CareHubStages
import CareHubTransport
import Foundation
import Logging

/// The HTTP side of single sign-on, for organisations whose `stage auth` names `sso=NAME`:
///
/// - `GET /sso/{org}`: `{"org":…,"provider":…}`, which the consoles read to offer "Log in with …"
///   (404 without SSO);
/// - `GET /sso/{org}/start?page=staff|admin`: redirects to the provider's authorization page;
/// - `GET /sso/{org}/callback`: where the provider sends the browser back; the login is
///   verified and the browser goes on to the console with a one-time ticket in the address's
///   fragment (`#org=…&sso=TICKET`), which no server sees and no log holds; the console trades it
///   on its WebSocket for a session (`sso` frame). A refusal goes there too, as `sso_error=`;
/// - `POST /sso/{org}/backchannel-logout`: OpenID Connect Back-Channel Logout (`logout_token`).
///
/// No cookie is set: the session lives in the console's WebSocket as after a password login.
struct SSORoutes: Sendable {
    let configuration: HubConfiguration
    let logins: SSOLogins
    let metrics: HubMetrics
    let clock: any WallClock
    let trustedProxies: [CIDRBlock]
    let limiter: RateLimiter
    let logger: Logger

    /// What one address may ask of these pages a minute: sign-ins started, returns from the
    /// provider, back-channel logouts.
    static let startsPerAddressPerMinute = 20
    static let callbacksPerAddressPerMinute = 20
    static let logoutsPerAddressPerMinute = 120

    /// The console pages a login may return to.
    static let pages: Set<String> = ["staff", "admin"]
    /// The longest logout token taken, in bytes of the form body.
    static let maxLogoutBodyBytes = 32 * 1024

    func add(to router: inout HTTPRouter) {
        router.get("/sso/:org") { request in await describe(request) }
        router.get("/sso/:org/start") { request in await start(request) }
        router.get("/sso/:org/callback") { request in await callback(request) }
        router.post("/sso/:org/backchannel-logout", maxBodyBytes: Self.maxLogoutBodyBytes) { request in await backchannelLogout(request) }
    }

    /// The organisation named in the path and its provider, or the answer saying why not.
    private func provider(_ http: HTTPRequest) -> (OrgID, SSOProvider)? {
        guard let text = http.parameters["org"], OrgID.isValid(text) else { return nil }
        let org = OrgID(text)
        guard let configured = configuration.config.org(org), let provider = Self.provider(of: configured) else { return nil }
        return (org, provider)
    }

    /// The provider `stage auth sso=` names in `org`.
    static func provider(of org: ConfiguredOrg) -> SSOProvider? {
        org.stages.lazy.compactMap { $0.configuration as? AuthStage.Configuration }.first?.sso
    }

    private static let notFound = APIRoutes.json(#"{"code":"not_found","message":"this organisation has no single sign-on"}"#, status: 404)

    func describe(_ http: HTTPRequest) async -> HTTPResponse {
        guard let (org, provider) = provider(http) else { return Self.notFound }
        var writer = JSONWriter()
        writer.field("org", org.rawValue)
        writer.field("provider", provider.name)
        var response = APIRoutes.json(writer.finish())
        response.headers["Cache-Control"] = "no-store"
        return response
    }

    func start(_ http: HTTPRequest) async -> HTTPResponse {
        let now = clock.now
        guard let (org, provider) = provider(http) else { return Self.notFound }
        let page = http.queryValue("page").flatMap { Self.pages.contains($0) ? $0 : nil } ?? "staff"
        if let refusal = insecure(http, org: org) { return back(to: page, org: org, error: refusal) }
        if let wait = limited("sso_start", http, Self.startsPerAddressPerMinute, at: now) {
            return back(to: page, org: org, error: "Too many sign-ins from this address. Wait \(Int(wait.rounded(.up))) seconds and try again.")
        }
        guard let origin = ownOrigin(http) else {
            return back(to: page, org: org, error: "This address cannot be used for single sign-on. Open the console at the hub's own address.")
        }
        do {
            let url = try await logins.begin(
                org: org, provider: provider, redirectURI: "\(origin)/sso/\(org.rawValue)/callback", page: page, at: now)
            metrics.record(org: org, type: "sso.start", seconds: 0, error: nil)
            return Self.noStore(.redirect(to: url))
        } catch {
            metrics.record(org: org, type: "sso.start", seconds: 0, error: .unavailable)
            return back(to: page, org: org, error: Self.message(error))
        }
    }

    func callback(_ http: HTTPRequest) async -> HTTPResponse {
        let now = clock.now
        guard let (org, provider) = provider(http) else { return Self.notFound }
        let state = http.queryValue("state") ?? ""
        let page = logins.page(of: state) ?? "staff"
        // No ticket travels over plain http for a HIPAA organisation.
        if let refusal = insecure(http, org: org) { return back(to: page, org: org, error: refusal) }
        if let wait = limited("sso_callback", http, Self.callbacksPerAddressPerMinute, at: now) {
            return back(to: page, org: org, error: "Too many sign-ins from this address. Wait \(Int(wait.rounded(.up))) seconds and try again.")
        }
        if let error = http.queryValue("error") {
            // The person cancelled, or the provider refused them: its code, never free text, is recorded.
            let code = String(error.prefix(64).filter { $0.isASCII && ($0.isLetter || $0 == "_") })
            await logins.cancel(org: org, provider: provider, state: state, error: code, peer: peer(http), at: now)
            return back(to: page, org: org, error: "\(provider.name) did not sign you in (\(code)). Try again.")
        }
        guard let code = http.queryValue("code"), !code.isEmpty, code.utf8.count <= 2048, !state.isEmpty else {
            return back(to: page, org: org, error: "The sign-in came back incomplete. Start again.")
        }
        do {
            let (ticket, page) = try await logins.finish(org: org, provider: provider, state: state, code: code, peer: peer(http), at: now)
            metrics.record(org: org, type: "sso.callback", seconds: 0, error: nil)
            return Self.noStore(.redirect(to: "/\(page).html#org=\(org.rawValue)&sso=\(ticket)"))
        } catch {
            metrics.record(org: org, type: "sso.callback", seconds: 0, error: .authFailed)
            return back(to: page, org: org, error: Self.message(error))
        }
    }

    func backchannelLogout(_ http: HTTPRequest) async -> HTTPResponse {
        guard let (org, provider) = provider(http) else { return Self.notFound }
        if limited("sso_logout", http, Self.logoutsPerAddressPerMinute, at: clock.now) != nil {
            return Self.noStore(APIRoutes.json(#"{"error":"temporarily_unavailable","error_description":"too many logout requests"}"#, status: 429))
        }
        let form = Self.form(http.body)
        guard let token = form["logout_token"], !token.isEmpty else {
            return Self.noStore(APIRoutes.json(#"{"error":"invalid_request","error_description":"logout_token is required"}"#, status: 400))
        }
        do {
            _ = try await logins.logout(org: org, provider: provider, token: token, peer: peer(http), at: clock.now)
            metrics.record(org: org, type: "sso.logout", seconds: 0, error: nil)
            return Self.noStore(HTTPResponse(status: 200))
        } catch {
            metrics.record(org: org, type: "sso.logout", seconds: 0, error: .authFailed)
            let reason = (error as? SSOLogins.Refusal)?.reason ?? "invalid_request"
            var writer = JSONWriter()
            writer.field("error", "invalid_request")
            writer.field("error_description", reason)
            return Self.noStore(APIRoutes.json(writer.finish(), status: 400))
        }
    }

    // MARK: Helpers

    /// Back to the console page with a message for the person (in the fragment, as the ticket).
    private func back(to page: String, org: OrgID, error message: String) -> HTTPResponse {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = message.addingPercentEncoding(withAllowedCharacters: allowed) ?? "error"
        return Self.noStore(.redirect(to: "/\(page).html#org=\(org.rawValue)&sso_error=\(encoded)"))
    }

    private static func noStore(_ response: HTTPResponse) -> HTTPResponse {
        var response = response
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
    }

    private static func message(_ error: any Error) -> String {
        (error as? SSOLogins.Refusal)?.message ?? "Single sign-on failed. Try again in a moment."
    }

    private func client(_ http: HTTPRequest) -> ClientAddress {
        ClientAddress(
            peer: http.peer, forwardedFor: http.headers["x-forwarded-for"], forwardedProto: http.headers["x-forwarded-proto"],
            tls: http.tls, origin: http.headers["origin"], host: http.headers["host"], trustedProxies: trustedProxies)
    }

    private func peer(_ http: HTTPRequest) -> String { client(http).address }

    /// How long the client's address must wait for another `limit` request, or nil to go on.
    private func limited(_ limit: String, _ http: HTTPRequest, _ perMinute: Int, at now: Date) -> TimeInterval? {
        limiter.take(RateLimiter.Key(limit, peer(http)), rate: Rate.perMinute(perMinute), at: now)
    }

    /// Why a HIPAA organisation's sign-in may not go over this request's channel (plain http
    /// from neither loopback nor a listed proxy that terminated TLS), or nil.
    private func insecure(_ http: HTTPRequest, org: OrgID) -> String? {
        guard configuration.config.org(org)?.settings.hipaa == true, !client(http).channel.secure else { return nil }
        return "This organisation signs in only over a secure (https) connection. Use the hub's https address."
    }

    /// `scheme://host[:port]` the browser used, if its `Host` is a plain host name or address.
    private func ownOrigin(_ http: HTTPRequest) -> String? {
        guard let host = http.headers["host"], !host.isEmpty, host.utf8.count <= 255,
              host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !Array("/?#@\\\"'<>".utf8).contains($0) })
        else { return nil }
        return client(http).channel.ownOrigin
    }

    /// An `application/x-www-form-urlencoded` body's fields (the first of each name).
    static func form(_ body: [UInt8]) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            let name = decode(parts[0])
            if fields[name] == nil { fields[name] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return fields
    }
}
