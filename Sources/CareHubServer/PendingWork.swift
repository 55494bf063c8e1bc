import Synchronization

/// Work the hub starts from a place that cannot wait for it (a transport callback, a reload),
/// kept so that shutdown waits for it before the database closes: an audit row recorded as a
/// connection closes is not lost with the process.
final class PendingWork: Sendable {
    private struct State {
        var tasks: [UInt64: Task<Void, Never>] = [:]
        var next: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Starts `work` and keeps it until it finishes.
    func start(_ work: @escaping @Sendable () async -> Void) {
        state.withLock { state in
            let key = state.next
            state.next += 1
            state.tasks[key] = Task { [self] in
                await work()
                _ = self.state.withLock { $0.tasks.removeValue(forKey: key) }
            }
        }
    }

    /// Waits until every task started so far, and any they started, has finished.
    func drain() async {
        while let running = state.withLock({ $0.tasks.values.first }) {
            await running.value
        }
    }
}
