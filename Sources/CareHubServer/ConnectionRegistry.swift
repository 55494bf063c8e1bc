import CareHubCore
import CareHubTransport
import Synchronization

/// The hub's table of connections and rooms: the real ``RoomDirectory``.
///
/// One lock guards both tables; every operation on it is short and never awaits.
final class ConnectionRegistry: RoomDirectory {
    /// What the hub knows of one connection.
    struct Entry {
        let handle: ConnectionHandle
        /// The client's address (through a listed proxy, the address it forwarded for).
        let peer: String
        /// How the connection reached the hub.
        var channel: Channel = .local
        let inbox: ConnectionInbox
        var sessionToken: String?
        var rooms: Set<ConversationID> = []
    }

    private struct Tables {
        var connections: [ConnectionID: Entry] = [:]
        var rooms: [ConversationID: [ConnectionID: RoomMember]] = [:]
        /// Connections bound to a staff session, by organisation (so `room_opened` does not scan
        /// every visitor connection).
        var staff: [OrgID: Set<ConnectionID>] = [:]
        /// Open connections by client address.
        var perAddress: [String: Int] = [:]
    }

    private let tables = Mutex(Tables())
    private let sessions: any SessionStore
    private let send: @Sendable (ConnectionHandle, String) -> Void

    init(sessions: any SessionStore, send: @escaping @Sendable (ConnectionHandle, String) -> Void) {
        self.sessions = sessions
        self.send = send
    }

    var count: Int { tables.withLock { $0.connections.count } }

    /// Adds a connection unless `limit` connections from its address are open already.
    @discardableResult
    func add(_ id: ConnectionID, _ entry: Entry, limit: Int = .max) -> Bool {
        tables.withLock { tables in
            guard tables.perAddress[entry.peer, default: 0] < limit else { return false }
            tables.perAddress[entry.peer, default: 0] += 1
            tables.connections[id] = entry
            return true
        }
    }

    /// Open connections from `address`.
    func connections(from address: String) -> Int {
        tables.withLock { $0.perAddress[address] ?? 0 }
    }

    /// Forgets a connection and its room memberships; returns its session token, if bound.
    func remove(_ id: ConnectionID) -> String? {
        tables.withLock { tables in
            guard let entry = tables.connections.removeValue(forKey: id) else { return nil }
            if let open = tables.perAddress[entry.peer] {
                tables.perAddress[entry.peer] = open > 1 ? open - 1 : nil
            }
            for room in entry.rooms { Self.leave(room, id, &tables) }
            Self.forgetStaff(id, &tables)
            return entry.sessionToken
        }
    }

    func inbox(of id: ConnectionID) -> ConnectionInbox? {
        tables.withLock { $0.connections[id]?.inbox }
    }

    func allInboxes() -> [ConnectionInbox] {
        tables.withLock { $0.connections.values.map(\.inbox) }
    }

    func peer(of id: ConnectionID) -> String {
        tables.withLock { $0.connections[id]?.peer ?? "" }
    }

    /// The client's address and channel.
    func client(of id: ConnectionID) -> (peer: String, channel: Channel) {
        tables.withLock { tables in
            guard let entry = tables.connections[id] else { return ("", Channel(secure: false)) }
            return (entry.peer, entry.channel)
        }
    }

    func sessionToken(of id: ConnectionID) -> String? {
        tables.withLock { $0.connections[id]?.sessionToken }
    }

    func bind(_ id: ConnectionID, token: String?) {
        let staffOrg = token.flatMap { sessions.session($0) }.flatMap { $0.principal.isStaff ? $0.org : nil }
        tables.withLock { tables in
            guard tables.connections[id] != nil else { return }
            Self.forgetStaff(id, &tables)
            if let staffOrg { tables.staff[staffOrg, default: []].insert(id) }
            tables.connections[id]?.sessionToken = token
            if token == nil, let rooms = tables.connections[id]?.rooms {
                for room in rooms { Self.leave(room, id, &tables) }
            }
        }
    }

    /// Connections bound to `token`.
    func connections(boundTo token: String) -> [ConnectionID] {
        tables.withLock { $0.connections.filter { $0.value.sessionToken == token }.map(\.key) }
    }

    /// Sends an already encoded frame to one connection.
    func send(_ json: String, to id: ConnectionID) {
        guard let handle = tables.withLock({ $0.connections[id]?.handle }) else { return }
        send(handle, json)
    }

    // MARK: RoomDirectory

    func join(_ room: ConversationID, member: RoomMember) {
        tables.withLock { tables in
            guard tables.connections[member.connection] != nil else { return }
            tables.rooms[room, default: [:]][member.connection] = member
            tables.connections[member.connection]?.rooms.insert(room)
        }
    }

    func leave(_ room: ConversationID, connection: ConnectionID) {
        tables.withLock { Self.leave(room, connection, &$0) }
    }

    func leaveAll(connection: ConnectionID) {
        tables.withLock { tables in
            for room in tables.connections[connection]?.rooms ?? [] { Self.leave(room, connection, &tables) }
        }
    }

    func close(_ room: ConversationID) -> [RoomMember] {
        tables.withLock { tables in
            let members = tables.rooms.removeValue(forKey: room) ?? [:]
            for id in members.keys { tables.connections[id]?.rooms.remove(room) }
            return Array(members.values)
        }
    }

    func members(of room: ConversationID) -> [RoomMember] {
        tables.withLock { Array(($0.rooms[room] ?? [:]).values) }
    }

    func staffConnections(of org: OrgID) -> [RoomMember] {
        let bound = tables.withLock { tables in
            (tables.staff[org] ?? []).compactMap { id in
                tables.connections[id]?.sessionToken.map { RoomMember(connection: id, sessionToken: $0) }
            }
        }
        return bound.filter { member in
            guard let session = sessions.session(member.sessionToken) else { return false }
            return session.org == org && session.principal.isStaff
        }
    }

    func deliver(_ frame: ServerFrame, to connections: [ConnectionID]) {
        guard !connections.isEmpty else { return }
        let json = frame.json()
        let handles = tables.withLock { tables in connections.compactMap { tables.connections[$0]?.handle } }
        for handle in handles { send(handle, json) }
    }

    private static func forgetStaff(_ id: ConnectionID, _ tables: inout Tables) {
        for org in tables.staff.keys where tables.staff[org]?.remove(id) != nil {
            if tables.staff[org]?.isEmpty == true { tables.staff.removeValue(forKey: org) }
        }
    }

    private static func leave(_ room: ConversationID, _ id: ConnectionID, _ tables: inout Tables) {
        tables.rooms[room]?.removeValue(forKey: id)
        if tables.rooms[room]?.isEmpty == true { tables.rooms.removeValue(forKey: room) }
        tables.connections[id]?.rooms.remove(room)
    }
}
