/// How much one organisation accepts from strangers: the `limits` line of its `[org …]` section.
///
/// Every limit is a count per window; a request over it is refused with `rate_limited` and
/// nothing is done. The defaults suit a clinic's front desk: a waiting room full of patients
/// behind one address still gets through, a script opening thousands of chats does not.
public struct OrgLimits: Sendable, Hashable {
    /// New conversations (visitor `hello` without a token) per minute, for the whole organisation.
    public var conversationsPerMinute: Int
    /// New conversations per minute from one client address.
    public var conversationsPerAddressPerMinute: Int
    /// Messages (`send`) per second in one conversation, sustained.
    public var messagesPerSecond: Int
    /// Messages one conversation may send at once before `messagesPerSecond` applies.
    public var messageBurst: Int

    /// The defaults: 120 new conversations a minute, 10 a minute from one address, 5 messages a
    /// second in a conversation with bursts of 20.
    public static let standard = OrgLimits(
        conversationsPerMinute: 120, conversationsPerAddressPerMinute: 10, messagesPerSecond: 5, messageBurst: 20)

    /// Creates limits.
    public init(conversationsPerMinute: Int, conversationsPerAddressPerMinute: Int, messagesPerSecond: Int, messageBurst: Int) {
        self.conversationsPerMinute = conversationsPerMinute
        self.conversationsPerAddressPerMinute = conversationsPerAddressPerMinute
        self.messagesPerSecond = messagesPerSecond
        self.messageBurst = messageBurst
    }
}
