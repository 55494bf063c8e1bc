import CareHubCore

/// A connection that may receive a room's frames, with the session that allows it.
struct Recipient {
    let connection: ConnectionID
    let session: Session
}

/// Who of a room's members may receive its frames now, and who lost the right to.
struct Readers {
    /// Live sessions of the organisation that may read the room now.
    var recipients: [Recipient] = []
    /// Members whose session is live but who may no longer read the room (its assignment or the
    /// organisation's settings changed): they are taken out of it and told.
    var revoked: [ConnectionID] = []
}

extension StageEnvironment {
    /// Those of `members` whose sessions are live, in `org`, and allowed in `room` now, except
    /// `sender`. `conversation` is the room's record as the request read it; without one only
    /// the room's own visitor and staff under `staff_access = all` or admins pass.
    func liveRecipients(
        _ members: [RoomMember], org: OrgSettings, room: ConversationID, conversation: Conversation?, excluding sender: ConnectionID?
    ) -> Readers {
        let now = clock.now
        let record = conversation ?? Conversation(id: room, org: org.id, startedAt: now)
        var readers = Readers()
        for member in members where member.connection != sender {
            guard let session = sessions.session(member.sessionToken), session.org == org.id, session.isLive(at: now) else { continue }
            if org.mayRead(record, as: session.principal) {
                readers.recipients.append(Recipient(connection: member.connection, session: session))
            } else {
                readers.revoked.append(member.connection)
            }
        }
        return readers
    }

    /// Takes members who may no longer read `room` out of it and tells each with `unsubscribed`
    /// (reason `access_changed`), so their consoles stop showing the room as open.
    func evict(_ connections: [ConnectionID], from room: ConversationID) {
        guard !connections.isEmpty else { return }
        for connection in connections { rooms.leave(room, connection: connection) }
        rooms.deliver(.unsubscribed(id: nil, room: room, reason: "access_changed"), to: connections)
    }

    /// The audit record of a message released to `recipients` ("who read what"): ids and names only.
    static func deliveryEvent(of request: Request, seq: UInt64, room: ConversationID, org: OrgID, to recipients: [Recipient]) -> AuditEvent {
        let readers = Set(recipients.map(\.session.principal.displayName)).sorted()
        return AuditEvent(
            at: request.receivedAt, org: org, actor: request.session?.principal.displayName ?? "visitor", address: request.peer,
            action: "phi.delivered", target: room.rawValue, detail: "seq=\(seq) readers=\(readers.joined(separator: ","))")
    }

    /// The message's sequence number: the one an earlier stage reserved, or a new one.
    func sequence(of request: Request, in room: ConversationID) async throws -> UInt64 {
        if let reserved = request.seq { return reserved }
        return try await messages.reserveSequence(in: room)
    }
}
