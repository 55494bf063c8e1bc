import CareHubCore
import CareHubStorage
import CareHubTransport
import Foundation
import Synchronization

/// `GET /healthz` for a load balancer: 200 `{"status":"ok"}` while this node takes new work and
/// can commit (it writes the database's health row), 503 `{"status":"draining"}` once it is
/// shutting down, 503 `{"status":"unavailable"}` when the commit fails. The answer is kept for a
/// second, so however often the path is asked the database sees at most one probe a second.
final class HealthRoute: Sendable {
    let database: CareHubDatabase
    let configuration: HubConfiguration
    let clock: any WallClock

    /// How long an answer is reused.
    static let interval: TimeInterval = 1

    /// The last probe: when, and whether it committed.
    private let last = Mutex<(at: Date, healthy: Bool)?>(nil)

    init(database: CareHubDatabase, configuration: HubConfiguration, clock: any WallClock) {
        self.database = database
        self.configuration = configuration
        self.clock = clock
    }

    func add(to router: inout HTTPRouter) {
        router.get("/healthz") { [self] _ in await self.answer() }
    }

    func answer() async -> HTTPResponse {
        if configuration.draining { return Self.status("draining", 503) }
        let now = clock.now
        if let recent = last.withLock({ $0 }), now.timeIntervalSince(recent.at) < Self.interval, now >= recent.at {
            return recent.healthy ? Self.status("ok", 200) : Self.status("unavailable", 503)
        }
        let healthy: Bool
        do {
            try await database.probeCommit(at: now)
            healthy = true
        } catch {
            healthy = false
        }
        last.withLock { $0 = (now, healthy) }
        return healthy ? Self.status("ok", 200) : Self.status("unavailable", 503)
    }

    private static func status(_ text: String, _ code: Int) -> HTTPResponse {
        HTTPResponse(status: code, headers: ["Content-Type": "application/json", "Cache-Control": "no-store"],
                     body: .bytes(Array(#"{"status":"\#(text)"}"#.utf8)))
    }
}
