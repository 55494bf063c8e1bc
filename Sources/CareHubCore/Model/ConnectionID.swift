/// Identifies one client connection to the hub for the lifetime of the process.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    /// The transport's number for the connection; never reused.
    public let rawValue: UInt64

    /// Wraps a transport connection number.
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    public var description: String { "conn-\(rawValue)" }
}
