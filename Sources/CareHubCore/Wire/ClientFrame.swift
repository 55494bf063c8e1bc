/// A request a client sends, decoded from a JSON text frame.
public enum ClientFrame: Sendable, Hashable {
    /// A visitor starts a conversation, or resumes one with its reconnect token; `offline` when
    /// the visitor is leaving a message while the clinic is closed or nobody is available.
    case hello(org: OrgID, token: String?, profile: VisitorProfile? = nil, offline: Bool = false)
    /// A staff member logs in.
    case login(org: OrgID, user: String, password: Password, totp: String?)
    /// A staff member logs in with the one-time ticket the hub's single sign-on page gave their
    /// browser, and a TOTP code where the hub asked for one.
    case sso(org: OrgID, ticket: String, totp: String?)
    /// A terminal console starts a device sign-in at the organisation's identity provider.
    case ssoDevice(org: OrgID)
    /// Staff: list the organisation's rooms; with `visitors`, each with its visitor's pre-chat
    /// name and reason (ePHI: a read on the record).
    case rooms(visitors: Bool = false)
    /// Staff: receive a room's messages, starting with its history.
    case subscribe(room: ConversationID)
    /// Staff: stop receiving a room's messages.
    case unsubscribe(room: ConversationID)
    /// Send a message to a room.
    case send(room: ConversationID, text: String)
    /// End a conversation.
    case end(room: ConversationID)
    /// Someone in the room is typing: relayed to the room, not stored, no reply.
    case typing(room: ConversationID)
    /// Staff: the person at the console pressed a key or clicked; resets the idle timer. No reply.
    case activity
    /// End the session.
    case logout
    /// Visitor, non-HIPAA organisations that allow it: e-mail me this conversation's transcript when it ends.
    case transcript(room: ConversationID, to: String)
    /// Admin, under `staff_access = assigned`: give a room to a staff member.
    case assign(room: ConversationID, user: String)
    /// Admin, after a login with a second factor: an admin API operation.
    case admin(AdminRequest)
    /// Anyone, no session needed: is the organisation open, and is anyone available to chat?
    case availability(org: OrgID)
    /// Staff: I am available or away.
    case presence(Presence)
    /// Staff: the organisation's accounts and who is available.
    case team
    /// Staff: I'll take this waiting chat.
    case claim(room: ConversationID)
    /// Staff: pass a chat to a colleague, or back to the queue (`to` nil), with a note for them.
    case transfer(room: ConversationID, to: String?, note: String?)
    /// Staff: the person at the console has seen the room's messages up to `seq`.
    case read(room: ConversationID, seq: UInt64)
    /// Staff: the organisation's canned replies, by name.
    case replies
    /// Send a file to a room (an HTTP upload, not a WebSocket frame): a message carrying it.
    case attach(room: ConversationID, upload: AttachmentUpload)
    /// Fetch an attachment's bytes (an HTTP download, not a WebSocket frame).
    case download(AttachmentID)
    /// An HTTP API call that no frame stands for (an integration token's, not a WebSocket frame).
    case api(APICall)

    /// The frame's `type` names, as on the wire.
    public enum Kind: String, Sendable, CaseIterable {
        case ssoDevice = "sso_device"
        case hello, login, sso, rooms, subscribe, unsubscribe, send, end, typing, activity, logout, transcript, assign, admin
        case availability, presence, team, claim, transfer, read, replies
        case attach, download, api
    }

    /// This frame's kind.
    public var kind: Kind {
        switch self {
        case .hello: return .hello
        case .login: return .login
        case .sso: return .sso
        case .ssoDevice: return .ssoDevice
        case .rooms: return .rooms
        case .subscribe: return .subscribe
        case .unsubscribe: return .unsubscribe
        case .send: return .send
        case .end: return .end
        case .typing: return .typing
        case .activity: return .activity
        case .logout: return .logout
        case .transcript: return .transcript
        case .assign: return .assign
        case .admin: return .admin
        case .availability: return .availability
        case .presence: return .presence
        case .team: return .team
        case .claim: return .claim
        case .transfer: return .transfer
        case .read: return .read
        case .replies: return .replies
        case .attach: return .attach
        case .download: return .download
        case .api: return .api
        }
    }

    /// The room the frame addresses, if any.
    public var room: ConversationID? {
        switch self {
        case .subscribe(let room), .unsubscribe(let room), .send(let room, _), .end(let room), .typing(let room),
             .transcript(let room, _), .assign(let room, _), .claim(let room), .transfer(let room, _, _), .read(let room, _),
             .attach(let room, _): return room
        case .api(let call): return call.room
        case .hello, .login, .sso, .ssoDevice, .rooms, .activity, .logout, .admin, .availability, .presence, .team, .replies, .download: return nil
        }
    }

    /// Whether the frame is something a person did, which resets the idle timer.
    ///
    /// Sending, subscribing, unsubscribing, ending, typing, `activity` (which consoles send only
    /// after a key press or click on the page), claiming, transferring, setting one's presence and
    /// admin operations count, and so does attaching a file. Listing rooms, the team or canned replies and read receipts (which
    /// consoles send by themselves), logging in, visitor resumes, availability checks, and
    /// WebSocket pings (which never reach the pipeline) do not.
    public var isUserAction: Bool {
        switch self {
        case .send, .subscribe, .unsubscribe, .end, .typing, .activity, .transcript, .assign, .admin, .presence, .claim, .transfer,
             .attach:
            return true
        case .hello, .login, .sso, .ssoDevice, .rooms, .logout, .availability, .team, .read, .replies, .download, .api: return false
        }
    }
}

/// A password in memory; its description never shows it.
public struct Password: Sendable, Hashable, CustomStringConvertible {
    /// The password text.
    public let text: String
    /// Wraps a password.
    public init(_ text: String) { self.text = text }
    public var description: String { "<password>" }
}
