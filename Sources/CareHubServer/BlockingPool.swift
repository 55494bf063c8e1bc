import CareHubCore
import CareHubTransport
import Foundation
import Synchronization

/// A few threads of its own for work that blocks a CPU for a long time (scrypt), so that it never
/// occupies Swift's cooperative pool, which carries every message.
///
/// The queue is bounded: when `queueLimit` jobs already wait, ``run(_:)`` throws ``Full`` at
/// once instead of queueing, and the caller refuses its request (`rate_limited`).
final class BlockingPool: Sendable {
    /// The queue was full; nothing was run.
    struct Full: Error {}

    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var head = 0
        var stopped = false
    }

    private let state = Mutex(State())
    private let ready = DispatchSemaphore(value: 0)
    private let queueLimit: Int
    private let threads: Int
    private let done = DispatchGroup()

    /// Starts `threads` threads named `name`; at most `queueLimit` jobs wait.
    init(name: String, threads: Int, queueLimit: Int) {
        self.queueLimit = queueLimit
        self.threads = max(1, threads)
        for index in 0..<self.threads {
            done.enter()
            let threadName = "\(name)-\(index)"
            let thread = Thread { [self] in
                // The kernel's copy of the name is what `top -H` and profilers show.
                nameCurrentThread(threadName)
                work()
                done.leave()
            }
            thread.name = threadName
            thread.start()
        }
    }

    /// Jobs waiting for a thread.
    var waiting: Int { state.withLock { $0.jobs.count - $0.head } }

    /// Runs `job` on one of the pool's threads and returns its result.
    func run<T: Sendable>(_ job: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let queued = state.withLock { state -> Bool in
                guard !state.stopped, state.jobs.count - state.head < queueLimit else { return false }
                state.jobs.append { continuation.resume(with: Result { try job() }) }
                return true
            }
            if queued { ready.signal() } else { continuation.resume(throwing: Full()) }
        }
    }

    /// Runs the jobs already queued, then stops the threads and waits for them.
    func shutdown() {
        let first = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        for _ in 0..<threads { ready.signal() }
        done.wait()
    }

    private func work() {
        while true {
            ready.wait()
            let job = state.withLock { state -> (@Sendable () -> Void)? in
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head > 64 && state.head * 2 > state.jobs.count {
                    state.jobs.removeFirst(state.head)
                    state.head = 0
                }
                return job
            }
            if let job {
                job()
                continue
            }
            if state.withLock({ $0.stopped }) { return }
        }
    }
}
