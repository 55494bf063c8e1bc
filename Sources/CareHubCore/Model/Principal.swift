/// Who is behind a session.
public enum Principal: Sendable, Hashable {
    /// An anonymous patient in the widget, confined to one conversation.
    case visitor(ConversationID)
    /// A staff account of the organisation.
    case staff(user: String, role: Role)

    /// Whether this is a staff or admin account.
    public var isStaff: Bool {
        if case .staff = self { return true }
        return false
    }

    /// The staff role, or nil for a visitor.
    public var role: Role? {
        if case .staff(_, let role) = self { return role }
        return nil
    }

    /// A visitor's `from`.
    public static let visitorName = "visitor"

    /// The name shown as a message's `from`: `"visitor"`, or the staff user name.
    public var displayName: String {
        switch self {
        case .visitor: return Self.visitorName
        case .staff(let user, _): return user
        }
    }

    /// Whether this principal may read and write `room`, assuming the room belongs to the session's organisation.
    public func mayAccess(_ room: ConversationID) -> Bool {
        switch self {
        case .visitor(let own): return own == room
        case .staff: return true
        }
    }
}
