import Foundation

/// Whether an organisation is open and anyone can take a chat, as the widget asks before a chat.
public struct Availability: Sendable, Hashable {
    /// Whether its opening hours include now (always without hours).
    public let open: Bool
    /// Whether a staff member is logged in and available.
    public let staffAvailable: Bool
    /// The next opening, when closed.
    public let opensAt: Date?
    /// The opening hours as people read them, when set.
    public let hours: String?
    /// Their IANA time zone, when set.
    public let timeZone: String?

    /// Creates an answer.
    public init(open: Bool, staffAvailable: Bool, opensAt: Date?, hours: String?, timeZone: String?) {
        self.open = open
        self.staffAvailable = staffAvailable
        self.opensAt = opensAt
        self.hours = hours
        self.timeZone = timeZone
    }
}

extension HandoffView {
    /// The reader's view of a stored hand-over: a sealed or unreadable note shows no text.
    public init(_ handoff: Handoff, fromName: String?) {
        var note: String?
        if case .plain(let text)? = handoff.note { note = text }
        self.init(from: handoff.from, fromName: fromName ?? handoff.from, to: handoff.to, note: note, at: handoff.at)
    }
}

/// How many visitors wait and how many staff could take them, right now.
public struct QueueFigures: Sendable, Hashable {
    /// Conversations waiting for someone to take them.
    public let waiting: Int
    /// Since when the longest-waiting one waits.
    public let oldestWaitingSince: Date?
    /// Staff logged in, and of them those available.
    public let staffOnline: Int
    public let staffAvailable: Int

    /// Creates figures.
    public init(waiting: Int, oldestWaitingSince: Date?, staffOnline: Int, staffAvailable: Int) {
        self.waiting = waiting
        self.oldestWaitingSince = oldestWaitingSince
        self.staffOnline = staffOnline
        self.staffAvailable = staffAvailable
    }
}

/// What a request produced, filled in by stages as the chain returns.
///
/// The hub turns it into the reply frame with ``reply(to:)`` and applies ``bind`` / ``unbind``
/// to the connection.
public struct Outcome: Sendable {
    /// A session the connection is now bound to (after `hello` or `login`).
    public var bind: Session?
    /// Whether the connection's session ended (after `logout`).
    public var unbind = false
    /// The conversation the request addressed, as the auth stage found it (after `hello` and
    /// every frame naming a room).
    public var conversation: Conversation?
    /// The visitor's reconnect token (after `hello`).
    public var visitorToken: String?
    /// The stored message's sequence number (after `send`).
    public var seq: UInt64?
    /// The visitor's pre-chat form as stored (after `subscribe`); opened by the encrypt stage.
    public var profile: MessageBody?
    /// History for the reader (after `hello` or `subscribe`); opened by the encrypt stage.
    public var history: [StoredMessage] = []
    /// Display names of the staff senders in ``history``, by login.
    public var senderNames: [String: String] = [:]
    /// A second factor to enrol (after `login` by an account that has none yet); no session.
    public var enrollment: (secret: String, uri: String)?
    /// Recovery codes, shown once (after the `login` that completes enrolment).
    public var recoveryCodes: [String] = []
    /// The organisation's rooms (after `rooms`).
    public var rooms: [RoomSummary] = []
    /// The stored pre-chat forms of the listed rooms that have one (after `rooms`); opened by the
    /// encrypt stage, and only their `name` and `reason` are listed.
    public var roomProfiles: [ConversationID: MessageBody] = [:]
    /// The organisation's name as shown to people (after `rooms`).
    public var orgName: String?
    /// Whether the organisation offers the visitor an e-mailed transcript (after `hello`).
    public var offersTranscript = false
    /// What ending a chat does in the organisation (after `login` and `subscribe`); the purge
    /// stage says so, and without one conversations are kept.
    public var onEnd: EndOfChat = .kept
    /// Whether a stage took the request (after `transcript` and `assign`, which only some chains handle).
    public var handled = false
    /// Whether the organisation is open and anyone can take a chat (after `availability`).
    public var availability: Availability?
    /// The sender's state after the change (after `presence`).
    public var presence: PresenceBoard.Member?
    /// The organisation's accounts and their states (after `team`).
    public var team: [TeamMember] = []
    /// The room's latest hand-over (after `subscribe`); its note opened by the encrypt stage.
    public var handoff: Handoff?
    /// The display name of the hand-over's sender.
    public var handoffFromName: String?
    /// Frames for this connection after the reply (a visitor's place in the queue after `welcome`).
    public var followUps: [ServerFrame] = []
    /// The organisation's canned replies, by name (after `replies`).
    public var replies: [CannedReply] = []
    /// After `attach`: the attachment as stored (its name plain, for the sender's answer).
    public var attachment: Attachment?
    /// After `download`: the attachment's record and chunks for the reader.
    public var download: AttachmentDownload?
    /// Attachments of ``history`` by id (names as stored; the encrypt stage opens them for the reader).
    public var historyAttachments: [AttachmentID: Attachment] = [:]

    /// The listed conversations' records, as ``rooms`` lists them (after an API listing or read
    /// of a conversation's state).
    public var conversations: [Conversation] = []
    /// The session an HTTP API call ran as (an integration's, made by the auth stage for this
    /// call only): the hub carries out admin operations in its name.
    public var caller: Session?
    /// The organisation's queue figures (after the API's `queue`).
    public var queue: QueueFigures?
    /// A device sign-in started (after `sso_device`).
    public var deviceSignIn: DeviceSignIn?

    /// An empty outcome, as the end of the chain returns.
    public init() {}

    /// The reply frame for `request` (nil for `typing`, which has none), or an error if the chain
    /// did not produce what the reply needs.
    public func reply(to request: Request) throws -> ServerFrame? {
        let id = request.id
        switch request.frame {
        case .hello:
            guard let conversation, let visitorToken else { throw PipelineError.internal }
            return .welcome(
                id: id, conversation: conversation.id, token: visitorToken, history: history.map { HistoryEntry($0, names: senderNames, attachments: historyAttachments) },
                offersTranscript: offersTranscript, readSeq: conversation.readSeq)
        case .ssoDevice:
            guard let deviceSignIn else { throw PipelineError.internal }
            return .ssoDevice(id: id, deviceSignIn)
        case .login, .sso:
            if let enrollment { return .enroll(id: id, secret: enrollment.secret, otpauthURI: enrollment.uri) }
            guard let session = bind, case .staff(let user, let role) = session.principal else { throw PipelineError.internal }
            let idle = session.idlePolicy.map { Int($0.idleTimeout.seconds) }
            return .session(id: id, user: user, role: role, idleTimeoutSeconds: idle, recoveryCodes: recoveryCodes, onEnd: onEnd, token: session.token)
        case .rooms:
            let listed = rooms.map { summary in
                guard case .plain(let json)? = roomProfiles[summary.room], let form = VisitorProfile(json: Array(json.utf8)) else { return summary }
                var shown = summary
                shown.visitorName = form.fields["name"]
                shown.visitorReason = form.fields["reason"]
                return shown
            }
            return .rooms(id: id, rooms: listed, orgName: orgName)
        case .subscribe(let room):
            var visitor: VisitorProfile?
            if case .plain(let json)? = profile { visitor = VisitorProfile(json: Array(json.utf8)) }
            return .subscribed(
                id: id, room: room, ended: conversation?.hasEnded ?? false, history: history.map { HistoryEntry($0, names: senderNames, attachments: historyAttachments) },
                visitor: visitor, onEnd: onEnd, handoff: handoff.map { HandoffView($0, fromName: handoffFromName) })
        case .unsubscribe(let room):
            return .unsubscribed(id: id, room: room)
        case .send(let room, _):
            guard let seq else { throw PipelineError.internal }
            return .ack(id: id, room: room, seq: seq, at: request.receivedAt)
        case .end(let room):
            return .ended(id: id, room: room)
        case .typing, .activity:
            return nil
        case .logout:
            return .loggedOut(id: id)
        case .transcript(let room, _):
            guard handled else { throw PipelineError.forbidden("this organisation does not e-mail transcripts") }
            return .transcriptRequested(id: id, room: room)
        case .admin:
            // The chain only authorises it; the hub carries out the operation and replies.
            return nil
        case .assign(let room, let user):
            guard handled else { throw PipelineError.forbidden("this organisation does not assign conversations (staff_access = all)") }
            return .assigned(id: id, room: room, user: user)
        case .availability(let org):
            guard let availability else { throw PipelineError.internal }
            return .availability(
                id: id, org: org, open: availability.open, staffAvailable: availability.staffAvailable, opensAt: availability.opensAt,
                hours: availability.hours, timeZone: availability.timeZone)
        case .presence:
            guard let presence else { throw PipelineError.internal }
            return .presence(id: id, presence)
        case .team:
            return .team(id: id, members: team)
        case .claim(let room):
            guard let user = conversation?.assignedTo else { throw PipelineError.internal }
            return .claimed(id: id, room: room, user: user)
        case .transfer(let room, let to, _):
            return .transferred(id: id, room: room, to: to)
        case .read:
            return nil
        case .replies:
            return .replies(id: id, replies: replies)
        case .attach, .download, .api:
            // HTTP requests: the hub answers them from the outcome's fields.
            return nil
        }
    }
}
