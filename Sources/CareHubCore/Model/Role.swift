/// What a staff account may do in its organisation.
public enum Role: String, Sendable, Hashable, CaseIterable {
    /// Answers patients: may list and subscribe to rooms, send, and end chats.
    case staff
    /// Everything staff may do, plus administering the organisation.
    case admin
}
