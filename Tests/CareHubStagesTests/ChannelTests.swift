import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Testing

@Suite("auth stage: how a connection reached the hub")
struct ChannelTests {
    static let config = """
        [org clinic]
        name = Riverside Clinic
        hipaa = on
        widget_origins = https://www.riverside.example
        stage auth
        stage idle timeout=10m lifetime=1h
        stage encrypt
        stage store
        stage fanout
        """

    func code(_ hub: StageHarness, _ frame: ClientFrame, _ channel: Channel) async -> ErrorCode? {
        var request = hub.world.request(frame, connection: ConnectionID(7))
        request.channel = channel
        return await hub.errorCode(of: request)
    }

    @Test func aHIPAAOrganisationIsNotReachedOverPlainWebSockets() async throws {
        let hub = try StageHarness(Self.config)
        let hello = ClientFrame.hello(org: hub.org.id, token: nil)
        #expect(await code(hub, hello, Channel(secure: false)) == .insecureTransport)
        #expect(await code(hub, .login(org: hub.org.id, user: "joy", password: Password("joy-password"), totp: nil), Channel(secure: false)) == .insecureTransport)
        #expect(await code(hub, hello, Channel(secure: true)) == nil)
        #expect(try await hub.world.conversations.list(org: hub.org.id, limit: 10).count == 1, "the refused hello opened nothing")
    }

    @Test func browsersReachAnOrganisationOnlyFromItsOwnPages() async throws {
        let hub = try StageHarness(Self.config)
        let hello = ClientFrame.hello(org: hub.org.id, token: nil)
        let login = ClientFrame.login(org: hub.org.id, user: "joy", password: Password("wrong"), totp: nil)
        let own = "https://chat.riverside.example"
        // The widget from the clinic's site or from the hub's own pages.
        #expect(await code(hub, hello, Channel(secure: true, origin: "https://www.riverside.example", ownOrigin: own)) == nil)
        #expect(await code(hub, hello, Channel(secure: true, origin: "HTTPS://WWW.Riverside.example:443", ownOrigin: own)) == nil)
        #expect(await code(hub, hello, Channel(secure: true, origin: own, ownOrigin: own)) == nil)
        #expect(await code(hub, hello, Channel(secure: true, origin: "https://evil.example", ownOrigin: own)) == .originRefused)
        // A console only from the hub's own pages, never from a widget site.
        #expect(await code(hub, login, Channel(secure: true, origin: "https://www.riverside.example", ownOrigin: own)) == .originRefused)
        #expect(await code(hub, login, Channel(secure: true, origin: own, ownOrigin: own)) == .authFailed)
        // Not a browser: no page can make it act for anyone.
        #expect(await code(hub, login, Channel(secure: true)) == .authFailed)
    }
}
