import Synchronization

/// The port holding live sessions.
///
/// Implementations must be safe to call from any task; `update` must apply its change atomically.
public protocol SessionStore: Sendable {
    /// Adds a session.
    func insert(_ session: Session)
    /// The session with this token, if it is still held.
    func session(_ token: String) -> Session?
    /// Changes a session in place and returns the result, or nil if it is gone.
    @discardableResult
    func update(_ token: String, _ change: @Sendable (inout Session) -> Void) -> Session?
    /// Removes a session and returns it.
    @discardableResult
    func remove(_ token: String) -> Session?
    /// Every session of `org`.
    func sessions(of org: OrgID) -> [Session]
}

/// Sessions kept in memory: a restart logs every staff member out, and visitors resume with their token.
public final class InMemorySessionStore: SessionStore {
    private let table = Mutex<[String: Session]>([:])

    /// Creates an empty store.
    public init() {}

    public func insert(_ session: Session) {
        table.withLock { $0[session.token] = session }
    }

    public func session(_ token: String) -> Session? {
        table.withLock { $0[token] }
    }

    @discardableResult
    public func update(_ token: String, _ change: @Sendable (inout Session) -> Void) -> Session? {
        table.withLock { sessions in
            guard var session = sessions[token] else { return nil }
            change(&session)
            sessions[token] = session
            return session
        }
    }

    @discardableResult
    public func remove(_ token: String) -> Session? {
        table.withLock { $0.removeValue(forKey: token) }
    }

    /// Every live session (for metrics).
    public var all: [Session] { table.withLock { Array($0.values) } }

    public func sessions(of org: OrgID) -> [Session] {
        table.withLock { $0.values.filter { $0.org == org } }
    }
}
