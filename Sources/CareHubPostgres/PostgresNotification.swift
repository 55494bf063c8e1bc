/// A notification sent with `NOTIFY` or `pg_notify` and received by a ``PostgresListener``.
public struct PostgresNotification: Sendable, Hashable {
    /// The channel it was sent on.
    public let channel: String
    /// Its payload (empty when none was given).
    public let payload: String
    /// The server process id of the sending session.
    public let processID: Int32

    /// A notification; the listener makes these, tests may too.
    public init(channel: String, payload: String, processID: Int32) {
        self.channel = channel
        self.payload = payload
        self.processID = processID
    }
}
