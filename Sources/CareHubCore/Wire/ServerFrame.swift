import Foundation

/// A frame the hub sends. ``json()`` gives its wire form; docs/PROTOCOL.md documents each.
public enum ServerFrame: Sendable, Hashable {
    /// Reply to `hello`: the visitor's conversation, its reconnect token, and its history.
    /// `readSeq` is the highest `seq` a staff member has seen (0 when none).
    case welcome(id: String?, conversation: ConversationID, token: String, history: [HistoryEntry], offersTranscript: Bool = false, readSeq: UInt64 = 0)
    /// Reply to `login`. `onEnd` says what ending a chat does in the organisation. `token` is the
    /// session's bearer token for HTTP requests (attachments), valid while the session lives.
    case session(id: String?, user: String, role: Role, idleTimeoutSeconds: Int?, recoveryCodes: [String], onEnd: EndOfChat = .kept, token: String? = nil)
    /// The account must enrol a second factor: add the secret to an authenticator app, then send
    /// `login` again with a code from it.
    case enroll(id: String?, secret: String, otpauthURI: String)
    /// A device sign-in started: where to go, the code to enter, and the ticket to send in `sso`.
    case ssoDevice(id: String?, DeviceSignIn)
    /// Reply to `rooms`.
    case rooms(id: String?, rooms: [RoomSummary], orgName: String? = nil)
    /// Reply to `subscribe`. `onEnd` says what ending this chat does, as configured now.
    /// `handoff` is the room's latest hand-over between staff, with its note opened for the reader.
    case subscribed(
        id: String?, room: ConversationID, ended: Bool, history: [HistoryEntry], visitor: VisitorProfile? = nil, onEnd: EndOfChat = .kept,
        handoff: HandoffView? = nil)
    /// Reply to `unsubscribe`.
    case unsubscribed(id: String?, room: ConversationID, reason: String? = nil)
    /// Reply to `send`, only after the message is durably stored.
    case ack(id: String?, room: ConversationID, seq: UInt64, at: Date)
    /// A message delivered to a room's members. `from` is the sender's login (or `"visitor"`);
    /// `fromName`, for a staff sender only, the name patients see.
    case message(room: ConversationID, seq: UInt64, from: String, text: String, at: Date, fromName: String? = nil, attachment: AttachmentView? = nil)
    /// A conversation ended; sent to everyone in the room and as the reply to `end`.
    case ended(id: String?, room: ConversationID)
    /// A visitor started a conversation in the staff member's organisation.
    case roomOpened(room: ConversationID, at: Date)
    /// A room of the organisation moved (started, a message, ended, assigned): to every staff
    /// member who may read it, subscribed or not. No content.
    case roomActivity(RoomActivity)
    /// Someone else in the room is typing; `fromName` as in ``message(room:seq:from:text:at:fromName:)``.
    case typing(room: ConversationID, from: String, fromName: String? = nil)
    /// Reply to `logout`.
    case loggedOut(id: String?)
    /// The visitor's transcript will be e-mailed when the conversation ends.
    case transcriptRequested(id: String?, room: ConversationID)
    /// A room was assigned to a staff member (to the admin who did it, and to the assignee).
    case assigned(id: String?, room: ConversationID, user: String)
    /// The session expired; nothing more is delivered until a new login.
    case sessionExpired(reason: SessionExpiry)
    /// A request failed.
    case error(id: String?, error: PipelineError)
    /// Reply to an admin operation: `result` is a JSON object built by the hub.
    case admin(id: String?, op: AdminRequest.Op, result: String)
    /// An admin change refused by the configuration checks: an `error` with code `config_refused`
    /// and every problem, each with its line in the submitted text.
    case configRefused(id: String?, message: String, issues: [ConfigIssue])
    /// Reply to `availability`: whether the organisation is open now and anyone can take a chat.
    case availability(id: String?, org: OrgID, open: Bool, staffAvailable: Bool, opensAt: Date?, hours: String?, timeZone: String?)
    /// A staff member's state (the reply to `presence`, and pushed to colleagues when it changes).
    case presence(id: String?, PresenceBoard.Member)
    /// Reply to `team`: every enabled account of the organisation with its state.
    case team(id: String?, members: [TeamMember])
    /// Reply to `claim`: the room is the sender's.
    case claimed(id: String?, room: ConversationID, user: String)
    /// Reply to `transfer`: the room went to `to`, or back to the queue (nil).
    case transferred(id: String?, room: ConversationID, to: String?)
    /// To the new assignee's connections: a colleague passed them the room, with a note.
    case handedOver(room: ConversationID, HandoffView)
    /// To a queued conversation's visitor: its place in the queue (1 is next; 0 once taken).
    case queue(room: ConversationID, position: Int)
    /// To a room's visitor: staff have seen its messages up to `seq`.
    case read(room: ConversationID, seq: UInt64)
    /// Reply to `replies`: the organisation's canned replies, by name.
    case replies(id: String?, replies: [CannedReply])
    /// To a room: a held attachment passed the scanner and may now be fetched.
    case attachmentReady(room: ConversationID, attachment: AttachmentID)
    /// To a room: a held attachment was refused by the scanner (or could not be kept) and is gone.
    case attachmentRefused(room: ConversationID, attachment: AttachmentID, code: ErrorCode)

    /// The frame as a JSON text frame.
    public func json() -> String {
        var w = JSONWriter()
        switch self {
        case .welcome(let id, let conversation, let token, let history, let offersTranscript, let readSeq):
            w.field("type", "welcome")
            w.optionalField("id", id)
            w.field("conversation", conversation.rawValue)
            w.field("token", token)
            w.array("history", history) { $0.write($1) }
            w.field("transcriptEmail", offersTranscript)
            w.field("readSeq", readSeq)
        case .session(let id, let user, let role, let idle, let recoveryCodes, let onEnd, let token):
            w.field("type", "session")
            w.optionalField("id", id)
            w.optionalField("token", token)
            w.field("user", user)
            w.field("role", role.rawValue)
            if let idle { w.field("idleTimeoutSeconds", Int64(idle)) } else { w.null("idleTimeoutSeconds") }
            if !recoveryCodes.isEmpty { w.strings("recoveryCodes", recoveryCodes) }
            w.write(onEnd)
        case .enroll(let id, let secret, let uri):
            w.field("type", "enroll")
            w.optionalField("id", id)
            w.field("secret", secret)
            w.field("otpauthURI", uri)
        case .ssoDevice(let id, let device):
            w.field("type", "sso_device")
            w.optionalField("id", id)
            w.field("verificationURI", device.verificationURI)
            w.optionalField("verificationURIComplete", device.verificationURIComplete)
            w.field("userCode", device.userCode)
            w.field("ticket", device.ticket)
            w.field("expiresIn", Int64(device.expiresIn))
            w.field("interval", Int64(device.interval))
        case .rooms(let id, let rooms, let orgName):
            w.field("type", "rooms")
            w.optionalField("id", id)
            w.optionalField("orgName", orgName)
            w.array("rooms", rooms) { element, room in
                element.field("room", room.room.rawValue)
                element.field("startedAt", room.startedAt.epochMilliseconds)
                element.field("ended", room.ended)
                element.optionalField("assignedTo", room.assignedTo)
                if let activity = room.activity { element.writeProgress(activity) }
                element.optionalField("name", room.visitorName)
                element.optionalField("reason", room.visitorReason)
                if room.activity?.offline == true { element.field("offline", true) }
            }
        case .subscribed(let id, let room, let ended, let history, let visitor, let onEnd, let handoff):
            w.field("type", "subscribed")
            w.optionalField("id", id)
            w.field("room", room.rawValue)
            w.field("ended", ended)
            w.array("history", history) { $0.write($1) }
            if let visitor {
                w.object("visitor") { object in
                    for key in visitor.fields.keys.sorted() { object.field(key, visitor.fields[key]!) }
                }
            }
            w.write(onEnd)
            if let handoff { w.object("handoff") { $0.write(handoff) } }
        case .unsubscribed(let id, let room, let reason):
            w.field("type", "unsubscribed")
            w.optionalField("id", id)
            w.field("room", room.rawValue)
            w.optionalField("reason", reason)
        case .ack(let id, let room, let seq, let at):
            w.field("type", "ack")
            w.optionalField("id", id)
            w.field("room", room.rawValue)
            w.field("seq", seq)
            w.field("at", at.epochMilliseconds)
        case .message(let room, let seq, let from, let text, let at, let fromName, let attachment):
            w.field("type", "message")
            w.field("room", room.rawValue)
            w.field("seq", seq)
            w.field("from", from)
            w.optionalField("fromName", fromName)
            w.field("text", text)
            w.field("at", at.epochMilliseconds)
            if let attachment { w.object("attachment") { $0.write(attachment) } }
        case .ended(let id, let room):
            w.field("type", "ended")
            w.optionalField("id", id)
            w.field("room", room.rawValue)
        case .roomOpened(let room, let at):
            w.field("type", "room_opened")
            w.field("room", room.rawValue)
            w.field("at", at.epochMilliseconds)
        case .roomActivity(let activity):
            w.field("type", "room_activity")
            w.field("room", activity.room.rawValue)
            w.field("event", activity.event.rawValue)
            w.field("startedAt", activity.startedAt.epochMilliseconds)
            w.writeProgress(activity)
            w.field("ended", activity.ended)
            w.optionalField("assignedTo", activity.assignedTo)
            if activity.offline { w.field("offline", true) }
        case .typing(let room, let from, let fromName):
            w.field("type", "typing")
            w.field("room", room.rawValue)
            w.field("from", from)
            w.optionalField("fromName", fromName)
        case .transcriptRequested(let id, let room):
            w.field("type", "transcript_requested")
            w.optionalField("id", id)
            w.field("room", room.rawValue)
        case .assigned(let id, let room, let user):
            w.field("type", "assigned")
            w.optionalField("id", id)
            w.field("room", room.rawValue)
            w.field("user", user)
        case .loggedOut(let id):
            w.field("type", "logged_out")
            w.optionalField("id", id)
        case .sessionExpired(let reason):
            w.field("type", "session_expired")
            w.field("reason", reason.rawValue)
        case .error(let id, let error):
            w.field("type", "error")
            w.optionalField("id", id)
            w.field("code", error.code.rawValue)
            w.field("message", error.message)
        case .admin(let id, let op, let result):
            w.field("type", "admin")
            w.optionalField("id", id)
            w.field("op", op.rawValue)
            w.raw("result", result)
        case .configRefused(let id, let message, let issues):
            w.field("type", "error")
            w.optionalField("id", id)
            w.field("code", ErrorCode.configRefused.rawValue)
            w.field("message", message)
            w.array("issues", issues) { element, issue in
                element.field("line", Int64(issue.line))
                element.field("message", issue.message)
            }
        case .availability(let id, let org, let open, let staffAvailable, let opensAt, let hours, let timeZone):
            w.field("type", "availability")
            w.optionalField("id", id)
            w.field("org", org.rawValue)
            w.field("open", open)
            w.field("staffAvailable", staffAvailable)
            if let opensAt { w.field("opensAt", opensAt.epochMilliseconds) } else { w.null("opensAt") }
            if let hours { w.field("hours", hours) } else { w.null("hours") }
            if let timeZone { w.field("timeZone", timeZone) } else { w.null("timeZone") }
        case .presence(let id, let member):
            w.field("type", "presence")
            w.optionalField("id", id)
            w.field("user", member.user)
            w.field("name", member.name)
            w.field("state", member.state.rawValue)
        case .team(let id, let members):
            w.field("type", "team")
            w.optionalField("id", id)
            w.array("members", members) { element, member in
                element.field("user", member.user)
                element.field("name", member.name)
                element.field("role", member.role.rawValue)
                element.field("state", member.state.rawValue)
            }
        case .claimed(let id, let room, let user):
            w.field("type", "claimed")
            w.optionalField("id", id)
            w.field("room", room.rawValue)
            w.field("user", user)
        case .transferred(let id, let room, let to):
            w.field("type", "transferred")
            w.optionalField("id", id)
            w.field("room", room.rawValue)
            if let to { w.field("to", to) } else { w.null("to") }
        case .handedOver(let room, let handoff):
            w.field("type", "transferred")
            w.field("room", room.rawValue)
            w.write(handoff)
        case .queue(let room, let position):
            w.field("type", "queue")
            w.field("room", room.rawValue)
            w.field("position", Int64(position))
        case .read(let room, let seq):
            w.field("type", "read")
            w.field("room", room.rawValue)
            w.field("seq", seq)
        case .replies(let id, let replies):
            w.field("type", "replies")
            w.optionalField("id", id)
            w.writeReplies(replies)
        case .attachmentReady(let room, let attachment):
            w.field("type", "attachment_ready")
            w.field("room", room.rawValue)
            w.field("attachment", attachment.rawValue)
        case .attachmentRefused(let room, let attachment, let code):
            w.field("type", "attachment_refused")
            w.field("room", room.rawValue)
            w.field("attachment", attachment.rawValue)
            w.field("code", code.rawValue)
        }
        return w.finish()
    }
}

/// One message of a room's history, as a reader receives it.
public struct HistoryEntry: Sendable, Hashable {
    /// Position in the room.
    public let seq: UInt64
    /// Sender's login name, or `"visitor"`.
    public let from: String
    /// For a staff sender, the name patients see (its display name, or the login without one).
    public let fromName: String?
    /// The text, or nil when it could not be opened (see `sealed`).
    public let text: String?
    /// When the hub accepted it.
    public let at: Date
    /// The attachment it carries, if any.
    public let attachment: AttachmentView?

    /// Creates an entry.
    public init(seq: UInt64, from: String, text: String?, at: Date, fromName: String? = nil, attachment: AttachmentView? = nil) {
        self.seq = seq
        self.from = from
        self.fromName = fromName
        self.text = text
        self.at = at
        self.attachment = attachment
    }

    /// The reader's view of a stored message: sealed or unreadable bodies show no text.
    /// `names` gives staff senders' display names by login; a staff sender without one shows its login.
    /// `attachments` gives the records of the attachments messages carry, by id.
    public init(_ message: StoredMessage, names: [String: String] = [:], attachments: [AttachmentID: Attachment] = [:]) {
        let fromName = message.sender == Principal.visitorName ? nil : names[message.sender] ?? message.sender
        let attachment = message.attachment.flatMap { attachments[$0] }.map(AttachmentView.init)
        if case .plain(let text) = message.body {
            self.init(seq: message.seq, from: message.sender, text: text, at: message.at, fromName: fromName, attachment: attachment)
        } else {
            self.init(seq: message.seq, from: message.sender, text: nil, at: message.at, fromName: fromName, attachment: attachment)
        }
    }
}

extension JSONWriter {
    /// `"onEnd":{"kind":…,"text":…}`.
    fileprivate mutating func write(_ onEnd: EndOfChat) {
        object("onEnd") { object in
            object.field("kind", onEnd.kind.rawValue)
            object.field("text", onEnd.text)
        }
    }

    /// `from`, `fromName`, `to`, `note`, `at` of a hand-over.
    fileprivate mutating func write(_ handoff: HandoffView) {
        field("from", handoff.from)
        field("fromName", handoff.fromName)
        if let to = handoff.to { field("to", to) } else { null("to") }
        if let note = handoff.note { field("note", note) } else { null("note") }
        field("at", handoff.at.epochMilliseconds)
    }

    /// `"replies":[{"name":…,"text":…},…]`: the staff `replies` reply and the admin API's `replies.*` results.
    public mutating func writeReplies(_ replies: [CannedReply]) {
        array("replies", replies) { element, reply in
            element.field("name", reply.name)
            element.field("text", reply.text)
        }
    }

    /// `lastAt`, `lastFrom`, `waitingSince`, `unanswered`: shared by `room_activity` and the `rooms` entries.
    public mutating func writeProgress(_ activity: RoomActivity) {
        field("lastAt", activity.lastAt.epochMilliseconds)
        if let from = activity.lastFrom { field("lastFrom", from.rawValue) } else { null("lastFrom") }
        if let since = activity.waitingSince { field("waitingSince", since.epochMilliseconds) } else { null("waitingSince") }
        field("unanswered", Int64(activity.unanswered))
    }

    /// `seq`, `from`, `fromName`, `text` (null when it could not be opened), `at`, `attachment`.
    public mutating func write(_ entry: HistoryEntry) {
        field("seq", entry.seq)
        field("from", entry.from)
        optionalField("fromName", entry.fromName)
        if let text = entry.text { field("text", text) } else { null("text") }
        field("at", entry.at.epochMilliseconds)
        if let attachment = entry.attachment { object("attachment") { $0.write(attachment) } }
    }

    /// `id`, `name` (null when it could not be opened), `size`, `type`, `state` of an attachment,
    /// as frames and the upload's answer give it.
    public mutating func write(_ attachment: AttachmentView) {
        field("id", attachment.id.rawValue)
        if let name = attachment.name { field("name", name) } else { null("name") }
        field("size", Int64(attachment.size))
        field("type", attachment.contentType)
        field("state", attachment.state.rawValue)
    }
}

/// A hand-over as a staff reader sees it: names, time, and the note opened (nil when none, or
/// when it could not be opened).
public struct HandoffView: Sendable, Hashable {
    /// Who transferred the room.
    public let from: String
    /// Their display name.
    public let fromName: String
    /// The new assignee; nil: back to the queue.
    public let to: String?
    /// The note for the colleague.
    public let note: String?
    /// When.
    public let at: Date

    /// Creates a view.
    public init(from: String, fromName: String, to: String?, note: String?, at: Date) {
        self.from = from
        self.fromName = fromName
        self.to = to
        self.note = note
        self.at = at
    }
}

/// A staff account as the `team` reply lists it.
public struct TeamMember: Sendable, Hashable {
    /// The login name.
    public let user: String
    /// The display name (the login name without one).
    public let name: String
    /// Staff or admin.
    public let role: Role
    /// Available, away or offline.
    public let state: Presence

    /// Creates a team entry.
    public init(user: String, name: String, role: Role, state: Presence) {
        self.user = user
        self.name = name
        self.role = role
        self.state = state
    }
}

/// A room as the `rooms` reply lists it (no message content).
public struct RoomSummary: Sendable, Hashable {
    /// The room.
    public let room: ConversationID
    /// When its conversation started.
    public let startedAt: Date
    /// Whether it has ended.
    public let ended: Bool
    /// The staff member it is assigned to, if any.
    public let assignedTo: String?
    /// Its traffic as the hub knows it (`lastAt`, `lastFrom`, `waitingSince`, `unanswered`).
    public var activity: RoomActivity?
    /// The visitor's pre-chat `name`, for the authorised reader (ePHI).
    public var visitorName: String?
    /// The visitor's pre-chat `reason`, for the authorised reader (ePHI).
    public var visitorReason: String?

    /// Creates a summary.
    public init(room: ConversationID, startedAt: Date, ended: Bool, assignedTo: String? = nil, activity: RoomActivity? = nil) {
        self.room = room
        self.startedAt = startedAt
        self.ended = ended
        self.assignedTo = assignedTo
        self.activity = activity
    }
}

/// An attachment as a reader of its room sees it, beside the message that carries it.
public struct AttachmentView: Sendable, Hashable {
    public let id: AttachmentID
    /// The file name, or nil when it could not be opened.
    public let name: String?
    public let size: Int
    /// The type found in its bytes.
    public let contentType: String
    /// `held` until the scanner passes it; only `ready` attachments can be fetched.
    public let state: AttachmentState

    /// Creates a view.
    public init(id: AttachmentID, name: String?, size: Int, contentType: String, state: AttachmentState) {
        self.id = id
        self.name = name
        self.size = size
        self.contentType = contentType
        self.state = state
    }

    /// The reader's view of a stored record: a sealed or unreadable name shows no name.
    public init(_ attachment: Attachment) {
        var name: String?
        if case .plain(let text) = attachment.name { name = text }
        self.init(id: attachment.id, name: name, size: attachment.size, contentType: attachment.contentType, state: attachment.state)
    }
}
