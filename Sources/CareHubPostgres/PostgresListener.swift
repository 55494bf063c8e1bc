import Foundation
import Synchronization

/// Receives PostgreSQL notifications on a connection and a thread of its own: `LISTEN` on its
/// channels, then waits on the socket with poll() and hands each notification to its handler as
/// it arrives.
///
/// When the connection is lost the listener reconnects (waiting 0.1 s, doubling to 5 s, between
/// attempts) and issues `LISTEN` again. Notifications are not stored by PostgreSQL: those sent
/// while the listener was disconnected are lost, so `onReconnect` is called after every
/// reconnection for the owner to catch up from the tables.
///
/// ```swift
/// let (listener, notifications) = try PostgresListener.stream(configuration: configuration, channels: ["room_events"])
/// await listener.untilListening()
/// for await notification in notifications { … }
/// ```
///
/// Call ``close()`` when done: the thread runs until then.
public final class PostgresListener: Sendable {
    private struct State {
        var channels: Set<String>
        var listening = false
        var stopped = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let configuration: PostgresConfiguration
    private let state: Mutex<State>
    private let handler: @Sendable (PostgresNotification) -> Void
    private let onReconnect: (@Sendable () -> Void)?
    private let onClose: (@Sendable () -> Void)?
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let done = DispatchGroup()

    /// Starts listening on `channels`; `handler` is called on the listener's thread for each
    /// notification, in the order they arrive, and should return quickly.
    /// - Throws: ``PostgresError/invalidURL(_:)``; a database that cannot be reached is not an
    ///   error here: the listener keeps trying.
    public convenience init(
        configuration: PostgresConfiguration, channels: [String], onReconnect: (@Sendable () -> Void)? = nil,
        handler: @escaping @Sendable (PostgresNotification) -> Void
    ) throws {
        try self.init(configuration: configuration, channels: channels, onReconnect: onReconnect, onClose: nil, handler: handler)
    }

    private init(
        configuration: PostgresConfiguration, channels: [String], onReconnect: (@Sendable () -> Void)?,
        onClose: (@Sendable () -> Void)?, handler: @escaping @Sendable (PostgresNotification) -> Void
    ) throws {
        try configuration.validate()
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else { throw PostgresError.connection("cannot create the listener's wake-up pipe") }
        _ = fcntl(descriptors[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(descriptors[1], F_SETFL, O_NONBLOCK)
        self.wakeRead = descriptors[0]
        self.wakeWrite = descriptors[1]
        self.configuration = configuration
        self.state = Mutex(State(channels: Set(channels)))
        self.handler = handler
        self.onReconnect = onReconnect
        self.onClose = onClose
        done.enter()
        let thread = Thread { [self] in
            run()
            done.leave()
        }
        thread.name = "postgres-listener"
        thread.start()
    }

    /// A listener whose notifications arrive on an `AsyncStream`. The stream buffers at most
    /// `bufferLimit` notifications a consumer has not taken yet and drops the oldest beyond
    /// that; it finishes when the listener is closed.
    public static func stream(
        configuration: PostgresConfiguration, channels: [String], bufferLimit: Int = 1024, onReconnect: (@Sendable () -> Void)? = nil
    ) throws -> (listener: PostgresListener, notifications: AsyncStream<PostgresNotification>) {
        let (stream, continuation) = AsyncStream<PostgresNotification>.makeStream(bufferingPolicy: .bufferingNewest(max(1, bufferLimit)))
        let listener = try PostgresListener(
            configuration: configuration, channels: channels, onReconnect: onReconnect,
            onClose: { continuation.finish() }, handler: { continuation.yield($0) })
        return (listener, stream)
    }

    deinit {
        closeDescriptor(wakeRead)
        closeDescriptor(wakeWrite)
    }

    /// Adds a channel; the listener issues `LISTEN` for it promptly.
    public func listen(_ channel: String) {
        state.withLock {
            if $0.channels.insert(channel).inserted { $0.listening = false }
        }
        wake()
    }

    /// Removes a channel; the listener issues `UNLISTEN` for it promptly.
    public func unlisten(_ channel: String) {
        state.withLock { _ = $0.channels.remove(channel) }
        wake()
    }

    /// Returns once every channel is listened to on a live connection (at once if it already
    /// is), or when the listener is closed. Notifications sent before that may be missed.
    public func untilListening() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.listening || state.stopped { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Stops listening, closes the connection and waits for the thread to end.
    public func close() async {
        state.withLock { $0.stopped = true }
        wake()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            done.notify(queue: .global()) { continuation.resume() }
        }
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func drainWakeups() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    /// Waits until the socket is readable or someone wakes the listener; -1 waits only for a wake-up.
    private func wait(socket: Int32, milliseconds: Int32) -> (readable: Bool, woken: Bool) {
        var descriptors = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0), pollfd(fd: socket, events: Int16(POLLIN), revents: 0)]
        let count = poll(&descriptors, socket >= 0 ? 2 : 1, milliseconds)
        guard count > 0 else { return (false, false) }
        let woken = descriptors[0].revents != 0
        if woken { drainWakeups() }
        return (socket >= 0 && descriptors[1].revents != 0, woken)
    }

    private func run() {
        let connection = PostgresConnection(configuration: configuration, keepsNotifications: true)
        var listened: Set<String> = []
        var generation = 0
        var delay: Int32 = 100
        while !state.withLock({ $0.stopped }) {
            do {
                try connection.ensureConnected()
                if connection.generation != generation {
                    if generation != 0 { onReconnect?() }
                    generation = connection.generation
                    listened = []
                }
                let wanted = state.withLock { $0.channels }
                for channel in wanted.subtracting(listened) {
                    try connection.executeScript("LISTEN \(try connection.quoteIdentifier(channel))")
                    listened.insert(channel)
                }
                for channel in listened.subtracting(wanted) {
                    try connection.executeScript("UNLISTEN \(try connection.quoteIdentifier(channel))")
                    listened.remove(channel)
                }
                markListening(listened)
                delay = 100
                deliver(connection.notifications())
                let (readable, _) = wait(socket: connection.socket, milliseconds: -1)
                if readable {
                    guard connection.consumeInput() else {
                        connection.close()
                        continue
                    }
                    deliver(connection.notifications())
                }
            } catch {
                connection.close()
                state.withLock { $0.listening = false }
                _ = wait(socket: -1, milliseconds: delay)
                delay = min(delay * 2, 5000)
            }
        }
        connection.close()
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
        onClose?()
    }

    private func markListening(_ listened: Set<String>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.channels == listened else { return [] }
            state.listening = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    private func deliver(_ notifications: [PostgresNotification]) {
        for notification in notifications { handler(notification) }
    }
}

private func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}
