import Synchronization

/// One connection's incoming frames, handled strictly in order by at most one task at a time.
///
/// A task runs only while frames are waiting, and a burst is handled by one task. An idle
/// connection holds no task: a Swift task keeps the memory of its deepest call chain for as long
/// as it lives, which a task per connection would hold for every quiet visitor.
///
/// The inbox is bounded by ``InboxLimits``: the frame that fills it calls `flow(false)` (the hub
/// then pauses reading the connection), and the frame whose handling brings it down to the
/// resume marks calls `flow(true)`. Nothing is dropped. `flow` is called under the inbox's lock,
/// so that a pause and the resume after it reach the transport in that order; it must be quick
/// and must not call back into the inbox.
final class ConnectionInbox: Sendable {
    /// What the transport hands over.
    enum Item: Sendable {
        case text([UInt8])
        case binary
        case oversized(Int)

        /// The bytes the item holds while it waits.
        var byteCount: Int {
            if case .text(let bytes) = self { bytes.count } else { 0 }
        }
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
        var bound: Bound
    }

    /// The inbox's fill against its limits: when reading must pause and resume.
    struct Bound {
        let limits: InboxLimits
        private(set) var frames = 0
        private(set) var bytes = 0
        private(set) var paused = false
        /// The most frames and bytes that ever waited at once.
        private(set) var highWaterFrames = 0
        private(set) var highWaterBytes = 0

        init(limits: InboxLimits) { self.limits = limits }

        /// A frame arrived; true if reading must pause now.
        mutating func added(_ item: Item) -> Bool {
            frames += 1
            bytes += item.byteCount
            highWaterFrames = max(highWaterFrames, frames)
            highWaterBytes = max(highWaterBytes, bytes)
            guard !paused, frames >= limits.maxFrames || bytes >= limits.maxBytes else { return false }
            paused = true
            return true
        }

        /// A frame was taken for handling; true if reading must resume now.
        mutating func removed(_ item: Item) -> Bool {
            frames -= 1
            bytes -= item.byteCount
            guard paused, frames <= limits.resumeFrames, bytes <= limits.resumeBytes else { return false }
            paused = false
            return true
        }
    }

    private let state: Mutex<State>
    private let handler: @Sendable (Item) async -> Void
    private let finisher: @Sendable () -> Void
    private let flow: @Sendable (_ receiving: Bool) -> Void

    /// `handler` runs for each frame in order; `finisher` once, after the last frame, when closed;
    /// `flow` when reading the connection must pause (false) or may resume (true).
    init(
        limits: InboxLimits = .standard, handler: @escaping @Sendable (Item) async -> Void, finisher: @escaping @Sendable () -> Void,
        flow: @escaping @Sendable (_ receiving: Bool) -> Void = { _ in }
    ) {
        state = Mutex(State(bound: Bound(limits: limits)))
        self.handler = handler
        self.finisher = finisher
        self.flow = flow
    }

    /// Frames waiting to be handled (not counting the one being handled).
    var depth: Int { state.withLock { $0.bound.frames } }

    /// The most frames that ever waited at once.
    var highWaterFrames: Int { state.withLock { $0.bound.highWaterFrames } }

    /// The most bytes that ever waited at once.
    var highWaterBytes: Int { state.withLock { $0.bound.highWaterBytes } }

    /// True while the inbox has asked for reading to pause.
    var isPaused: Bool { state.withLock { $0.bound.paused } }

    /// Queues a frame (ignored once closed).
    func push(_ item: Item) {
        let start = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.queue.append(item)
            if state.bound.added(item) { flow(false) }
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
                if !state.queue.isEmpty {
                    let item = state.queue.removeFirst()
                    if state.bound.removed(item) { flow(true) }
                    return .handle(item)
                }
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
