import CLibWebSockets
import Foundation
import Synchronization

/// One libwebsockets context served on its own thread, with a queue of commands from other threads.
///
/// Everything lws does happens on the thread inside `lws_service`; other threads hand it work
/// with ``enqueue(_:)``, which wakes it with `lws_cancel_service` (the one lws call safe off that
/// thread). The owner drains the queue from its `LWS_CALLBACK_EVENT_WAIT_CANCELLED` callback.
/// Used by the server (``ServiceLoop``) and the HTTP client.
///
/// The context runs on a libev loop over epoll rather than lws's own `poll` loop: each wake-up
/// then costs what is ready, not a scan of every open socket (with a hundred busy sockets the scan
/// was three quarters of the relay's CPU; with 10,000 quiet ones open it made a busy hub's p50
/// twenty times slower; docs/PERFORMANCE.md).
final class ServiceThread<Command: Sendable>: @unchecked Sendable {
    /// The event loop a context is created on; `create` passes it to ``configure(_:)``.
    struct EventLoop {
        fileprivate let loop: UnsafeMutableRawPointer
        fileprivate let loops: UnsafeMutablePointer<UnsafeMutableRawPointer?>

        /// Makes `info` create the context on this loop.
        func configure(_ info: inout lws_context_creation_info) {
            info.options |= UInt64(LWS_SERVER_OPTION_LIBEV)
            info.foreign_loops = loops
        }
    }

    /// The context pointer, passed between threads only to call `lws_cancel_service`.
    private struct ContextPointer: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private struct Shared {
        var queue: [Command] = []
        var context: ContextPointer?
        var stopping = false
    }

    /// The loop `lws_service` runs (service thread only).
    private var eventLoop: EventLoop?

    private let shared = Mutex(Shared())
    /// The service thread's `pthread_t` once it runs (0 before), for ``isCurrent``.
    private let threadID = Atomic<UInt>(0)
    /// Enqueuers that took the context under the lock and are calling `lws_cancel_service` on it
    /// outside it; the thread destroys the context only once none is left.
    private let signalling = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts a thread named `name` that creates the context with `create` and services it until
    /// ``stop()``; waits until the context exists and returns what `create` returned with it, or
    /// throws what it threw. After the context is destroyed, `teardown` runs on that thread with
    /// the commands that were never drained. With `wakeEvery`, the thread is also woken that often
    /// (`lws_cancel_service`), so that lws runs the connection timeouts that have fallen due even
    /// while no socket is ready (see `carehub_wake_every` in the C shim).
    func start<Value: Sendable>(
        name: String, wakeEvery: Double? = nil, create: @escaping @Sendable (EventLoop) throws -> (OpaquePointer, Value),
        teardown: @escaping @Sendable ([Command]) -> Void
    ) throws -> Value {
        let result = Mutex<Result<Value, any Error>?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            // Foundation keeps the name to itself on Linux; the kernel's copy is what `top -H`,
            // `ps -L` and profilers show.
            carehub_name_thread(name)
            threadID.store(UInt(pthread_self()), ordering: .releasing)
            guard let loop = carehub_event_loop_new() else {
                result.withLock { $0 = .failure(TransportError.cannotListen("cannot create an epoll event loop")) }
                ready.signal()
                finished.signal()
                return
            }
            let loops = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
            loops.initialize(to: loop)
            let eventLoop = EventLoop(loop: loop, loops: loops)
            self.eventLoop = eventLoop
            defer {
                self.eventLoop = nil
                carehub_event_loop_destroy(loop)
                loops.deallocate()
            }
            let context: OpaquePointer
            do {
                let (created, value) = try create(eventLoop)
                context = created
                shared.withLock { $0.context = ContextPointer(pointer: created) }
                result.withLock { $0 = .success(value) }
                ready.signal()
            } catch {
                result.withLock { $0 = .failure(error) }
                ready.signal()
                finished.signal()
                return
            }
            let waker = wakeEvery.flatMap { carehub_wake_every(loop, $0, context) }
            // On an event loop, `lws_service` runs until ``drain()`` breaks the loop for a stop.
            while !shared.withLock({ $0.stopping }) {
                if lws_service(context, 0) < 0 { break }
            }
            carehub_wake_stop(loop, waker)
            let leftover = shared.withLock { shared -> [Command] in
                shared.context = nil
                defer { shared.queue = [] }
                return shared.queue
            }
            while signalling.load(ordering: .acquiring) > 0 { sched_yield() }
            lws_context_destroy(context)
            teardown(leftover)
            finished.signal()
        }
        thread.name = name
        thread.start()
        ready.wait()
        return try result.withLock { $0! }.get()
    }

    /// True when called on the service thread (from one of the context's callbacks).
    var isCurrent: Bool {
        let id = threadID.load(ordering: .acquiring)
        return id != 0 && pthread_equal(pthread_self(), pthread_t(id)) != 0
    }

    /// Queues a command for the service thread; false if the context is not running. Only the
    /// command that finds the queue empty wakes the thread: it drains the whole queue when it runs.
    func enqueue(_ command: Command) -> Bool {
        enqueue(contentsOf: CollectionOfOne(command))
    }

    /// Queues `commands` in order, waking the thread once.
    ///
    /// The wake-up (a write the service thread's `epoll` sees) is made after the lock is released:
    /// made under it, the service thread woke only to wait for the lock while the enqueuer was
    /// still inside the system call.
    func enqueue(contentsOf commands: some Collection<Command>) -> Bool {
        let (accepted, wake) = shared.withLock { shared -> (Bool, ContextPointer?) in
            guard let context = shared.context else { return (false, nil) }
            let wasEmpty = shared.queue.isEmpty
            shared.queue.append(contentsOf: commands)
            guard wasEmpty && !commands.isEmpty else { return (true, nil) }
            signalling.add(1, ordering: .relaxed)
            return (true, context)
        }
        if let wake {
            lws_cancel_service(wake.pointer)
            signalling.subtract(1, ordering: .releasing)
        }
        return accepted
    }

    /// The queued commands, in order (service thread, from `LWS_CALLBACK_EVENT_WAIT_CANCELLED`).
    /// After ``stop()`` it also ends the loop, so that the thread can destroy the context.
    func drain() -> [Command] {
        // A swap under the lock, no copy or allocation: enqueuers on other threads wait for it.
        var commands: [Command] = []
        let stopping = shared.withLock { shared in
            swap(&commands, &shared.queue)
            return shared.stopping
        }
        if stopping, let eventLoop { carehub_event_loop_break(eventLoop.loop) }
        return commands
    }

    /// Stops servicing and destroys the context; waits for the thread to finish (idempotent).
    func stop() {
        let running = shared.withLock { shared -> Bool in
            let running = shared.context != nil && !shared.stopping
            shared.stopping = true
            if let context = shared.context { lws_cancel_service(context.pointer) }
            return running
        }
        if running { finished.wait() }
    }
}
