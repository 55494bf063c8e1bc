import Foundation

/// An out-of-band notice for staff who are not watching a room.
///
/// It holds facts, not words: the text is rendered by ``NotificationTemplate`` when the notice is
/// dispatched, under the organisation's settings in force then, so a notice queued before an
/// organisation entered HIPAA mode still goes out without its preview.
public struct StaffNotification: Sendable, Hashable {
    /// The organisation.
    public let org: OrgID
    /// The conversation it is about.
    public let conversation: ConversationID
    /// Unread messages in the conversation.
    public let unread: Int
    /// Non-HIPAA `notify=preview` only: the start of the message and who sent it.
    public let preview: String?
    /// Non-HIPAA `notify=preview` only: the sender's display name.
    public let from: String?
    /// When it was raised.
    public let at: Date

    /// Creates a notification.
    public init(org: OrgID, conversation: ConversationID, unread: Int, preview: String? = nil, from: String? = nil, at: Date) {
        self.org = org
        self.conversation = conversation
        self.unread = unread
        self.preview = preview
        self.from = from
        self.at = at
    }
}

/// The port through which the fan-out stage raises notifications.
///
/// Implementations must keep a notification durably (an outbox), once per integration named,
/// until it is dispatched.
public protocol Notifier: Sendable {
    /// Queues `notification` for each integration in `integrations`.
    func enqueue(_ notification: StaffNotification, via integrations: [String]) async throws
}

/// The words of a notification. In a HIPAA organisation only the organisation's name, a count and
/// a console link: never message text, visitor name, e-mail or phone.
public enum NotificationTemplate {
    /// A rendered notice.
    public struct Rendered: Sendable, Hashable {
        /// A one-line subject.
        public let subject: String
        /// The text.
        public let text: String
        /// The webhook body (JSON).
        public let json: String
    }

    /// Renders `notification` for `org` as it is configured now; `link` opens the conversation in the staff console.
    public static func render(_ notification: StaffNotification, org: OrgSettings, link: String) -> Rendered {
        let count = notification.unread
        let unread = "\(count) unread message\(count == 1 ? "" : "s")"
        let subject = "\(org.displayName): \(unread)"
        let preview = org.hipaa ? nil : notification.preview
        let text: String
        if let preview {
            text = "\(org.displayName): new message from \(notification.from ?? "a visitor"): \"\(preview)\" (\(unread)). Open \(link)"
        } else {
            text = "\(org.displayName): \(unread) in a patient conversation. Open \(link)"
        }
        var w = JSONWriter()
        w.field("org", org.id.rawValue)
        w.field("organisation", org.displayName)
        w.field("conversation", notification.conversation.rawValue)
        w.field("unread", Int64(count))
        w.field("link", link)
        w.field("at", notification.at.epochMilliseconds)
        if let preview {
            w.field("preview", preview)
            w.optionalField("from", notification.from)
        }
        w.field("text", text)
        return Rendered(subject: subject, text: text, json: w.finish())
    }
}
