import Foundation
import Synchronization

/// Threads of the client's own, each owning one ``PostgresConnection``, that take jobs from one
/// bounded queue. libpq blocks, so its calls never run on Swift's cooperative pool.
///
/// A thread opens its connection on its first job (so a client can be made while PostgreSQL is
/// down), replaces a broken one on the next job, and closes it when the workers shut down.
final class ConnectionWorkers: Sendable {
    private typealias Job = @Sendable (PostgresConnection) -> Void

    private struct State {
        var jobs: [Job] = []
        var head = 0
        var stopped = false
    }

    private let state = Mutex(State())
    private let ready = DispatchSemaphore(value: 0)
    private let queueLimit: Int
    private let threads: Int
    private let done = DispatchGroup()

    /// Starts `threads` threads named `name-0`, `name-1`, …
    init(name: String, threads: Int, queueLimit: Int, configuration: PostgresConfiguration) {
        self.queueLimit = max(1, queueLimit)
        self.threads = max(1, threads)
        for index in 0..<self.threads {
            done.enter()
            let thread = Thread { [self] in
                let connection = PostgresConnection(configuration: configuration)
                work(connection)
                connection.close()
                done.leave()
            }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Runs `job` with a connection on one of the threads and returns its result.
    func run<T: Sendable>(_ job: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let refusal = state.withLock { state -> PostgresError? in
                if state.stopped { return .closed }
                guard state.jobs.count - state.head < queueLimit else { return .poolExhausted(queueLimit) }
                state.jobs.append { connection in continuation.resume(with: Result { try job(connection) }) }
                return nil
            }
            if let refusal { continuation.resume(throwing: refusal) } else { ready.signal() }
        }
    }

    /// Runs the jobs already queued, then closes the connections and ends the threads.
    func shutdown() async {
        let first = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        if first { for _ in 0..<threads { ready.signal() } }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            done.notify(queue: .global()) { continuation.resume() }
        }
    }

    private func work(_ connection: PostgresConnection) {
        while true {
            ready.wait()
            let job = state.withLock { state -> Job? in
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
                job(connection)
                continue
            }
            if state.withLock({ $0.stopped }) { return }
        }
    }
}
