import CareHubCore
import Foundation

/// Seals message text with AES-256-GCM under the organisation's key before anything stores it,
/// and opens stored text only on its way back to an authorised reader.
///
/// ``SealedHistory`` does the sealing and opening: its associated data binds organisation,
/// conversation, sequence number and sender, so a ciphertext copied to another row, conversation
/// or organisation, or edited, does not open.
public struct EncryptStage: Stage {
    /// Parameters of `stage encrypt`.
    public struct Configuration: StageConfiguration {
        /// `cipher=`: the only supported value is `aes-256-gcm` (the default).
        public var cipher: String

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            cipher = try parameters.choice("cipher", ["aes-256-gcm"], default: "aes-256-gcm")
        }

        public var summary: [String] { ["cipher=\(cipher)"] }
    }

    public static let name = "encrypt"
    public static let rules = StageRules(after: ["auth", "idle"], requiredInHIPAA: true)

    private let org: OrgSettings
    private let environment: StageEnvironment
    private let history: SealedHistory

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.org = org
        self.environment = environment
        history = SealedHistory(org: org.id, environment: environment)
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        var forwarded = request
        if case .attach(let room, let upload) = request.frame, let session = request.session {
            // The message carrying the file has no text of its own; its empty text is sealed
            // like any other, so every stored message of the organisation is.
            let seq = try await environment.sequence(of: request, in: room)
            forwarded.seq = seq
            forwarded.sealed = try await history.sealMessage("", in: room, seq: seq, sender: session.principal.displayName)
            forwarded.sealedName = try await history.sealAttachmentName(upload.name, id: upload.id, in: room)
            let history = self.history
            forwarded.chunkSealer = { index, bytes, last in
                try await history.sealAttachmentChunk(bytes, id: upload.id, index: index, last: last, in: room)
            }
        }
        if case .send(let room, let text) = request.frame, let session = request.session {
            let seq = try await environment.sequence(of: request, in: room)
            forwarded.seq = seq
            forwarded.sealed = try await history.sealMessage(text, in: room, seq: seq, sender: session.principal.displayName)
        }
        if case .hello(_, _, let profile, _) = request.frame, request.startsConversation, let room = request.conversation?.id {
            if let profile {
                forwarded.sealedProfile = try await history.sealProfile(profile.json, of: room)
            } else {
                // The key is made while the visitor is welcomed, not when they first write.
                try await environment.cipher.prepare(.conversation(org.id, room))
            }
        }
        if case .transfer(let room, _, let note?) = request.frame {
            forwarded.sealedNote = try await history.sealNote(note, of: room)
        }
        var outcome = try await next(forwarded)
        if let note = outcome.handoff?.note, let room = request.frame.room {
            outcome.handoff?.note = await history.openNote(note, of: room)
        }
        if let profile = outcome.profile, let room = request.frame.room {
            outcome.profile = await history.openProfile(profile, of: room)
        }
        if !outcome.roomProfiles.isEmpty {
            // A room list shows each visitor's pre-chat name and reason: opened for this reader, on the record.
            for (room, body) in outcome.roomProfiles {
                outcome.roomProfiles[room] = await history.openProfile(body, of: room)
            }
            if let session = request.session {
                let rooms = outcome.roomProfiles.keys.map(\.rawValue).sorted()
                try await environment.audit.record(AuditEvent(
                    at: environment.clock.now, org: org.id, actor: session.principal.displayName, address: request.peer,
                    action: "phi.read", target: "rooms", detail: "profiles=\(rooms.count) rooms=\(rooms.joined(separator: ","))"))
            }
        }
        if var download = outcome.download {
            let attachment = download.attachment
            download.attachment.name = await history.openAttachmentName(attachment.name, id: attachment.id, in: attachment.conversation)
            let stored = download.chunk
            let count = download.chunkCount
            let history = self.history
            download.chunk = { index in
                .plain(try await history.openAttachmentChunk(
                    try await stored(index), id: attachment.id, index: index, last: index == count - 1, in: attachment.conversation))
            }
            outcome.download = download
            // Every decryption for a reader is on the record: who fetched which file, when.
            if let session = request.session {
                try await environment.audit.record(AuditEvent(
                    at: environment.clock.now, org: org.id, actor: session.principal.displayName, address: request.peer,
                    action: "phi.read", target: attachment.conversation.rawValue, detail: "attachment=\(attachment.id.rawValue)"))
            }
        }
        for (id, attachment) in outcome.historyAttachments {
            outcome.historyAttachments[id]?.name = await history.openAttachmentName(attachment.name, id: id, in: attachment.conversation)
        }
        if !outcome.history.isEmpty {
            var opened: [StoredMessage] = []
            opened.reserveCapacity(outcome.history.count)
            for message in outcome.history { opened.append(await history.open(message)) }
            outcome.history = opened
            // Every decryption for a reader is on the record: who read which conversation, how much.
            if let session = request.session, let room = outcome.history.first?.conversation {
                try await environment.audit.record(AuditEvent(
                    at: environment.clock.now, org: org.id, actor: session.principal.displayName, address: request.peer,
                    action: "phi.read", target: room.rawValue,
                    detail: "messages=\(outcome.history.count) seq=\(outcome.history.first!.seq)-\(outcome.history.last!.seq)"))
            }
        }
        return outcome
    }

    /// What ``sealStored(org:environment:)`` sealed.
    public struct SealedRecords: Sendable, Hashable {
        public var messages = 0
        /// Pre-chat forms.
        public var forms = 0
        /// Attachments (their names and bytes).
        public var files = 0

        /// Nothing sealed.
        public init(messages: Int = 0, forms: Int = 0, files: Int = 0) {
            self.messages = messages
            self.forms = forms
            self.files = files
        }

        public static func + (lhs: SealedRecords, rhs: SealedRecords) -> SealedRecords {
            SealedRecords(messages: lhs.messages + rhs.messages, forms: lhs.forms + rhs.forms, files: lhs.files + rhs.files)
        }

        /// `messages=N forms=N files=N`, as the audit trail and the log record it.
        public var detail: String { "messages=\(messages) forms=\(forms) files=\(files)" }
    }

    /// How many chunks of a file are sealed in one commit.
    static let chunksPerCommit = 16

    /// Seals what an organisation stored in plain text before it entered HIPAA mode: every
    /// message, pre-chat form, hand-over note and attachment (name and bytes) of its conversations
    /// not yet purged (and forgets the address a visitor asked a transcript e-mail to go to, which
    /// HIPAA mode does not send), under its keys and with the same associated data as if they had
    /// been sealed when written, so that readers open them as any other. Runs again safely (only
    /// plain rows are touched); the stores leave no plain copy in the files once each
    /// conversation is done. A file is read and sealed a few chunks at a time, never whole.
    public static func sealStored(org: OrgID, environment: StageEnvironment) async throws -> SealedRecords {
        var messages = 0
        var forms = 0
        var files = 0
        let history = SealedHistory(org: org, environment: environment)
        for conversation in try await environment.conversations.unpurged(org: org, startedBefore: .distantFuture, limit: 1_000_000) {
            // A transcript e-mail is not sent in HIPAA mode; the patient's address is not kept.
            if conversation.transcriptTo != nil { try await environment.conversations.requestTranscript(conversation.id, to: nil) }
            if case .plain(let json)? = try await environment.conversations.profile(of: conversation.id) {
                let sealed = try await history.sealProfile(Array(json.utf8), of: conversation.id)
                try await environment.conversations.setProfile(conversation.id, .sealed(sealed))
                forms += 1
            }
            if var handoff = try await environment.conversations.handoff(of: conversation.id), case .plain(let note)? = handoff.note {
                handoff.note = .sealed(try await history.sealNote(note, of: conversation.id))
                try await environment.conversations.setHandoff(conversation.id, handoff)
            }
            while true {
                let plain = try await environment.messages.plainMessages(of: conversation.id, limit: 500)
                var batch: [(seq: UInt64, body: SealedText)] = []
                for message in plain {
                    guard case .plain(let text) = message.body else { continue }
                    batch.append((message.seq, try await history.sealMessage(text, in: conversation.id, seq: message.seq, sender: message.sender)))
                }
                messages += try await environment.messages.seal(batch, in: conversation.id)
                if plain.count < 500 { break }
            }
            for attachment in try await environment.attachments.plainAttachments(of: conversation.id) {
                try await sealFile(attachment, history: history, store: environment.attachments)
                files += 1
            }
        }
        return SealedRecords(messages: messages, forms: forms, files: files)
    }

    /// Seals one stored file's plain name and chunks.
    private static func sealFile(_ attachment: Attachment, history: SealedHistory, store: any AttachmentStore) async throws {
        let id = attachment.id
        let room = attachment.conversation
        let count = Attachment.chunkCount(forSize: attachment.size)
        var batch: [(index: Int, sealed: SealedText)] = []
        for index in 0..<count {
            if case .plain(let bytes)? = try await store.chunk(id, index: index) {
                batch.append((index, try await history.sealAttachmentChunk(bytes, id: id, index: index, last: index == count - 1, in: room)))
            }
            if batch.count == chunksPerCommit || (index == count - 1 && !batch.isEmpty) {
                try await store.sealChunks(id, batch)
                batch.removeAll()
            }
        }
        if case .plain(let name) = attachment.name {
            try await store.sealName(id, try await history.sealAttachmentName(name, id: id, in: room))
        }
    }
}
