import CLibWebSockets
#if canImport(Glibc)
import Glibc
#endif

/// Sockets watched with epoll, for tools that hold many ``WebSocketClient``s (the benchmark): a
/// wait reports only the sockets that are readable, instead of scanning every one on each turn
/// as `poll` does.
public final class ReadinessSet {
    private let descriptor: Int32
    private var events: [epoll_event]

    /// `capacity`: the most sockets one wait reports (more stay ready for the next wait).
    public init(capacity: Int) throws {
        descriptor = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard descriptor >= 0 else { throw WebSocketClient.Failure(description: "epoll_create1(): \(String(cString: strerror(errno)))") }
        events = [epoll_event](repeating: epoll_event(), count: max(capacity, 1))
    }

    deinit { close(descriptor) }

    /// Watches `fd` for input; ``wait(milliseconds:_:)`` reports it as `tag`.
    public func add(_ fd: Int32, tag: Int) throws {
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64(tag)))
        guard epoll_ctl(descriptor, EPOLL_CTL_ADD, fd, &event) == 0 else {
            throw WebSocketClient.Failure(description: "epoll_ctl(): \(String(cString: strerror(errno)))")
        }
    }

    /// Stops watching `fd`.
    public func remove(_ fd: Int32) {
        _ = epoll_ctl(descriptor, EPOLL_CTL_DEL, fd, nil)
    }

    /// Waits up to `milliseconds` for input, then calls `body` with the tag of each readable
    /// socket; returns how many there were.
    @discardableResult
    public func wait(milliseconds: Int32, _ body: (Int) throws -> Void) rethrows -> Int {
        let ready = epoll_wait(descriptor, &events, Int32(events.count), milliseconds)
        guard ready > 0 else { return 0 }
        for event in events[..<Int(ready)] { try body(Int(event.data.u64)) }
        return Int(ready)
    }
}

/// Raises this process's open-file limit to its hard limit, for tools that hold thousands of
/// sockets (the benchmark, the transport's many-connections test); returns the limit now in force.
@discardableResult
public func raiseOpenFileLimit() -> rlim_t {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return limit.rlim_cur
}
