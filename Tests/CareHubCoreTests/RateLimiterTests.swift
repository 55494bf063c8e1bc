import CareHubCore
import Foundation
import Synchronization
import Testing

@Suite struct RateLimiterTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aBurstThenTheSustainedRate() {
        let limiter = RateLimiter()
        let key = RateLimiter.Key("test", "a")
        let rate = Rate(2, per: 1, burst: 4)
        for _ in 0..<4 { #expect(limiter.take(key, rate: rate, at: start) == nil) }
        let wait = limiter.take(key, rate: rate, at: start)
        #expect(wait == 0.5)
        #expect(limiter.take(key, rate: rate, at: start.addingTimeInterval(0.5)) == nil)
        #expect(limiter.take(key, rate: rate, at: start.addingTimeInterval(0.5)) != nil)
        #expect(limiter.take(RateLimiter.Key("test", "b"), rate: rate, at: start) == nil, "each scope has its own bucket")
        #expect(limiter.refusals == ["test": 2])
    }

    @Test func theTableStaysBoundedUnderManyScopes() {
        let limiter = RateLimiter(capacity: 100)
        for index in 0..<10_000 {
            _ = limiter.take(RateLimiter.Key("address", "192.0.2.\(index)"), rate: .perMinute(5), at: start.addingTimeInterval(Double(index) / 1000))
        }
        #expect(limiter.count <= 100)
    }

    @Test func aGateRunsOneCallPerKeyAndRefusesPastItsBound() async throws {
        let gate = SerialGate(maxWaiting: 2)
        let running = Running()
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    do {
                        try await gate.run("k", full: PipelineError(.rateLimited, "busy")) {
                            running.enter()
                            try? await Task.sleep(for: .milliseconds(20))
                            running.leave()
                        }
                        return true
                    } catch {
                        return false
                    }
                }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(running.most == 1)
        #expect(results.filter { $0 }.count >= 3)
        #expect(results.contains(false), "more than one running and two waiting is refused")
        #expect(gate.busyKeys == 0)
    }
}

private final class Running: Sendable {
    private let state = Mutex((now: 0, most: 0))
    func enter() { state.withLock { $0.now += 1; $0.most = max($0.most, $0.now) } }
    func leave() { state.withLock { $0.now -= 1 } }
    var most: Int { state.withLock { $0.most } }
}
