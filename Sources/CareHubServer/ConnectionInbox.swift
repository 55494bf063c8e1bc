import Synchronization

/// One connection's incoming frames, handled strictly in order by at most one task at a time.
///
/// A task runs only while frames are waiting, and a burst is handled by one task. An idle
/// connection holds no task: a Swift task keeps the memory of its deepest call chain for as long
/// as it lives, which a task per connection would hold for every quiet visitor.
final class ConnectionInbox: Sendable {
    /// What the transport hands over.
    enum Item: Sendable {
        case text([UInt8])
        case binary
        case oversized(Int)
    }

    private enum Step {
        case handle(Item)
        case finish
        case rest
    }

    private struct State {
        var queue: [Item] = []
        var running = false
        var closed = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let handler: @Sendable (Item) async -> Void
    private let finisher: @Sendable () -> Void

    /// `handler` runs for each frame in order; `finisher` once, after the last frame, when closed.
    init(handler: @escaping @Sendable (Item) async -> Void, finisher: @escaping @Sendable () -> Void) {
        self.handler = handler
        self.finisher = finisher
    }

    /// Queues a frame (ignored once closed).
    func push(_ item: Item) {
        let start = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.queue.append(item)
            return Self.claim(&state)
        }
        if start { Task { await drain() } }
    }

    /// No more frames: those queued are still handled, then the finisher runs.
    func close() {
        let start = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.closed = true
            return Self.claim(&state)
        }
        if start { Task { await drain() } }
    }

    /// Returns once the finisher has run.
    func finished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if !state.finished { state.waiters.append(continuation) }
                return state.finished
            }
            if done { continuation.resume() }
        }
    }

    private static func claim(_ state: inout State) -> Bool {
        guard !state.running else { return false }
        state.running = true
        return true
    }

    private func drain() async {
        while true {
            let step = state.withLock { state -> Step in
                if !state.queue.isEmpty { return .handle(state.queue.removeFirst()) }
                state.running = false
                guard state.closed && !state.finished else { return .rest }
                state.finished = true
                return .finish
            }
            switch step {
            case .handle(let item):
                await handler(item)
            case .finish:
                finisher()
                for waiter in state.withLock({ state in defer { state.waiters = [] }; return state.waiters }) { waiter.resume() }
                return
            case .rest:
                return
            }
        }
    }
}
