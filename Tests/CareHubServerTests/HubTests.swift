import CareHubCore
@testable import CareHubServer
import CareHubTransport
import Foundation
import Logging
import Synchronization
import Testing

@Suite("hub: routing, binding, errors, draining, admin refusals", .serialized)
struct HubTests {
    @Test func framesBeforeASessionAndUndecodableFramesGetStableCodes() async throws {
        let harness = try HubHarness()
        harness.open(1)
        #expect(try await harness.request(1, ["type": "rooms", "id": "r"], ["rooms"])["code"] as? String == "unauthenticated")
        #expect(try await harness.request(1, ["type": "hello", "org": "nowhere", "id": "h"], ["welcome"])["code"] as? String == "unknown_org")
        #expect(try await harness.request(1, ["type": "hello", "org": "other", "id": "h"], ["welcome"])["code"] as? String == "forbidden")
        #expect(try await harness.request(1, ["type": "nonsense", "id": "n"], [])["code"] as? String == "unknown_type")
        harness.sendRaw(1, .text(Array("{not json".utf8)))
        #expect(try await harness.next(1, [])["code"] as? String == "bad_json")
        harness.sendRaw(1, .binary)
        #expect(try await harness.next(1, [])["code"] as? String == "binary_frame")
        harness.sendRaw(1, .oversized(byteCount: 70_000))
        let oversized = try await harness.next(1, [])
        #expect(oversized["code"] as? String == "too_large" && (oversized["message"] as? String)?.contains("70000") == true)
        await harness.stop()
    }

    @Test func aLoginBindsTheConnectionAndLogoutUnbindsIt() async throws {
        let harness = try HubHarness()
        try await harness.addUser("joy")
        harness.open(1)
        let session = try await harness.login(1, "joy")
        #expect(session["type"] as? String == "session" && session["user"] as? String == "joy")
        #expect(try await harness.request(1, ["type": "rooms", "id": "r"], ["rooms"])["type"] as? String == "rooms")
        #expect(try await harness.request(1, ["type": "login", "org": "clinic", "user": "joy", "password": "x", "id": "l2"], ["session"])["code"] as? String == "already_authenticated")
        #expect(try await harness.request(1, ["type": "logout", "id": "o"], ["logged_out"])["type"] as? String == "logged_out")
        #expect(try await harness.request(1, ["type": "rooms", "id": "r2"], ["rooms"])["code"] as? String == "unauthenticated")
        await harness.stop()
    }

    @Test func aMessageIsAcknowledgedToItsSenderAndDeliveredToTheRoom() async throws {
        let harness = try HubHarness()
        try await harness.addUser("joy")
        harness.open(1)
        harness.open(2)
        _ = try await harness.login(2, "joy")
        let welcome = try await harness.request(1, ["type": "hello", "org": "clinic", "id": "h"], ["welcome"])
        let room = try #require(welcome["conversation"] as? String)
        _ = try await harness.request(2, ["type": "subscribe", "room": room, "id": "s"], ["subscribed"])
        let ack = try await harness.request(1, ["type": "send", "room": room, "text": "hello", "id": "m"], ["ack"])
        #expect(ack["seq"] as? Int == 1)
        let delivered = try await harness.next(2, ["message"])
        #expect(delivered["text"] as? String == "hello" && delivered["from"] as? String == "visitor")
        // The visitor's place in the queue follows its welcome on the same connection.
        let frames = harness.out.frames(to: ConnectionHandle(rawValue: 1)).map { $0["type"] as? String ?? "" }
        let welcomed = try #require(frames.firstIndex(of: "welcome"))
        #expect(frames.firstIndex(of: "queue").map { $0 > welcomed } == true)
        await harness.stop()
    }

    @Test func anIdleConsoleIsLockedWhenTheClockPassesItsTimeoutAndNotBefore() async throws {
        let harness = try HubHarness()
        try await harness.addUser("joy")
        harness.open(1)
        _ = try await harness.login(1, "joy")
        await harness.advance(by: 29 * 60)
        #expect(!harness.out.frames(to: ConnectionHandle(rawValue: 1)).contains { $0["type"] as? String == "session_expired" })
        await harness.advance(by: 60)
        let expired = try await harness.next(1, ["session_expired"])
        #expect(expired["reason"] as? String == "idle")
        #expect(try harness.hub.audit.entries(org: OrgID("clinic"), action: "session.expired").map(\.event.detail) == ["reason=idle"])
        await harness.stop()
    }

    @Test func aConsoleThatClosesAfterItsIdleTimeBeforeTheHubsTickEndsAsExpired() async throws {
        let harness = try HubHarness(config: HubHarness.config.replacingOccurrences(of: "timeout=30m", with: "timeout=1s"))
        try await harness.addUser("joy")
        harness.open(1)
        _ = try await harness.login(1, "joy")
        // The console's own timer locked it and it closed its socket; no tick has run since.
        // (The hub judges a closed connection's session by the time it closed.)
        try await Task.sleep(for: .milliseconds(1_500))
        harness.close(1)
        let endings = {
            try harness.hub.audit.entries(org: OrgID("clinic")).map(\.event)
                .filter { ["session.expired", "session.ended", "logout"].contains($0.action) }.map { "\($0.action) \($0.detail)" }
        }
        for _ in 0..<500 where try endings().isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(try endings() == ["session.expired reason=idle"])
        // A tick after the close finds no session left to expire: still one event.
        await harness.advance(by: 1)
        #expect(try endings() == ["session.expired reason=idle"])
        await harness.stop()
    }

    @Test func aDrainingHubRefusesNewFramesWithUnavailable() async throws {
        let harness = try HubHarness()
        harness.open(1)
        harness.hub.configuration.beginDraining()
        let refused = try await harness.request(1, ["type": "hello", "org": "clinic", "id": "h"], ["welcome"])
        #expect(refused["code"] as? String == "unavailable")
        await harness.stop()
    }

    @Test func aConnectionOverTheAddressLimitIsToldWhyAndClosed() async throws {
        let directory = NSTemporaryDirectory() + "carehub-harness-limit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try HubHarness.config.write(toFile: directory + "/pipeline.conf", atomically: true, encoding: .utf8)
        var limits = HubLimits.standard
        limits.connectionsPerAddress = 1
        let out = CapturedOutbound()
        let hub = try Hub(
            options: HubOptions(configPath: directory + "/pipeline.conf", dataDirectory: directory + "/data", staticRoot: nil, limits: limits),
            logger: Logger(label: "test"), outbound: out)
        hub.receive(.opened(ConnectionInfo(peer: "10.0.0.9")), from: ConnectionHandle(rawValue: 1))
        hub.receive(.opened(ConnectionInfo(peer: "10.0.0.9")), from: ConnectionHandle(rawValue: 2))
        #expect(out.closes(of: ConnectionHandle(rawValue: 2)) == [1008])
        #expect(out.frames(to: ConnectionHandle(rawValue: 2)).first?["code"] as? String == "rate_limited")
        #expect(out.closes(of: ConnectionHandle(rawValue: 1)).isEmpty)
        await hub.shutdown()
    }

    @Test func theAdminAPIRefusesNonAdminsOtherOrganisationsAndChangesToOnesOwnAccount() async throws {
        let harness = try HubHarness()
        try await harness.addUser("joy")
        try await harness.addUser("boss", role: .admin)
        harness.open(1)
        harness.open(2)
        _ = try await harness.login(1, "joy")
        let staff = try await harness.request(1, ["type": "admin", "op": "users.list", "id": "a"], ["admin"])
        #expect(staff["code"] as? String == "forbidden")
        let admin = try await harness.login(2, "boss")
        #expect(admin["role"] as? String == "admin")
        let users = try await harness.request(2, ["type": "admin", "op": "users.list", "id": "u"], ["admin"])
        let listed = (users["result"] as? [String: Any])?["users"] as? [[String: Any]] ?? []
        #expect(listed.compactMap { $0["user"] as? String } == ["boss", "joy"])
        let own = try await harness.request(2, ["type": "admin", "op": "users.disable", "user": "boss", "id": "d"], ["admin"])
        #expect(own["code"] as? String == "forbidden")
        let foreign = try await harness.request(
            2, ["type": "admin", "op": "pipeline.check", "text": "[org other]\nname = X\nhipaa = off\nstage auth\nstage store\nstage fanout", "id": "c"],
            ["admin"])
        #expect(foreign["code"] as? String == "config_refused")
        let missing = try await harness.request(2, ["type": "admin", "op": "users.unlock", "user": "ghost", "id": "g"], ["admin"])
        #expect(missing["code"] as? String == "not_found")
        // Disabling a colleague ends her session before the admin hears back.
        _ = try await harness.request(2, ["type": "admin", "op": "users.disable", "user": "joy", "id": "x"], ["admin"])
        #expect(harness.out.frames(to: ConnectionHandle(rawValue: 1)).contains { $0["type"] as? String == "session_expired" && $0["reason"] as? String == "revoked" })
        await harness.stop()
    }

    @Test func notificationRetriesBackOffFromFiveSecondsToFifteenMinutes() {
        #expect(NotificationDispatcher.retryDelay(afterAttempts: 1) == 5)
        #expect(NotificationDispatcher.retryDelay(afterAttempts: 2) == 10)
        #expect(NotificationDispatcher.retryDelay(afterAttempts: 5) == 80)
        #expect(NotificationDispatcher.retryDelay(afterAttempts: 19) == 15 * 60)
    }
}

/// A stage whose tick waits until it is let go, or counts its ticks.
private struct TickStage: Stage {
    struct Configuration: StageConfiguration {
        init(parameters: inout StageParameters, org: OrgSettings) throws {}
        init() {}
        var summary: [String] { [] }
    }

    static let name = "tick"
    let onTick: @Sendable () async -> Void

    init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) { onTick = {} }
    init(onTick: @escaping @Sendable () async -> Void) { self.onTick = onTick }

    func handle(_ request: Request, next: Next) async throws -> Outcome { try await next(request) }
    func tick(at now: Date) async { await onTick() }
}

@Suite("hub: each organisation's background work")
struct OrgTickerTests {
    @Test func aStuckOrganisationDoesNotDelayAnotherOrganisationsTicks() async throws {
        let released = Mutex(false)
        let slowTicks = Mutex(0)
        let fastTicks = Mutex(0)
        let slow = Pipeline(org: OrgSettings(id: OrgID("slow"), displayName: "Slow", hipaa: false), stages: [TickStage {
            slowTicks.withLock { $0 += 1 }
            while !released.withLock({ $0 }) && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
        }])
        let fast = Pipeline(org: OrgSettings(id: OrgID("fast"), displayName: "Fast", hipaa: false), stages: [TickStage {
            fastTicks.withLock { $0 += 1 }
        }])
        let ticker = OrgTicker(pipelines: { [slow, fast] }, logger: Logger(label: "test"))
        for _ in 0..<5 {
            ticker.round(at: Date())
            // Each round's tick of the fast organisation finishes although the slow one never does.
            let target = fastTicks.withLock { $0 } + 1
            let deadline = ContinuousClock.now + .seconds(10)
            while fastTicks.withLock({ $0 }) < target && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(fastTicks.withLock { $0 } == 5)
        // The stuck organisation is not ticked again while its tick runs: no pile-up.
        #expect(slowTicks.withLock { $0 } == 1)
        released.withLock { $0 = true }
        await ticker.stop()
    }
}
