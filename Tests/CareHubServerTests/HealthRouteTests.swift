import CareHubCore
import Foundation
import Testing
@testable import CareHubServer

@Suite("/healthz")
struct HealthRouteTests {
    @Test func healthyWhileItCommitsOneProbeASecondAndDrainingOnceStopping() async throws {
        let harness = try HubHarness()
        let route = HealthRoute(database: harness.hub.database, configuration: harness.hub.configuration, clock: harness.clock)
        #expect(await route.answer().status == 200)
        let first = try harness.hub.database.rawRead("SELECT CAST(checked_at AS INTEGER) FROM health WHERE id = 1")
        #expect(first == Int(harness.clock.now.timeIntervalSince1970))
        // Asked again within the second: the answer is reused, the database not written.
        harness.clock.advance(by: 0.5)
        #expect(await route.answer().status == 200)
        #expect(try harness.hub.database.rawRead("SELECT CAST(checked_at AS INTEGER) FROM health WHERE id = 1") == first)
        harness.clock.advance(by: 10)
        #expect(await route.answer().status == 200)
        #expect(try harness.hub.database.rawRead("SELECT CAST(checked_at AS INTEGER) FROM health WHERE id = 1") == Int(harness.clock.now.timeIntervalSince1970))
        // A node that is shutting down takes no new work: the balancer moves on.
        harness.hub.configuration.beginDraining()
        #expect(await route.answer().status == 503)
        await harness.stop()
    }

    @Test func aDatabaseThatCannotCommitIsUnavailable() async throws {
        let harness = try HubHarness()
        let route = HealthRoute(database: harness.hub.database, configuration: harness.hub.configuration, clock: harness.clock)
        // A trigger refusing the write stands for a disk or lock that refuses the commit.
        try harness.hub.database.rawWrite("CREATE TRIGGER refuse BEFORE INSERT ON health BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        let answer = await route.answer()
        #expect(answer.status == 503)
        var text = ""
        if case .bytes(let body) = answer.body { text = String(decoding: body, as: UTF8.self) }
        #expect(text == #"{"status":"unavailable"}"#)
        await harness.stop()
    }
}
