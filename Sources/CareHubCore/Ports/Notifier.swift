import Foundation

/// An out-of-band notice for staff who are not watching a room.
public struct StaffNotification: Sendable, Hashable {
    /// The organisation.
    public let org: OrgID
    /// The conversation it is about.
    public let conversation: ConversationID
    /// The notice text. In a HIPAA organisation it never holds message content.
    public let text: String
    /// When it was raised.
    public let at: Date

    /// Creates a notification.
    public init(org: OrgID, conversation: ConversationID, text: String, at: Date) {
        self.org = org
        self.conversation = conversation
        self.text = text
        self.at = at
    }
}

/// The port through which the fan-out stage raises notifications.
///
/// Implementations must keep a notification durably (an outbox) until it is dispatched.
public protocol Notifier: Sendable {
    /// Queues a notification.
    func enqueue(_ notification: StaffNotification) async throws
}
