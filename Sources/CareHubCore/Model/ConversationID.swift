/// The identifier of a conversation. A conversation is also the room its messages are delivered in.
public struct ConversationID: Hashable, Sendable, CustomStringConvertible {
    /// The identifier text, e.g. `c_3f9a0c1d2b4e5f60`.
    public let rawValue: String

    /// Wraps an identifier.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }
}
