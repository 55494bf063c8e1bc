import CareHubCore
import Foundation

/// Seals message text with AES-256-GCM under the organisation's key before anything stores it,
/// and opens stored text only on its way back to an authorised reader.
///
/// The associated data binds organisation, conversation, sequence number and sender, so a
/// ciphertext copied to another row, conversation or organisation, or edited, does not open.
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

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.org = org
        self.environment = environment
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        var forwarded = request
        if case .send(let room, let text) = request.frame, let session = request.session {
            let seq: UInt64
            if let reserved = request.seq {
                seq = reserved
            } else {
                seq = try await environment.messages.reserveSequence(in: room)
            }
            let aad = Self.associatedData(org: org.id, conversation: room, seq: seq, sender: session.principal.displayName)
            forwarded.seq = seq
            forwarded.sealed = try await environment.cipher.seal(Array(text.utf8), scope: .conversation(org.id, room), associatedData: aad)
        }
        if case .hello(_, _, let profile, _) = request.frame, request.startsConversation, let room = request.conversation?.id {
            if let profile {
                forwarded.sealedProfile = try await environment.cipher.seal(
                    profile.json, scope: .conversation(org.id, room), associatedData: Self.profileAssociatedData(org: org.id, conversation: room))
            } else {
                // The key is made while the visitor is welcomed, not when they first write.
                try await environment.cipher.prepare(.conversation(org.id, room))
            }
        }
        if case .transfer(let room, _, let note?) = request.frame {
            forwarded.sealedNote = try await environment.cipher.seal(
                Array(note.utf8), scope: .conversation(org.id, room), associatedData: Self.noteAssociatedData(org: org.id, conversation: room))
        }
        var outcome = try await next(forwarded)
        if case .sealed(let sealed)? = outcome.handoff?.note, let room = request.frame.room {
            let bytes = try? await environment.cipher.open(
                sealed, scope: .conversation(org.id, room), associatedData: Self.noteAssociatedData(org: org.id, conversation: room))
            outcome.handoff?.note = bytes.map { .plain(String(decoding: $0, as: UTF8.self)) } ?? .unreadable
        }
        if case .sealed(let sealed)? = outcome.profile, let room = request.frame.room {
            let bytes = try? await environment.cipher.open(
                sealed, scope: .conversation(org.id, room), associatedData: Self.profileAssociatedData(org: org.id, conversation: room))
            outcome.profile = bytes.map { .plain(String(decoding: $0, as: UTF8.self)) } ?? .unreadable
        }
        if !outcome.roomProfiles.isEmpty {
            // A room list shows each visitor's pre-chat name and reason: opened for this reader, on the record.
            for (room, body) in outcome.roomProfiles {
                guard case .sealed(let sealed) = body else { continue }
                let bytes = try? await environment.cipher.open(
                    sealed, scope: .conversation(org.id, room), associatedData: Self.profileAssociatedData(org: org.id, conversation: room))
                outcome.roomProfiles[room] = bytes.map { .plain(String(decoding: $0, as: UTF8.self)) } ?? .unreadable
            }
            if let session = request.session {
                let rooms = outcome.roomProfiles.keys.map(\.rawValue).sorted()
                try await environment.audit.record(AuditEvent(
                    at: environment.clock.now, org: org.id, actor: session.principal.displayName, address: request.peer,
                    action: "phi.read", target: "rooms", detail: "profiles=\(rooms.count) rooms=\(rooms.joined(separator: ","))"))
            }
        }
        if !outcome.history.isEmpty {
            var opened: [StoredMessage] = []
            opened.reserveCapacity(outcome.history.count)
            for message in outcome.history { opened.append(await open(message)) }
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

    /// Seals what an organisation stored in plain text before it entered HIPAA mode: every
    /// message and pre-chat form of its conversations not yet purged (and forgets the address a
    /// visitor asked a transcript e-mail to go to, which HIPAA mode does not send), under its keys and with the
    /// same associated data as if they had been sealed when written, so that readers open them as
    /// any other. Runs again safely (only plain rows are touched); the message store leaves no
    /// plain copy in the files once each conversation is done.
    public static func sealStored(org: OrgID, environment: StageEnvironment) async throws -> (messages: Int, forms: Int) {
        var messages = 0
        var forms = 0
        for conversation in try await environment.conversations.unpurged(org: org, startedBefore: .distantFuture, limit: 1_000_000) {
            let scope = KeyScope.conversation(org, conversation.id)
            // A transcript e-mail is not sent in HIPAA mode; the patient's address is not kept.
            if conversation.transcriptTo != nil { try await environment.conversations.requestTranscript(conversation.id, to: nil) }
            if case .plain(let json)? = try await environment.conversations.profile(of: conversation.id) {
                let sealed = try await environment.cipher.seal(
                    Array(json.utf8), scope: scope, associatedData: profileAssociatedData(org: org, conversation: conversation.id))
                try await environment.conversations.setProfile(conversation.id, .sealed(sealed))
                forms += 1
            }
            if var handoff = try await environment.conversations.handoff(of: conversation.id), case .plain(let note)? = handoff.note {
                handoff.note = .sealed(try await environment.cipher.seal(
                    Array(note.utf8), scope: scope, associatedData: noteAssociatedData(org: org, conversation: conversation.id)))
                try await environment.conversations.setHandoff(conversation.id, handoff)
            }
            while true {
                let plain = try await environment.messages.plainMessages(of: conversation.id, limit: 500)
                var batch: [(seq: UInt64, body: SealedText)] = []
                for message in plain {
                    guard case .plain(let text) = message.body else { continue }
                    let aad = associatedData(org: org, conversation: conversation.id, seq: message.seq, sender: message.sender)
                    batch.append((message.seq, try await environment.cipher.seal(Array(text.utf8), scope: scope, associatedData: aad)))
                }
                messages += try await environment.messages.seal(batch, in: conversation.id)
                if plain.count < 500 { break }
            }
        }
        return (messages, forms)
    }

    private func open(_ message: StoredMessage) async -> StoredMessage {
        guard case .sealed(let sealed) = message.body else { return message }
        var opened = message
        let aad = Self.associatedData(org: org.id, conversation: message.conversation, seq: message.seq, sender: message.sender)
        if let bytes = try? await environment.cipher.open(sealed, scope: .conversation(org.id, message.conversation), associatedData: aad) {
            opened.body = .plain(String(decoding: bytes, as: UTF8.self))
        } else {
            opened.body = .unreadable
        }
        return opened
    }

    /// Binds a sealed hand-over note to its organisation and conversation.
    public static func noteAssociatedData(org: OrgID, conversation: ConversationID) -> [UInt8] {
        Array("carehub.handoff.v1|\(org.rawValue)|\(conversation.rawValue)".utf8)
    }

    /// Binds a sealed pre-chat form to its organisation and conversation.
    public static func profileAssociatedData(org: OrgID, conversation: ConversationID) -> [UInt8] {
        Array("carehub.profile.v1|\(org.rawValue)|\(conversation.rawValue)".utf8)
    }

    /// The associated data of a message: each field length-prefixed, so no two field lists encode alike.
    public static func associatedData(org: OrgID, conversation: ConversationID, seq: UInt64, sender: String) -> [UInt8] {
        var bytes = Array("carehub.message.v1".utf8)
        for field in [org.rawValue, conversation.rawValue, String(seq), sender] {
            let utf8 = Array(field.utf8)
            withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: utf8)
        }
        return bytes
    }
}
