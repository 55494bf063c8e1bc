import CareHubCore
import Foundation

/// Commits messages and conversation state durably, and reads history, room lists and canned replies.
///
/// A `send` is committed before the chain continues, so fan-out and the `ack` happen only for
/// stored messages. In a HIPAA organisation the stage refuses to store text that is not sealed,
/// and commits the message's `phi.delivered` record (the room's live readers) in the same
/// transaction, so no reader receives it without a durable audit row and one commit serves both.
public struct StoreStage: Stage {
    /// Parameters of `stage store`.
    public struct Configuration: StageConfiguration {
        /// `history=`: how many past messages a reader receives on subscribe or resume (default 200).
        public var history: Int

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            history = try parameters.integer("history", in: 0...10_000, default: 200)
        }

        public var summary: [String] { ["history=\(history)"] }
    }

    public static let name = "store"
    public static let rules = StageRules(after: ["auth", "idle", "encrypt"], required: true, requiredInHIPAA: true)

    private let configuration: Configuration
    private let org: OrgSettings
    private let environment: StageEnvironment
    private let lastSweep = RevalidationClock()

    /// How long an upload may stay unfinished before its chunks are erased: far longer than any
    /// upload that still makes progress (the HTTP layer closes one that stalls for 30 s), so only
    /// what a stopped hub left behind is swept.
    static let abandonedUploadAge: TimeInterval = 6 * 3600

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.configuration = configuration
        self.org = org
        self.environment = environment
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        switch request.frame {
        case .send(let room, let text):
            guard let session = request.session, let conversation = request.conversation else { throw PipelineError.internal }
            guard !conversation.hasEnded else {
                throw PipelineError(.conversationEnded, "conversation \(room) has ended")
            }
            let body: MessageBody
            if let sealed = request.sealed {
                body = .sealed(sealed)
            } else if org.hipaa {
                throw PipelineError.internal
            } else {
                body = .plain(text)
            }
            let seq = try await environment.sequence(of: request, in: room)
            var forwarded = request
            forwarded.seq = seq
            // HIPAA: who the message is released to is committed with it, before anyone gets it.
            var events: [AuditEvent] = []
            if org.hipaa {
                let recipients = environment.liveRecipients(
                    environment.rooms.members(of: room), org: org, room: room, conversation: request.conversation,
                    excluding: request.connection).recipients
                if !recipients.isEmpty {
                    events.append(StageEnvironment.deliveryEvent(of: request, seq: seq, room: room, org: org.id, to: recipients))
                }
                forwarded.releasedTo = Set(recipients.map(\.connection))
            }
            try await environment.messages.append(
                StoredMessage(conversation: room, seq: seq, sender: session.principal.displayName, at: request.receivedAt, body: body),
                recording: events)
            var outcome = try await next(forwarded)
            outcome.seq = seq
            return outcome

        case .end(let room):
            // The stages after this one see the record as it was: they act on the chat's end.
            var ended = request.conversation
            if request.conversation?.hasEnded == false {
                try await environment.conversations.markEnded(room, at: request.receivedAt)
                ended?.endedAt = request.receivedAt
            }
            var outcome = try await next(request)
            outcome.conversation = ended
            return outcome

        case .hello(_, _, let profile, _):
            if request.startsConversation, let profile, let room = request.conversation?.id {
                if let sealed = request.sealedProfile {
                    try await environment.conversations.setProfile(room, .sealed(sealed))
                } else if org.hipaa {
                    throw PipelineError.internal
                } else {
                    try await environment.conversations.setProfile(room, .plain(String(decoding: profile.json, as: UTF8.self)))
                }
            }
            return try await withHistory(request, next: next)

        case .subscribe(let room):
            var outcome = try await withHistory(request, next: next)
            outcome.profile = try await environment.conversations.profile(of: room)
            if let handoff = try await environment.conversations.handoff(of: room) {
                outcome.handoff = handoff
                outcome.handoffFromName = try await environment.users.user(org: org.id, name: handoff.from)?.displayName
            }
            return outcome

        case .rooms(let visitors):
            var outcome = try await next(request)
            var conversations = try await environment.conversations.list(org: org.id, limit: 200)
            if let principal = request.session?.principal {
                conversations = conversations.filter { org.mayRead($0, as: principal) }
            }
            outcome.rooms = await summaries(of: conversations)
            if visitors {
                for conversation in conversations {
                    if let profile = try await environment.conversations.profile(of: conversation.id) {
                        outcome.roomProfiles[conversation.id] = profile
                    }
                }
            }
            outcome.orgName = org.displayName
            return outcome

        case .api(let call):
            return try await api(call, request, next: next)

        case .assign(let room, let user):
            guard org.staffAccess == .assigned else {
                throw PipelineError.forbidden("this organisation does not assign conversations (staff_access = all)")
            }
            guard let session = request.session else { throw PipelineError.internal }
            let (before, after) = try await environment.assignments.assign(
                room, in: org.id, to: user, by: session.principal.displayName, address: request.peer, at: environment.clock.now)
            var forwarded = request
            forwarded.replaced = before
            forwarded.conversation = after
            var outcome = try await next(forwarded)
            outcome.handled = true
            return outcome

        case .claim(let room):
            return try await claim(room, request, next: next)

        case .transfer(let room, let to, let note):
            return try await transfer(room, to: to, note: note, request, next: next)

        case .read(let room, let seq):
            let last = try await environment.messages.history(of: room, limit: 1).last?.seq ?? 0
            guard seq <= last else {
                throw PipelineError(.invalidField, "field 'seq' is beyond the room's last message (\(last))")
            }
            _ = try await environment.conversations.markRead(room, seq: seq)
            return try await next(request)

        case .team:
            var outcome = try await next(request)
            let live = PresenceBoard.members(of: environment.sessions.sessions(of: org.id), at: environment.clock.now)
            outcome.team = try await environment.users.list(org: org.id).filter { !$0.disabled }.map { account in
                TeamMember(user: account.name, name: account.displayName ?? account.name, role: account.role, state: live[account.name]?.state ?? .offline)
            }
            return outcome

        case .transcript:
            return try await next(request)

        case .replies:
            var outcome = try await next(request)
            outcome.replies = try await environment.replies.list(org: org.id)
            return outcome

        case .attach(let room, let upload):
            return try await attach(request, room: room, upload: upload, next: next)

        case .download(let id):
            return try await download(request, id: id, next: next)

        case .login, .sso, .ssoDevice, .unsubscribe, .typing, .activity, .logout, .admin, .availability, .presence:
            return try await next(request)
        }
    }

    /// Each conversation's summary as staff lists show it.
    private func summaries(of conversations: [Conversation]) async -> [RoomSummary] {
        var summaries: [RoomSummary] = []
        summaries.reserveCapacity(conversations.count)
        for conversation in conversations {
            let activity = await environment.roomActivity(of: conversation, event: .message)
            summaries.append(RoomSummary(
                room: conversation.id, startedAt: conversation.startedAt, ended: conversation.hasEnded,
                assignedTo: conversation.assignedTo, activity: activity))
        }
        return summaries
    }

    /// The most messages a transcript read returns.
    public static let transcriptLimit = 10_000

    /// HTTP API reads: what the store holds, for the encrypt stage to open on the way back.
    private func api(_ call: APICall, _ request: Request, next: Next) async throws -> Outcome {
        var outcome = try await next(request)
        switch call {
        case .organisation, .open, .auditExport, .webhooks, .createWebhook, .deleteWebhook:
            break
        case .queue:
            await environment.loadQueue(of: org)
            let waiting = environment.frontDesk.queue.waiting(in: org.id)
            let live = PresenceBoard.members(of: environment.sessions.sessions(of: org.id), at: environment.clock.now)
            outcome.queue = QueueFigures(
                waiting: waiting.count, oldestWaitingSince: waiting.first?.since, staffOnline: live.count,
                staffAvailable: live.values.filter { $0.state == .available }.count)
        case .conversations(let filter, let limit):
            var conversations = try await environment.conversations.page(org: org.id, filter: filter, limit: limit)
            if let principal = request.session?.principal {
                conversations = conversations.filter { org.mayRead($0, as: principal) }
            }
            outcome.conversations = conversations
            outcome.rooms = await summaries(of: conversations)
        case .conversation:
            guard let conversation = request.conversation else { throw PipelineError.internal }
            outcome.conversations = [conversation]
            outcome.rooms = await summaries(of: [conversation])
        case .messages(let room, let after, let limit):
            try await withMessages(try await environment.messages.messages(of: room, after: after, limit: limit), &outcome)
        case .transcript(let room):
            try await withMessages(try await environment.messages.messages(of: room, after: 0, limit: Self.transcriptLimit), &outcome)
        case .form(let room):
            outcome.profile = try await environment.conversations.profile(of: room)
        }
        return outcome
    }

    private func withMessages(_ messages: [StoredMessage], _ outcome: inout Outcome) async throws {
        outcome.history = messages
        outcome.senderNames = try await senderNames(in: messages)
        for id in messages.compactMap(\.attachment) {
            if let attachment = try await environment.attachments.attachment(id) { outcome.historyAttachments[id] = attachment }
        }
    }

    /// "I'll take it": the room becomes the sender's unless a colleague has it already, in one
    /// step in the store, so two colleagues claiming at once cannot both have it.
    private func claim(_ room: ConversationID, _ request: Request, next: Next) async throws -> Outcome {
        guard let session = request.session, let conversation = request.conversation else { throw PipelineError.internal }
        guard !conversation.hasEnded else { throw PipelineError(.conversationEnded, "conversation \(room) has ended") }
        let user = session.principal.displayName
        guard let holder = try await environment.conversations.claim(room, by: user) else { throw PipelineError.notFound(room) }
        guard holder == user else {
            let name = try await environment.users.user(org: org.id, name: holder)?.displayName ?? holder
            throw PipelineError(.conflict, "this chat is already taken by \(name)")
        }
        if conversation.assignedTo != user {
            try await environment.audit.record(AuditEvent(
                at: environment.clock.now, org: org.id, actor: user, address: request.peer, action: "conversation.claimed",
                target: room.rawValue, detail: "previous=none"))
        }
        var forwarded = request
        forwarded.replaced = conversation
        forwarded.conversation?.assignedTo = user
        var outcome = try await next(forwarded)
        outcome.conversation = forwarded.conversation
        return outcome
    }

    /// A hand-over to a colleague or back to the queue, with the note stored for the colleague.
    private func transfer(_ room: ConversationID, to: String?, note: String?, _ request: Request, next: Next) async throws -> Outcome {
        guard let session = request.session, let conversation = request.conversation else { throw PipelineError.internal }
        guard !conversation.hasEnded else { throw PipelineError(.conversationEnded, "conversation \(room) has ended") }
        if let to {
            guard let account = try await environment.users.user(org: org.id, name: to), !account.disabled else {
                throw PipelineError(.notFound, "no enabled staff account '\(to)' in this organisation")
            }
        }
        var body: MessageBody?
        if let sealed = request.sealedNote {
            body = .sealed(sealed)
        } else if let note {
            guard !org.hipaa else { throw PipelineError.internal }
            body = .plain(note)
        }
        let user = session.principal.displayName
        try await environment.conversations.assign(room, to: to)
        try await environment.conversations.setHandoff(room, Handoff(from: user, to: to, at: request.receivedAt, note: body))
        try await environment.audit.record(AuditEvent(
            at: environment.clock.now, org: org.id, actor: user, address: request.peer, action: "conversation.transferred",
            target: room.rawValue, detail: "from=\(conversation.assignedTo ?? "none") to=\(to ?? "queue") note=\(note == nil ? "no" : "yes")"))
        var forwarded = request
        forwarded.replaced = conversation
        forwarded.conversation?.assignedTo = to
        var outcome = try await next(forwarded)
        outcome.conversation = forwarded.conversation
        return outcome
    }

    /// Join first (fan-out, further down), then read: a message committed in between is both in
    /// the history and delivered live, and readers de-duplicate by seq.
    private func withHistory(_ request: Request, next: Next) async throws -> Outcome {
        var outcome = try await next(request)
        if let room = request.conversation?.id, configuration.history > 0 {
            outcome.history = try await environment.messages.history(of: room, limit: configuration.history)
            outcome.senderNames = try await senderNames(in: outcome.history)
            for id in outcome.history.compactMap(\.attachment) {
                if let attachment = try await environment.attachments.attachment(id) { outcome.historyAttachments[id] = attachment }
            }
        }
        return outcome
    }

    // MARK: Attachments

    /// Once a minute: erases uploads a stopped hub left unfinished.
    public func tick(at now: Date) async {
        guard org.attachments != nil, lastSweep.due(at: now, every: 60) else { return }
        let store = environment.attachments
        guard let abandoned = try? await store.abandoned(before: now.addingTimeInterval(-Self.abandonedUploadAge), limit: 100) else { return }
        for id in abandoned { try? await store.discard(id) }
    }

    /// Stores an upload as it arrives, in chunks of ``Attachment/chunkSize`` committed one by one
    /// (sealed where the encrypt stage gave a sealer), its type read from its first bytes, then
    /// the message that carries it with its delivery record in one commit. Anything that goes
    /// wrong before that commit (the upload cut off, too large, the wrong type, refused by the
    /// scanner) erases what was stored of it.
    private func attach(_ request: Request, room: ConversationID, upload: AttachmentUpload, next: Next) async throws -> Outcome {
        guard let session = request.session, let conversation = request.conversation else { throw PipelineError.internal }
        guard let accepted = org.attachments else { throw PipelineError.forbidden("this organisation does not take attachments") }
        guard !conversation.hasEnded else { throw PipelineError(.conversationEnded, "conversation \(room) has ended") }
        guard upload.declaredSize <= accepted.maxBytes else { throw Self.tooLarge(accepted) }
        if org.hipaa && (request.chunkSealer == nil || request.sealedName == nil || request.sealed == nil) { throw PipelineError.internal }
        let seq = try await environment.sequence(of: request, in: room)
        let store = environment.attachments
        var record = Attachment(
            id: upload.id, org: org.id, conversation: room, sender: session.principal.displayName,
            name: request.sealedName.map { .sealed($0) } ?? .plain(upload.name), contentType: "", at: request.receivedAt)
        try await store.begin(record)
        var finished = false
        do {
            var pending: [UInt8] = []
            var index = 0
            var size = 0
            var type: String?
            func write(_ bytes: [UInt8], last: Bool) async throws {
                let chunk: AttachmentChunk = if let sealer = request.chunkSealer {
                    .sealed(try await sealer(index, bytes, last))
                } else {
                    .plain(bytes)
                }
                try await store.appendChunk(upload.id, index: index, chunk)
                index += 1
            }
            func sniff() throws {
                guard type == nil else { return }
                guard let found = ContentSniffer.type(of: pending), accepted.accepts(found) else { throw Self.unsupportedType(accepted) }
                type = found
            }
            while let piece = try await upload.bytes.next() {
                size += piece.count
                guard size <= accepted.maxBytes else { throw Self.tooLarge(accepted) }
                pending += piece
                if type == nil && pending.count >= ContentSniffer.prefixLength { try sniff() }
                // A chunk is known not to be the last only once a byte beyond it has arrived.
                while pending.count > Attachment.chunkSize {
                    try await write(Array(pending.prefix(Attachment.chunkSize)), last: false)
                    pending.removeFirst(Attachment.chunkSize)
                }
            }
            try sniff()
            try await write(pending, last: true)
            record.size = size
            record.contentType = type ?? ""
            record.state = request.attachmentCheck?.result == .held ? .held : .ready
            record.seq = seq
            var forwarded = request
            forwarded.seq = seq
            var events: [AuditEvent] = []
            if org.hipaa {
                let recipients = environment.liveRecipients(
                    environment.rooms.members(of: room), org: org, room: room, conversation: conversation, excluding: request.connection).recipients
                if !recipients.isEmpty {
                    events.append(StageEnvironment.deliveryEvent(of: request, seq: seq, room: room, org: org.id, to: recipients))
                }
                forwarded.releasedTo = Set(recipients.map(\.connection))
            }
            let body: MessageBody = request.sealed.map { .sealed($0) } ?? .plain("")
            try await store.finish(
                upload.id, state: record.state, size: size, contentType: record.contentType,
                message: StoredMessage(conversation: room, seq: seq, sender: record.sender, at: request.receivedAt, body: body, attachment: upload.id),
                recording: events)
            finished = true
            forwarded.storedAttachment = record
            var outcome = try await next(forwarded)
            outcome.seq = seq
            record.name = .plain(upload.name)
            outcome.attachment = record
            return outcome
        } catch {
            if !finished { try? await store.discard(upload.id) }
            throw error
        }
    }

    /// The stored attachment a reader asked for, to be read chunk by chunk; the encrypt stage
    /// opens it on the way back.
    private func download(_ request: Request, id: AttachmentID, next: Next) async throws -> Outcome {
        guard let attachment = try await environment.attachments.attachment(id), attachment.org == org.id, attachment.state != .receiving else {
            throw Self.noAttachment
        }
        guard attachment.state == .ready else {
            throw PipelineError(.attachmentHeld, "this file is waiting to be checked for malware; it can be opened once it has been")
        }
        var outcome = try await next(request)
        let store = environment.attachments
        outcome.download = AttachmentDownload(attachment: attachment, chunkCount: Attachment.chunkCount(forSize: attachment.size)) { index in
            guard let chunk = try await store.chunk(id, index: index) else { throw Self.noAttachment }
            return chunk
        }
        return outcome
    }

    /// The answer for an attachment that is not there for this reader: unknown, of another
    /// organisation, or erased with its chat.
    static let noAttachment = PipelineError(.notFound, "no such attachment in this organisation (it may have been erased with its chat)")

    static func tooLarge(_ accepted: OrgAttachments) -> PipelineError {
        PipelineError(.tooLarge, "the file is larger than this organisation accepts (\(ByteCountText.describe(accepted.maxBytes)))")
    }

    static func unsupportedType(_ accepted: OrgAttachments) -> PipelineError {
        PipelineError(.unsupportedType, "the file's contents are not of a type this organisation accepts (\(accepted.types.joined(separator: ", ")))")
    }

    /// The display names of the staff who wrote `history`, by login (one account read per sender).
    private func senderNames(in history: [StoredMessage]) async throws -> [String: String] {
        var names: [String: String] = [:]
        for sender in Set(history.map(\.sender)) where sender != Principal.visitorName {
            // An integration writes in the organisation's name.
            if sender.hasPrefix("integration:") {
                names[sender] = org.displayName
                continue
            }
            if let name = try await environment.users.user(org: org.id, name: sender)?.displayName { names[sender] = name }
        }
        return names
    }
}
