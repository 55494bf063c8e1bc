import CareHubCore
import CareHubTesting
import Foundation
import Synchronization
import Testing

/// A stage that records its name on the way in and out, to observe the fold.
private struct TraceStage: Stage {
    struct Configuration: StageConfiguration {
        var label: String
        init(parameters: inout StageParameters, org: OrgSettings) throws {
            label = try parameters.choice("label", ["a", "b", "c"], default: "a")
        }
        var summary: [String] { ["label=\(label)"] }
    }
    static let name = "trace"
    let label: String
    let log: Log

    init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        label = configuration.label
        log = Log()
    }

    init(label: String, log: Log) {
        self.label = label
        self.log = log
    }

    func handle(_ request: Request, next: Next) async throws -> Outcome {
        log.append("in:\(label)")
        if label == "stop" { throw PipelineError.forbidden("stopped at \(label)") }
        var outcome = try await next(request)
        log.append("out:\(label)")
        outcome.seq = (outcome.seq ?? 0) + 1
        return outcome
    }
}

final class Log: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

@Suite("pipeline core")
struct PipelineTests {
    let org = OrgSettings(id: OrgID("clinic"), displayName: "Clinic", hipaa: false)
    let world = TestWorld()

    @Test func stagesRunInOrderAndUnwindInReverse() async throws {
        let log = Log()
        let pipeline = Pipeline(org: org, stages: ["a", "b", "c"].map { TraceStage(label: $0, log: log) })
        let outcome = try await pipeline.run(world.request(.rooms()))
        #expect(log.all == ["in:a", "in:b", "in:c", "out:c", "out:b", "out:a"])
        #expect(outcome.seq == 3)
        #expect(pipeline.stageNames == ["trace", "trace", "trace"])
    }

    @Test func aTimerHearsOfEveryStageThatRanEvenWhenOneThrows() async {
        final class Timings: StageTimer {
            let seen = Mutex<[String]>([])
            func recorder(org: OrgID, stage: String) -> @Sendable (Double) -> Void {
                { seconds in self.seen.withLock { $0.append("\(org):\(stage):\(seconds >= 0)") } }
            }
        }
        let timings = Timings()
        let pipeline = Pipeline(org: org, stages: ["a", "stop", "c"].map { TraceStage(label: $0, log: Log()) }, timer: timings)
        _ = try? await pipeline.run(world.request(.rooms()))
        // The inner stage returns (by throwing) first.
        #expect(timings.seen.withLock { $0 } == ["clinic:trace:true", "clinic:trace:true"])
    }

    @Test func aStageThatThrowsStopsTheChain() async {
        let log = Log()
        let pipeline = Pipeline(org: org, stages: ["a", "stop", "c"].map { TraceStage(label: $0, log: log) })
        await #expect(throws: PipelineError.forbidden("stopped at stop")) {
            try await pipeline.run(world.request(.rooms()))
        }
        #expect(log.all == ["in:a", "in:stop"])
    }

    @Test func addingAStageIsOneRegistration() throws {
        let registry = StageRegistry([TraceStage.self])
        let config = try registry.load("[org x]\nhipaa = off\nstage trace label=b\n", file: "t.conf")
        #expect(config.orgs[0].stages.map(\.name) == ["trace"])
        #expect(config.orgs[0].stages[0].configuration.summary == ["label=b"])
        #expect(throws: ConfigError.self) { try registry.load("[org x]\nhipaa = off\nstage trace label=z\n", file: "t.conf") }
    }

    @Test func sessionIdlePolicyExpiresOnIdleAndLifetime() {
        let start = Date(timeIntervalSince1970: 1000)
        var session = Session(token: "t", org: OrgID("x"), principal: .staff(user: "joy", role: .staff), createdAt: start)
        let policy = IdlePolicy(idleTimeout: .seconds(60), lifetime: .seconds(3600))
        #expect(policy.expiry(of: session, at: start.addingTimeInterval(59)) == nil)
        #expect(policy.expiry(of: session, at: start.addingTimeInterval(61)) == .idle)
        session.lastActionAt = start.addingTimeInterval(3590)
        #expect(policy.expiry(of: session, at: start.addingTimeInterval(3601)) == .lifetime)
    }

    @Test func visitorsOnlyReachTheirOwnRoom() {
        let visitor = Principal.visitor(ConversationID("c_1"))
        #expect(visitor.mayAccess(ConversationID("c_1")))
        #expect(!visitor.mayAccess(ConversationID("c_2")))
        #expect(Principal.staff(user: "joy", role: .staff).mayAccess(ConversationID("c_2")))
    }
}
