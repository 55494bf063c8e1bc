/// A connection in a room, with the session it is bound to.
public struct RoomMember: Sendable, Hashable {
    /// The member's connection.
    public let connection: ConnectionID
    /// The token of the session bound to that connection.
    public let sessionToken: String

    /// Creates a member.
    public init(connection: ConnectionID, sessionToken: String) {
        self.connection = connection
        self.sessionToken = sessionToken
    }
}

/// The port through which the fan-out stage manages room membership and delivers frames.
///
/// `deliver` must not block: implementations queue the frame for the connection and return.
/// Frames queued for one connection are written in the order queued.
public protocol RoomDirectory: Sendable {
    /// Adds a connection to a room.
    func join(_ room: ConversationID, member: RoomMember)
    /// Removes a connection from a room.
    func leave(_ room: ConversationID, connection: ConnectionID)
    /// Removes a connection from every room.
    func leaveAll(connection: ConnectionID)
    /// Empties a room and returns who was in it.
    func close(_ room: ConversationID) -> [RoomMember]
    /// Who is in a room.
    func members(of room: ConversationID) -> [RoomMember]
    /// Every connection bound to a staff session of `org`.
    func staffConnections(of org: OrgID) -> [RoomMember]
    /// Queues `frame` for each of `connections`.
    func deliver(_ frame: ServerFrame, to connections: [ConnectionID])
}
