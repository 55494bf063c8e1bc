/// Whether a staff member can take chats now, as colleagues and the widget see it.
public enum Presence: String, Sendable, Hashable, CaseIterable {
    /// Logged in and taking chats (every staff session starts so).
    case available
    /// Logged in but not taking chats.
    case away
    /// No live session.
    case offline

    /// The state of someone with sessions in these states: the most present one wins.
    public static func combined(_ states: some Sequence<Presence>) -> Presence {
        var result = Presence.offline
        for state in states {
            if state == .available { return .available }
            if state == .away { result = .away }
        }
        return result
    }
}
