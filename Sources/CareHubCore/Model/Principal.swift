/// Who is behind a session.
public enum Principal: Sendable, Hashable {
    /// An anonymous patient in the widget, confined to one conversation.
    case visitor(ConversationID)
    /// A staff account of the organisation.
    case staff(user: String, role: Role)
    /// A system the organisation connected (`integration NAME type=api`), calling the HTTP API
    /// with one of its tokens, which holds these scopes.
    case integration(name: String, token: APITokenID, scopes: [APIScope])

    /// Whether this is a staff or admin account.
    public var isStaff: Bool {
        if case .staff = self { return true }
        return false
    }

    /// Whether this is an anonymous patient.
    public var isVisitor: Bool {
        if case .visitor = self { return true }
        return false
    }

    /// The integration a token call comes from, or nil.
    public var integration: String? {
        if case .integration(let name, _, _) = self { return name }
        return nil
    }

    /// The staff role, or nil for a visitor or an integration.
    public var role: Role? {
        if case .staff(_, let role) = self { return role }
        return nil
    }

    /// A visitor's `from`.
    public static let visitorName = "visitor"

    /// The name shown as a message's `from` and in the audit trail: `"visitor"`, the staff user
    /// name, or `integration:NAME`.
    public var displayName: String {
        switch self {
        case .visitor: return Self.visitorName
        case .staff(let user, _): return user
        case .integration(let name, _, _): return "integration:\(name)"
        }
    }

    /// Whether this principal may read and write `room`, assuming the room belongs to the session's organisation.
    public func mayAccess(_ room: ConversationID) -> Bool {
        switch self {
        case .visitor(let own): return own == room
        case .staff, .integration: return true
        }
    }
}
