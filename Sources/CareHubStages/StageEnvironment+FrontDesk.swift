import CareHubCore
import Foundation

extension StageEnvironment {
    /// Live staff sessions' connections of `org`.
    private func liveStaff(of org: OrgID, at now: Date) -> [(connection: ConnectionID, session: Session)] {
        rooms.staffConnections(of: org).compactMap { member in
            guard let session = sessions.session(member.sessionToken), session.org == org, session.isLive(at: now) else { return nil }
            return (member.connection, session)
        }
    }

    /// Tells every live staff connection of `org` whose presence changed since it was last told:
    /// a login, `presence`, or a session that ended by any path (logout, expiry, revocation,
    /// disconnect). Cheap when nothing changed; the fan-out stage calls it every second.
    /// `sender`, whose own `presence` request is answered directly, is not told.
    public func announcePresence(org: OrgID, excluding sender: ConnectionID? = nil) {
        let now = clock.now
        let sessions = self.sessions
        let changed = frontDesk.presence.changes(in: org) { PresenceBoard.members(of: sessions.sessions(of: org), at: now) }
        guard !changed.isEmpty else { return }
        let staff = liveStaff(of: org, at: now).map(\.connection).filter { $0 != sender }
        for member in changed { rooms.deliver(.presence(id: nil, member), to: staff) }
    }

    /// Whether a staff member of `org` is logged in and available now.
    func staffAvailable(in org: OrgID) -> Bool {
        let now = clock.now
        return sessions.sessions(of: org).contains { $0.principal.isStaff && $0.presence == .available && $0.isLive(at: now) }
    }

    /// Fills the organisation's queue the first time it is used after a start: its open,
    /// unassigned conversations with no staff message among their last stored ones, from their start.
    func loadQueue(of org: OrgSettings) async {
        guard !frontDesk.queue.isLoaded(org.id) else { return }
        guard let open = try? await conversations.openConversations(org: org.id, limit: 5000) else { return }
        var entries: [(ConversationID, Date)] = []
        for conversation in open where conversation.assignedTo == nil {
            await fillActivity(of: conversation)
            if !activity.hasStaffMessage(conversation.id) { entries.append((conversation.id, conversation.startedAt)) }
        }
        frontDesk.queue.load(org.id, entries)
    }

    /// Tells each queued room's visitor connections their new place, after the queue changed.
    func announceQueue(of org: OrgID) {
        for (room, position) in frontDesk.queue.changes(in: org) {
            rooms.deliver(.queue(room: room, position: position), to: visitorConnections(of: room))
        }
    }

    /// Takes a room out of the queue (taken, answered, ended) and tells the visitors who moved up.
    func leaveQueue(_ room: ConversationID, org: OrgID) {
        if frontDesk.queue.remove(room, org: org) { announceQueue(of: org) }
    }

    /// Staff who could read the room under `before` and may not under `after`, subscribed or not,
    /// are taken out of it and told (`unsubscribed`, `access_changed`): their consoles drop it.
    func dropLostReaders(of room: ConversationID, before: Conversation, after: Conversation, org: OrgSettings) {
        let lost = liveStaff(of: org.id, at: clock.now).filter { staff in
            org.mayRead(before, as: staff.session.principal) && !org.mayRead(after, as: staff.session.principal)
        }
        evict(lost.map(\.connection), from: room)
    }

    /// What follows a new assignment of `room`, made here or elsewhere (`carehub conversations
    /// assign`, read from the ``ChangeJournal``): staff who may no longer read it leave it and are
    /// told, it leaves the queue, the new assignee's consoles (except `sender`'s) hear `assigned`,
    /// and staff not reading it see its activity change.
    public func assignmentChanged(
        _ room: ConversationID, before: Conversation?, after: Conversation, org: OrgSettings, excluding sender: ConnectionID?
    ) async {
        if let before { dropLostReaders(of: room, before: before, after: after, org: org) }
        evict(liveRecipients(rooms.members(of: room), org: org, room: room, conversation: after, excluding: nil).revoked, from: room)
        leaveQueue(room, org: org.id)
        if let user = after.assignedTo {
            let staff = liveRecipients(rooms.staffConnections(of: org.id), org: org, room: room, conversation: after, excluding: nil)
            let assignee = staff.recipients.filter { $0.session.principal.displayName == user && $0.connection != sender }
            rooms.deliver(.assigned(id: nil, room: room, user: user), to: assignee.map(\.connection))
        }
        await announce(after, event: .assigned, org: org)
    }

    /// The connections in the room of its own visitor (one per tab of the clinic's site).
    func visitorConnections(of room: ConversationID) -> [ConnectionID] {
        rooms.members(of: room).filter { sessions.session($0.sessionToken)?.principal == .visitor(room) }.map(\.connection)
    }

    /// Live staff connections of the account `user` in `org`, except `sender`.
    func connections(ofUser user: String, in org: OrgID, excluding sender: ConnectionID?) -> [ConnectionID] {
        liveStaff(of: org, at: clock.now).filter { $0.session.principal.displayName == user && $0.connection != sender }.map(\.connection)
    }
}
