import CareHubTransport
import Synchronization

/// The frames one request sends (deliveries to the room, then its reply), handed to the
/// transport together when the request is done: one wake-up of the service thread instead of one
/// per frame. Order is kept. A frame sent after the flush (from a task the request started) goes
/// out at once.
final class OutgoingBatch: Sendable {
    /// The batch of the request the current task is handling, if any.
    @TaskLocal static var current: OutgoingBatch?

    private struct State {
        var frames: [(text: String, handle: ConnectionHandle)] = []
        var open = true
    }
    private let state = Mutex(State())

    /// Adds a frame; false once the batch was flushed (send it directly).
    func add(_ text: String, to handle: ConnectionHandle) -> Bool {
        state.withLock { state in
            guard state.open else { return false }
            state.frames.append((text, handle))
            return true
        }
    }

    /// Closes the batch and returns its frames, in order.
    func flush() -> [(text: String, handle: ConnectionHandle)] {
        state.withLock { state in
            state.open = false
            defer { state.frames = [] }
            return state.frames
        }
    }
}
