import Foundation

/// An HTTP API call (`/api/v1/…`) that no WebSocket frame already stands for. Calls that one does
/// (ending a conversation, assigning it, the admin API's user and audit operations, downloading
/// an attachment, a message) go through the pipeline as that frame, so the same stages do their
/// part for both.
public enum APICall: Sendable, Hashable {
    /// The organisation: its name, mode and opening hours.
    case organisation
    /// Queue figures: waiting visitors, the longest wait, staff available.
    case queue
    /// A page of the organisation's conversations, newest first.
    case conversations(ConversationFilter, limit: Int)
    /// One conversation's state.
    case conversation(ConversationID)
    /// A page of a conversation's messages after `after` (exclusive), oldest first.
    case messages(ConversationID, after: UInt64, limit: Int)
    /// A conversation's whole transcript.
    case transcript(ConversationID)
    /// The visitor's pre-chat form.
    case form(ConversationID)
    /// Opens a conversation to a patient with a first message: the answer carries the token the
    /// patient's widget resumes it with.
    case open(text: String)
    /// The organisation's audit events from `after` (an event id, exclusive), oldest first, as
    /// JSON Lines.
    case auditExport(after: Int64)
    /// The organisation's webhook subscriptions.
    case webhooks
    /// Subscribes `url` (https only) to `events` for the calling integration.
    case createWebhook(url: String, events: [WebhookEventKind])
    /// Removes a webhook subscription.
    case deleteWebhook(id: String)

    /// Whether the call is one of the webhook subscription calls.
    public var isWebhookCall: Bool {
        switch self {
        case .webhooks, .createWebhook, .deleteWebhook: true
        default: false
        }
    }

    /// The room the call addresses, if any: the auth stage checks it as it checks a frame's.
    public var room: ConversationID? {
        switch self {
        case .conversation(let room), .messages(let room, _, _), .transcript(let room), .form(let room): room
        case .organisation, .queue, .conversations, .open, .auditExport, .webhooks, .createWebhook, .deleteWebhook: nil
        }
    }
}

/// Which conversations a listing shows, and where the page starts.
public struct ConversationFilter: Sendable, Hashable {
    /// Open or ended conversations, or both (nil).
    public var ended: Bool?
    /// Only those assigned to this staff member.
    public var assignedTo: String?
    /// Only those started before this one (the previous page's last), newest first.
    public var before: ConversationCursor?

    /// Creates a filter.
    public init(ended: Bool? = nil, assignedTo: String? = nil, before: ConversationCursor? = nil) {
        self.ended = ended
        self.assignedTo = assignedTo
        self.before = before
    }
}

/// A place in the newest-first list of conversations: a start time and, for ties, the id.
public struct ConversationCursor: Sendable, Hashable {
    public let startedAt: Date
    public let id: ConversationID

    public init(startedAt: Date, id: ConversationID) {
        self.startedAt = startedAt
        self.id = id
    }

    /// Opaque text for a client: the start time exactly as stored, and the id.
    public var text: String { "\(startedAt.timeIntervalSince1970)~\(id.rawValue)" }

    /// A cursor from ``text``, or nil.
    public init?(text: String) {
        let parts = text.split(separator: "~", maxSplits: 1)
        guard parts.count == 2, parts[0].utf8.count <= 32, let seconds = Double(parts[0]), seconds.isFinite, seconds >= 0,
              !parts[1].isEmpty, parts[1].utf8.count <= 64, parts[1].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else { return nil }
        self.init(startedAt: Date(timeIntervalSince1970: seconds), id: ConversationID(String(parts[1])))
    }
}

extension APIScope {
    /// The scope an integration token needs for `frame`, or nil if tokens may not send it at all.
    ///
    /// The one table the auth stage checks every API call against.
    public static func required(for frame: ClientFrame) -> APIScope? {
        switch frame {
        case .api(let call):
            switch call {
            case .organisation: return .orgRead
            case .queue: return .queueRead
            case .conversations, .conversation: return .conversationsRead
            case .messages: return .messagesRead
            case .transcript: return .transcriptsRead
            case .form: return .formsRead
            case .open: return .conversationsOpen
            case .auditExport: return .auditRead
            case .webhooks, .createWebhook, .deleteWebhook: return .webhooksWrite
            }
        case .end, .assign: return .conversationsWrite
        case .download: return .attachmentsRead
        case .admin(let request):
            switch request {
            case .users: return .usersRead
            case .addUser, .setDisabled, .setRole: return .usersWrite
            case .audit, .verifyAudit: return .auditRead
            default: return nil
            }
        default:
            return nil
        }
    }
}
