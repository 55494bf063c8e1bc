import CareHubCore
import CareHubStages
import CareHubTesting
import Foundation
import Synchronization
import Testing

@Suite("auth stage: limits before any costly work")
struct ThrottleTests {
    static let generous = HubLimits(loginsPerAddressPerMinute: 1000, loginsPerMinute: 1000, connectionsPerAddress: 1000)

    @Test func parallelAttemptsForOneAccountAreJudgedOneByOne() async throws {
        // A burst of wrong passwords with the right one last, all in flight at once: each attempt
        // must see the failures and back-off of the ones before it, so the right password inside
        // the window is refused. Password checks are held until every attempt is either checking
        // or waiting its turn, so the interleaving is the worst one, not the scheduler's luck.
        let gate = SerialGate(maxWaiting: 64)
        let world = TestWorld(throttle: Throttle(hub: Self.generous, accounts: gate))
        let config = try StageRegistry.standard.load(StageHarness.wellnessConfig, file: "test.conf").orgs[0]
        let org = config.settings.id
        world.users.add(StaffUser(org: org, name: "sam", role: .staff, passwordHash: PlainCredentials.hash("sam-password")))
        let held = HeldCredentials()
        var environment = world.environment
        environment.credentials = held
        let pipeline = config.makePipeline(environment: environment)
        let attempts = 41
        let done = Counter()
        let task = Task {
            await withTaskGroup(of: Bool.self) { group in
                for index in 0..<attempts {
                    let password = index == attempts - 1 ? "sam-password" : "wrong-\(index)"
                    group.addTask {
                        let request = world.request(.login(org: org, user: "sam", password: Password(password), totp: nil),
                                                    connection: ConnectionID(UInt64(index + 1)))
                        let session = (try? await pipeline.run(request))?.bind
                        done.add()
                        return session != nil
                    }
                }
                var wins = 0
                for await won in group where won { wins += 1 }
                return wins
            }
        }
        var rounds = 0
        while done.value < attempts {
            rounds += 1
            try #require(rounds < 5_000_000, "the attempts never settled")
            if held.pending > 0 && held.pending + gate.waiting(for: "\(org.rawValue)|sam") + done.value == attempts {
                held.releaseAll()
            } else {
                await Task.yield()
            }
        }
        #expect(await task.value == 0, "no attempt of the burst may win")
        let failures = world.audit.events.filter { $0.action == "login.failure" }
        #expect(failures.count == attempts)
        // One password was checked and failed; every other attempt met its back-off untried.
        #expect(failures.filter { $0.detail.hasPrefix("reason=password") }.count == 1)
        #expect(failures.filter { $0.detail == "reason=backoff" }.count == attempts - 1)
    }

    @Test func loginsFromOneAddressAreLimitedBeforeAnyPasswordIsChecked() async throws {
        let limits = HubLimits(loginsPerAddressPerMinute: 3, loginsPerMinute: 1000, connectionsPerAddress: 1000)
        let hub = try StageHarness(StageHarness.wellnessConfig, staff: [], throttle: Throttle(hub: limits))
        for connection in 1...3 {
            #expect(await hub.rawLogin(connection, user: "nobody\(connection)", code: nil).errorCode == .authFailed)
        }
        let refused = await hub.rawLogin(4, user: "nobody4", code: nil)
        #expect(refused.errorCode == .rateLimited)
        #expect(hub.world.audit.events.filter { $0.action == "login.failure" }.count == 3, "a refused attempt never reached the accounts")
        #expect(hub.world.throttle.limiter.refusals["login_address"] == 1)
        // Another address is not affected; after a minute the address may try again.
        let other = hub.world.request(.login(org: hub.org.id, user: "x", password: Password("y"), totp: nil), connection: ConnectionID(9), peer: "192.0.2.9")
        await #expect(throws: PipelineError.authFailed) { try await hub.pipeline.run(other) }
        hub.world.clock.advance(by: 60)
        #expect(await hub.rawLogin(5, user: "nobody5", code: nil).errorCode == .authFailed)
    }
}

/// Password checks that wait until the test lets them finish.
private final class HeldCredentials: Credentials {
    private let plain = PlainCredentials()
    private let waiting = Mutex<[CheckedContinuation<Void, Never>]>([])

    var pending: Int { waiting.withLock { $0.count } }

    func releaseAll() {
        for continuation in waiting.withLock({ list in defer { list = [] }; return list }) { continuation.resume() }
    }

    func verify(_ password: Password, against hash: String?) async throws -> Bool {
        await withCheckedContinuation { continuation in waiting.withLock { $0.append(continuation) } }
        return try await plain.verify(password, against: hash)
    }

    func newToken() -> String { plain.newToken() }
    func digest(_ token: String) -> [UInt8] { plain.digest(token) }
    func newTOTPSecret() -> [UInt8] { plain.newTOTPSecret() }
    func totpCounter(_ code: String, secret: [UInt8], at now: Date) -> UInt64? { plain.totpCounter(code, secret: secret, at: now) }
    func enrollment(secret: [UInt8], issuer: String, account: String) -> (secret: String, uri: String) {
        plain.enrollment(secret: secret, issuer: issuer, account: account)
    }
    func newRecoveryCodes() -> [String] { plain.newRecoveryCodes() }
}

private final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
