import Foundation
import Synchronization

/// The state that is right for one hub process only, gathered in one place.
///
/// Each part is correct while one process serves the database and silently wrong for two (see
/// docs/ARCHITECTURE.md, "State that lives in one process"): the multi-node work replaces each
/// with shared state or routes by owner, here, without touching the stages that use it. The
/// hub makes one and hands it to every organisation's pipeline, so it also outlives a reload.
public final class NodeLocalState: Sendable {
    /// Live sessions: a session exists only in the process that logged it in.
    public let sessions: InMemorySessionStore
    /// Rate-limit buckets and one login at a time per account: each process grants the full allowance.
    public let throttle: Throttle
    /// Each open room's recent traffic: counts only the messages this process saw.
    public let activity: RoomActivityLog
    /// Presence as last announced and the queue: colleagues and rooms of this process only.
    public let frontDesk: FrontDesk
    /// Unread counts behind notifications: each process would count from 1.
    public let unread: UnreadCounts
    /// Visitors' absence for `abandon=` and exports in progress: a visitor connected to another
    /// process looks absent, and two processes may export one conversation.
    public let endOfChat: EndOfChatTracker
    /// SSO logins verified and waiting for their console's `sso` frame: a ticket works only on
    /// the process whose callback page made it.
    public let ssoTickets: SSOTickets

    public init(
        sessions: InMemorySessionStore = InMemorySessionStore(), throttle: Throttle = Throttle(), activity: RoomActivityLog = RoomActivityLog(),
        frontDesk: FrontDesk = FrontDesk(), unread: UnreadCounts = UnreadCounts(), endOfChat: EndOfChatTracker = EndOfChatTracker(),
        ssoTickets: SSOTickets = SSOTickets()
    ) {
        self.sessions = sessions
        self.throttle = throttle
        self.activity = activity
        self.frontDesk = frontDesk
        self.unread = unread
        self.endOfChat = endOfChat
        self.ssoTickets = ssoTickets
    }
}

/// Messages staff have not seen in each room since its last notification round, for the count
/// in notifications (no text).
public final class UnreadCounts: Sendable {
    private let counts = Mutex<[ConversationID: Int]>([:])

    public init() {}

    /// Counts one more message in `room` and returns the count.
    public func add(_ room: ConversationID) -> Int {
        counts.withLock { counts in
            counts[room, default: 0] += 1
            return counts[room]!
        }
    }

    /// Someone read the room, or it ended: counting starts again.
    public func clear(_ room: ConversationID) {
        _ = counts.withLock { $0.removeValue(forKey: room) }
    }
}

/// What the end-of-chat hook tracks between ticks: since when each room's visitor has had no
/// connection, and which conversations are being exported now (so that no two rounds, even of
/// pipelines before and after a reload, export one conversation at once).
public final class EndOfChatTracker: Sendable {
    private struct State {
        var absentSince: [OrgID: [ConversationID: Date]] = [:]
        var running: Set<ConversationID> = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Updates `org`'s absences from its `open` rooms and those whose visitor is `present`, and
    /// returns the rooms whose visitor has been gone at least `seconds` (their clock stops).
    public func abandoned(
        org: OrgID, open: [ConversationID], present: Set<ConversationID>, after seconds: TimeInterval, at now: Date
    ) -> [ConversationID] {
        state.withLock { state in
            let openIDs = Set(open)
            var absent = state.absentSince[org, default: [:]].filter { openIDs.contains($0.key) && !present.contains($0.key) }
            var abandoned: [ConversationID] = []
            for room in open where !present.contains(room) {
                let since = absent[room] ?? now
                absent[room] = since
                if now.timeIntervalSince(since) >= seconds { abandoned.append(room) }
            }
            for room in abandoned { absent.removeValue(forKey: room) }
            state.absentSince[org] = absent.isEmpty ? nil : absent
            return abandoned
        }
    }

    /// Starts the visitor's absence clock of `room` again at `now` (its last message was unanswered).
    public func restartAbsence(of room: ConversationID, org: OrgID, at now: Date) {
        state.withLock { $0.absentSince[org, default: [:]][room] = now }
    }

    /// Claims the export of `conversation`; false if one is already running.
    public func beginExport(_ conversation: ConversationID) -> Bool {
        state.withLock { $0.running.insert(conversation).inserted }
    }

    /// The export of `conversation` is over, whatever its outcome.
    public func endExport(_ conversation: ConversationID) {
        _ = state.withLock { $0.running.remove(conversation) }
    }
}
