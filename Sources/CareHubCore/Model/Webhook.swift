import Foundation

/// What a webhook subscription may be told of.
public enum WebhookEventKind: String, Sendable, Hashable, CaseIterable {
    /// A visitor (or an integration) started a conversation.
    case conversationOpened = "conversation.opened"
    /// A conversation ended.
    case conversationEnded = "conversation.ended"
    /// A message (or a file) was committed to a conversation.
    case messageCreated = "message.created"
}

/// A subscription an integration made: the organisation's events it asked for go to `url`,
/// signed with a secret derived for the subscription (never stored).
public struct Webhook: Sendable, Hashable {
    /// The most subscriptions an organisation may hold.
    public static let limitPerOrg = 10

    /// `wh_` and 16 hex digits.
    public let id: String
    /// The organisation.
    public let org: OrgID
    /// The `integration NAME type=api` whose token created it.
    public let integration: String
    /// Where events go: `https://` only.
    public let url: String
    /// The events it receives.
    public let events: [WebhookEventKind]
    /// When it was created.
    public let createdAt: Date

    /// Creates a subscription record.
    public init(id: String, org: OrgID, integration: String, url: String, events: [WebhookEventKind], createdAt: Date) {
        self.id = id
        self.org = org
        self.integration = integration
        self.url = url
        self.events = events
        self.createdAt = createdAt
    }

    /// Whether `id` has the shape the hub gives: `wh_` and 16 lowercase hex digits.
    public static func isValidID(_ id: String) -> Bool {
        id.hasPrefix("wh_") && id.utf8.count == 19 && id.utf8.dropFirst(3).allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// Something that happened in a conversation, as a webhook is told of it: ids, a sequence number
/// and a time, never text, names or a form, in any organisation.
public struct WebhookEvent: Sendable, Hashable {
    /// What happened.
    public let kind: WebhookEventKind
    /// The organisation.
    public let org: OrgID
    /// The conversation.
    public let conversation: ConversationID
    /// The message's sequence number (`message.created` only).
    public let seq: UInt64?
    /// When it happened.
    public let at: Date

    /// Creates an event.
    public init(_ kind: WebhookEventKind, org: OrgID, conversation: ConversationID, seq: UInt64? = nil, at: Date) {
        self.kind = kind
        self.org = org
        self.conversation = conversation
        self.seq = seq
        self.at = at
    }

    /// The body POSTed: `{"event","org","conversation","seq"?, "at"}`.
    public var json: String {
        var w = JSONWriter()
        w.field("event", kind.rawValue)
        w.field("org", org.rawValue)
        w.field("conversation", conversation.rawValue)
        if let seq { w.field("seq", seq) }
        w.field("at", at.epochMilliseconds)
        return w.finish()
    }
}
