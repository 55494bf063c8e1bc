import CareHubCore
import Foundation
import Synchronization

/// Delivers committed messages and room events to the room's authorised, live members, and raises
/// notifications for rooms no staff member is watching.
///
/// A member receives a frame only if its session still exists, is live under its idle policy,
/// belongs to this organisation, and may access the room (staff, or the room's own visitor).
/// Notifications in a HIPAA organisation never carry message content; the config check refuses
/// `notify=preview` there.
public final class FanoutStage: Stage {
    /// Parameters of `stage fanout`.
    public struct Configuration: StageConfiguration {
        /// `notify=none|count|preview`: what staff are told about messages in unwatched rooms
        /// (default `count` when `via=` names integrations, else `none`). `count` is the
        /// organisation, a count and a console link; no content.
        public var notify: String
        /// `preview_chars=`: how much text a preview may show (default 40; non-HIPAA only).
        public var previewCharacters: Int
        /// `via=a,b`: the webhook and e-mail integrations notifications go to.
        public var via: [String]

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            via = parameters.string("via").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
            notify = try parameters.choice("notify", ["none", "count", "preview"], default: via.isEmpty ? "none" : "count")
            previewCharacters = try parameters.integer("preview_chars", in: 1...200, default: 40)
            if org.hipaa && notify == "preview" {
                throw parameters.error("HIPAA organisation '\(org.id)' may not put message text in notifications; expected notify=count or notify=none")
            }
            if notify != "none" && via.isEmpty {
                throw parameters.error("notify=\(notify) needs via=INTEGRATION[,INTEGRATION…] naming where notifications go")
            }
            if notify == "none" && !via.isEmpty {
                throw parameters.error("via= has no effect with notify=none")
            }
            for name in via {
                guard let integration = org.integration(name) else {
                    throw parameters.error("via names '\(name)', which is not an integration of [org \(org.id)]")
                }
                if integration.kind == .api {
                    throw parameters.error("via names '\(name)', an API client; notifications go to webhook and email integrations")
                }
                if integration.kind == .email && integration.to == nil {
                    throw parameters.error("e-mail integration '\(name)' needs to=ADDRESS to receive notifications")
                }
            }
        }

        public var summary: [String] {
            var words = ["notify=\(notify)"]
            if notify == "preview" { words.append("preview_chars=\(previewCharacters)") }
            if !via.isEmpty { words.append("via=\(via.joined(separator: ","))") }
            return words
        }
    }

    public static let name = "fanout"
    public static let rules = StageRules(after: ["auth", "idle", "encrypt", "store", "purge"], required: true, requiredInHIPAA: true)

    private let configuration: Configuration
    private let org: OrgSettings
    private let environment: StageEnvironment

    public required init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.configuration = configuration
        self.org = org
        self.environment = environment
    }

    /// Presence changes by any path (expiry, revocation, a closed connection) are announced
    /// within a second.
    public func tick(at now: Date) async {
        environment.announcePresence(org: org.id)
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        let rooms = environment.rooms
        var followUps: [ServerFrame] = []
        var presence: PresenceBoard.Member?
        switch request.frame {
        case .hello:
            guard let session = request.session, let conversation = request.conversation else { break }
            rooms.join(conversation.id, member: RoomMember(connection: request.connection, sessionToken: session.token))
            await environment.loadQueue(of: org)
            let queue = environment.frontDesk.queue
            if request.startsConversation { queue.enqueue(conversation.id, org: org.id, since: conversation.startedAt) }
            // The visitor's place follows its `welcome`; moves after that come as they happen.
            let position = queue.position(of: conversation.id, org: org.id)
            if position > 0 {
                followUps.append(.queue(room: conversation.id, position: position))
                queue.told(conversation.id, org: org.id, position: position)
            }
            if request.startsConversation {
                // Under staff_access=assigned only admins may read a new room (nobody is assigned yet).
                let staff = environment.liveRecipients(
                    rooms.staffConnections(of: org.id), org: org, room: conversation.id, conversation: conversation, excluding: nil)
                rooms.deliver(.roomOpened(room: conversation.id, at: conversation.startedAt), to: staff.recipients.map(\.connection))
                environment.activity.record(conversation.id, [])
                await environment.announce(conversation, event: .opened, org: org)
                await raise(.conversationOpened, room: conversation.id, at: conversation.startedAt)
            }
        case .subscribe(let room):
            guard let session = request.session else { break }
            rooms.join(room, member: RoomMember(connection: request.connection, sessionToken: session.token))
            environment.local.unread.clear(room)
        case .unsubscribe(let room):
            rooms.leave(room, connection: request.connection)
        case .logout:
            rooms.leaveAll(connection: request.connection)
        case .send(let room, let text):
            guard let seq = request.seq, let session = request.session else { throw PipelineError.internal }
            if request.startsConversation, let conversation = request.conversation {
                // An integration opened it to a patient: staff see it appear as they see a visitor's.
                let staff = environment.liveRecipients(
                    rooms.staffConnections(of: org.id), org: org, room: room, conversation: conversation, excluding: nil)
                rooms.deliver(.roomOpened(room: room, at: conversation.startedAt), to: staff.recipients.map(\.connection))
                environment.activity.record(room, [])
                await raise(.conversationOpened, room: room, at: conversation.startedAt)
            }
            let message = ServerFrame.message(
                room: room, seq: seq, from: session.principal.displayName, text: text, at: request.receivedAt, fromName: session.shownName)
            await deliver(message, of: request, room: room, seq: seq, session: session, preview: text)
            await raise(.messageCreated, room: room, seq: seq, at: request.receivedAt)
        case .attach(let room, let upload):
            guard let seq = request.seq, let session = request.session, let stored = request.storedAttachment else { throw PipelineError.internal }
            // Live readers learn the file name from the upload itself; the store keeps it sealed.
            // Every socket of the room hears of it, the sender's too: the upload came over HTTP.
            let message = ServerFrame.message(
                room: room, seq: seq, from: session.principal.displayName, text: "", at: request.receivedAt, fromName: session.shownName,
                attachment: AttachmentView(id: upload.id, name: upload.name, size: stored.size, contentType: stored.contentType, state: stored.state))
            await deliver(message, of: request, room: room, seq: seq, session: session, preview: Self.attachmentPreview)
            await raise(.messageCreated, room: room, seq: seq, at: request.receivedAt)
        case .end(let room):
            let members = readers(rooms.members(of: room), room: room, conversation: request.conversation, excluding: request.connection)
            rooms.deliver(.ended(id: nil, room: room), to: members.recipients.map(\.connection))
            _ = rooms.close(room)
            environment.local.unread.clear(room)
            environment.leaveQueue(room, org: org.id)
            if var conversation = request.conversation, !conversation.hasEnded {
                conversation.endedAt = request.receivedAt
                await environment.announce(conversation, event: .ended, org: org)
                await raise(.conversationEnded, room: room, at: request.receivedAt)
            }
        case .typing(let room):
            guard let session = request.session else { throw PipelineError.internal }
            let recipients = readers(rooms.members(of: room), room: room, conversation: request.conversation, excluding: request.connection)
            rooms.deliver(.typing(room: room, from: session.principal.displayName, fromName: session.shownName), to: recipients.recipients.map(\.connection))
        case .assign(let room, let user):
            // The record as it is now: assigned to `user`. Whoever may no longer read the room
            // (the previous assignee) leaves it at once; the new one is told.
            var assigned = request.conversation ?? Conversation(id: room, org: org.id, startedAt: request.receivedAt)
            assigned.assignedTo = user
            await environment.assignmentChanged(room, before: request.replaced, after: assigned, org: org, excluding: request.connection)
        case .claim(let room):
            guard let claimed = request.conversation else { throw PipelineError.internal }
            environment.leaveQueue(room, org: org.id)
            await environment.announce(claimed, event: .claimed, org: org)
        case .transfer(let room, let to, let note):
            guard let session = request.session, let after = request.conversation, let before = request.replaced else { throw PipelineError.internal }
            environment.dropLostReaders(of: room, before: before, after: after, org: org)
            _ = readers(rooms.members(of: room), room: room, conversation: after, excluding: nil)
            if let to {
                environment.leaveQueue(room, org: org.id)
                let handoff = HandoffView(
                    from: session.principal.displayName, fromName: session.shownName ?? session.principal.displayName, to: to, note: note,
                    at: request.receivedAt)
                rooms.deliver(.handedOver(room: room, handoff), to: environment.connections(ofUser: to, in: org.id, excluding: request.connection))
            } else {
                environment.frontDesk.queue.enqueue(room, org: org.id, since: request.receivedAt)
                environment.announceQueue(of: org.id)
            }
            await environment.announce(after, event: .transferred, org: org)
        case .read(let room, let seq):
            // Receipts only grow; the record the request read may be a second old, so a repeat is harmless.
            if seq > request.conversation?.readSeq ?? 0 {
                rooms.deliver(.read(room: room, seq: seq), to: environment.visitorConnections(of: room))
            }
        case .presence(let state):
            guard let session = request.session else { throw PipelineError.internal }
            environment.sessions.update(session.token) { $0.presence = state }
            environment.announcePresence(org: org.id, excluding: request.connection)
            let user = session.principal.displayName
            presence = PresenceBoard.members(of: environment.sessions.sessions(of: org.id), at: environment.clock.now)[user]
                ?? PresenceBoard.Member(user: user, name: session.shownName ?? user, state: state)
        case .login, .sso:
            environment.announcePresence(org: org.id)
        case .rooms, .activity, .transcript, .admin, .availability, .team, .replies, .attach, .download, .api, .ssoDevice:
            break
        }
        var outcome = try await next(request)
        outcome.followUps += followUps
        if let presence { outcome.presence = presence }
        return outcome
    }

    /// What a notification's preview says of a file: never its name or content.
    static let attachmentPreview = "(sent a file)"

    /// Delivers a new message to the room's readers (in a HIPAA organisation only to those on
    /// its delivery record), updates the room's activity and queue, and notifies when no staff
    /// member is watching.
    private func deliver(_ message: ServerFrame, of request: Request, room: ConversationID, seq: UInt64, session: Session, preview: String) async {
        let rooms = environment.rooms
        let recipients = readers(rooms.members(of: room), room: room, conversation: request.conversation, excluding: request.connection)
            .recipients
        if org.hipaa {
            // The store stage committed the delivery record of the readers it saw; a reader
            // who joined since is recorded before it receives the message. If that record
            // cannot be written it does not receive it live (it reads it with the history).
            let recorded = request.releasedTo ?? []
            let late = recipients.filter { !recorded.contains($0.connection) }
            rooms.deliver(message, to: recipients.filter { recorded.contains($0.connection) }.map(\.connection))
            if !late.isEmpty,
               (try? await environment.audit.record(StageEnvironment.deliveryEvent(of: request, seq: seq, room: room, org: org.id, to: late))) != nil {
                rooms.deliver(message, to: late.map(\.connection))
            }
        } else {
            rooms.deliver(message, to: recipients.map(\.connection))
        }
        if let conversation = request.conversation {
            await environment.fillActivity(of: conversation)
            environment.activity.record(room, seq: seq, from: session.principal.isVisitor ? .visitor : .staff, at: request.receivedAt)
            await environment.announce(conversation, event: .message, org: org)
        }
        // The clinic's answer (staff, or an integration writing for it) takes the chat out of the queue.
        if !session.principal.isVisitor { environment.leaveQueue(room, org: org.id) }
        let staffWatching = recipients.contains { $0.session.principal.isStaff }
        if !staffWatching && session.principal.isVisitor {
            await notify(room: room, from: session.principal.displayName, text: preview, at: request.receivedAt)
        }
    }

    /// The room's readers now, among its members; members who lost the right to read it are
    /// taken out and told.
    private func readers(_ members: [RoomMember], room: ConversationID, conversation: Conversation?, excluding sender: ConnectionID?) -> Readers {
        let readers = environment.liveRecipients(members, org: org, room: room, conversation: conversation, excluding: sender)
        environment.evict(readers.revoked, from: room)
        return readers
    }

    /// Queues a webhook event: ids, a sequence number and a time, never content, in any
    /// organisation. The message or change is already committed; a failure to queue is reported
    /// to the hub, which logs it, and the request goes on.
    private func raise(_ kind: WebhookEventKind, room: ConversationID, seq: UInt64? = nil, at: Date) async {
        do {
            try await environment.webhooks.raise(WebhookEvent(kind, org: org.id, conversation: room, seq: seq, at: at))
        } catch {
            environment.events.emit(.webhookFailed(org: org.id, conversation: room))
        }
    }

    private func notify(room: ConversationID, from: String, text: String, at: Date) async {
        guard configuration.notify != "none" else { return }
        let count = environment.local.unread.add(room)
        var preview: String?
        if configuration.notify == "preview" && !org.hipaa {
            preview = text.count > configuration.previewCharacters ? text.prefix(configuration.previewCharacters) + "…" : text
        }
        let notification = StaffNotification(
            org: org.id, conversation: room, unread: count, preview: preview, from: preview == nil ? nil : from, at: at)
        do {
            try await environment.notifier.enqueue(notification, via: configuration.via)
        } catch {
            // The message is already committed and will be acknowledged; the hub logs the failure.
            environment.events.emit(.notificationFailed(org: org.id, conversation: room))
        }
    }
}
