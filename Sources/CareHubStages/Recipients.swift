import CareHubCore

/// A connection that may receive a room's frames, with the session that allows it.
struct Recipient {
    let connection: ConnectionID
    let session: Session
}

extension StageEnvironment {
    /// Those of `members` whose sessions are live, in `org`, and allowed in `room`, except `sender`.
    func liveRecipients(_ members: [RoomMember], org: OrgID, room: ConversationID, excluding sender: ConnectionID?) -> [Recipient] {
        let now = clock.now
        return members.compactMap { member in
            guard member.connection != sender, let session = sessions.session(member.sessionToken),
                  session.org == org, session.isLive(at: now), session.principal.mayAccess(room)
            else { return nil }
            return Recipient(connection: member.connection, session: session)
        }
    }

    /// The audit record of a message released to `recipients` ("who read what"): ids and names only.
    static func deliveryEvent(of request: Request, seq: UInt64, room: ConversationID, org: OrgID, to recipients: [Recipient]) -> AuditEvent {
        let readers = Set(recipients.map(\.session.principal.displayName)).sorted()
        return AuditEvent(
            at: request.receivedAt, org: org, actor: request.session?.principal.displayName ?? "visitor", address: request.peer,
            action: "phi.delivered", target: room.rawValue, detail: "seq=\(seq) readers=\(readers.joined(separator: ","))")
    }
}
