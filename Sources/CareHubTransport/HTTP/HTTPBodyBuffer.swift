import Synchronization

/// The chunks of one streamed request body between the service thread, which appends what it
/// reads, and the handler's task, which takes them through ``HTTPBodyStream``.
///
/// It is bounded by back-pressure rather than by refusal: ``append(_:)`` says when the buffer
/// has passed ``pauseBytes`` (the service thread then stops reading the socket), and a
/// ``take()`` that brings it back under ``resumeBytes`` calls `resume` once (which asks the
/// service thread to read again).
final class HTTPBodyBuffer: Sendable {
    /// Bytes held for a handler that is not reading, past which its socket is not read.
    static let pauseBytes = 256 * 1024
    /// Bytes held, under which a paused socket is read again.
    static let resumeBytes = 64 * 1024

    private struct State {
        var chunks = FIFO<[UInt8]>()
        var bytes = 0
        var paused = false
        /// Set once the body is complete (nil) or has ended short (the error).
        var end: HTTPBodyError??
        var waiter: CheckedContinuation<Result<[UInt8]?, HTTPBodyError>, Never>?
    }

    private let state = Mutex(State())
    private let metrics: HTTPBodyMetrics
    private let resume: @Sendable () -> Void

    init(metrics: HTTPBodyMetrics, resume: @escaping @Sendable () -> Void) {
        self.metrics = metrics
        self.resume = resume
    }

    // MARK: Service thread

    /// Adds a chunk read from the socket; true when the buffer has just passed ``pauseBytes``
    /// and reading should pause.
    func append(_ chunk: [UInt8]) -> Bool {
        guard !chunk.isEmpty else { return false }
        let (waiter, pause) = state.withLock { state -> (CheckedContinuation<Result<[UInt8]?, HTTPBodyError>, Never>?, Bool) in
            guard state.end == nil else { return (nil, false) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, false)
            }
            state.chunks.append(chunk)
            state.bytes += chunk.count
            metrics.added(chunk.count)
            guard state.bytes > Self.pauseBytes, !state.paused else { return (nil, false) }
            state.paused = true
            return (nil, true)
        }
        waiter?.resume(returning: .success(chunk))
        return pause
    }

    /// Ends the body: complete with nil, short with an error (after the chunks already held).
    func finish(_ error: HTTPBodyError?) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<[UInt8]?, HTTPBodyError>, Never>? in
            guard state.end == nil else { return nil }
            state.end = .some(error)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: error.map { .failure($0) } ?? .success(nil))
    }

    /// Ends the body short and drops what is held (the handler has answered without reading it).
    func abandon() {
        finish(.disconnected)
        let dropped = state.withLock { state -> Int in
            defer {
                state.chunks.removeAll()
                state.bytes = 0
            }
            return state.bytes
        }
        metrics.taken(dropped)
    }

    // MARK: Handler's task

    /// The next chunk, nil at the end of the body, or why it ended short; waits for one to arrive.
    func take() async -> Result<[UInt8]?, HTTPBodyError> {
        await withCheckedContinuation { continuation in
            let (taken, resumes) = state.withLock { state -> (Result<[UInt8]?, HTTPBodyError>?, Bool) in
                if !state.chunks.isEmpty {
                    let chunk = state.chunks.removeFirst()
                    state.bytes -= chunk.count
                    metrics.taken(chunk.count)
                    let resumes = state.paused && state.bytes < Self.resumeBytes
                    if resumes { state.paused = false }
                    return (.success(chunk), resumes)
                }
                if let end = state.end { return (end.map { .failure($0) } ?? .success(nil), false) }
                state.waiter = continuation
                return (nil, false)
            }
            if resumes { resume() }
            if let taken { continuation.resume(returning: taken) }
        }
    }
}

/// Bytes of streamed request bodies held for handlers, over one server (for tests and metrics).
final class HTTPBodyMetrics: Sendable {
    /// Bytes read from clients and not yet taken by their handlers.
    let buffered = Atomic<Int>(0)
    /// The most ``buffered`` has been.
    let peak = Atomic<Int>(0)
    /// Times a socket stopped being read because its handler was behind.
    let pauses = Atomic<Int>(0)

    func added(_ count: Int) {
        let now = buffered.add(count, ordering: .relaxed).newValue
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
    }

    func taken(_ count: Int) { buffered.subtract(count, ordering: .relaxed) }
}
