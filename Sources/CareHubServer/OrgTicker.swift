import CareHubCore
import Foundation
import Logging
import Synchronization

/// The once-a-second time-driven work of every organisation's pipeline (idle expiry, purges,
/// presence), each organisation in its own task: one organisation's slow tick (a dead export
/// sink) never delays another's idle expiry. An organisation whose previous tick is still running
/// skips a round rather than stacking ticks; one running longer than ``timeLimit`` is cancelled
/// and logged.
final class OrgTicker: Sendable {
    /// The longest an organisation's tick may run before it is cancelled.
    static let timeLimit: Duration = .seconds(60)

    private struct State {
        var loop: Task<Void, Never>?
        var running: [OrgID: (task: Task<Void, Never>, started: ContinuousClock.Instant)] = [:]
    }

    private let pipelines: @Sendable () -> [Pipeline]
    private let logger: Logger
    private let state = Mutex(State())

    private let clock: any WallClock

    init(pipelines: @escaping @Sendable () -> [Pipeline], clock: any WallClock = SystemClock(), logger: Logger) {
        self.clock = clock
        self.pipelines = pipelines
        self.logger = logger
    }

    /// Starts the rounds.
    func start() {
        let loop = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                guard !Task.isCancelled else { break }
                round(at: clock.now)
            }
        }
        state.withLock { $0.loop = loop }
    }

    /// Starts the tick of every organisation whose previous one has finished; returns the ticks started.
    @discardableResult
    func round(at now: Date) -> [Task<Void, Never>] {
        var started: [Task<Void, Never>] = []
        let elapsed = ContinuousClock()
        for pipeline in pipelines() {
            let org = pipeline.org.id
            state.withLock { state in
                if let running = state.running[org] {
                    guard elapsed.now - running.started > Self.timeLimit else { return }
                    running.task.cancel()
                    logger.error("an organisation's background work ran too long and was cancelled", metadata: ["org.id": "\(org)"])
                }
                let task = Task { [self] in
                    await pipeline.tick(at: now)
                    finished(org)
                }
                state.running[org] = (task, elapsed.now)
                started.append(task)
            }
        }
        return started
    }

    private func finished(_ org: OrgID) {
        state.withLock { _ = $0.running.removeValue(forKey: org) }
    }

    /// Stops the rounds and waits for the ticks under way to finish; those still running after
    /// `timeout` are cancelled and logged.
    func stop(timeout: Duration = .seconds(10)) async {
        let loop = state.withLock { state in
            defer { state.loop = nil }
            return state.loop
        }
        loop?.cancel()
        await loop?.value
        let deadline = ContinuousClock.now + timeout
        while state.withLock({ !$0.running.isEmpty }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = state.withLock { $0.running }
        guard !left.isEmpty else { return }
        for running in left.values { running.task.cancel() }
        logger.warning("background work still running at shutdown was cancelled", metadata: ["orgs": "\(left.keys.map(\.rawValue).sorted())"])
    }
}
