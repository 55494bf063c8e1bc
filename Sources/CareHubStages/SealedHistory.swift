import CareHubCore
import Foundation

/// A conversation's stored text under the organisation's keys: messages, the pre-chat form and
/// the hand-over note, each sealed with AES-256-GCM under the conversation's data key and bound by
/// its associated data to its organisation and conversation (and a message also to its sequence
/// number and sender), so that a ciphertext copied to another row, conversation or organisation,
/// or edited, does not open.
///
/// The one place that seals and opens stored text: the encrypt stage seals on the way in and opens
/// for an authorised reader on the way out; the purge stage opens the transcript it exports.
///
/// ```swift
/// let history = SealedHistory(org: org.id, environment: environment)
/// let sealed = try await history.sealMessage("hello", in: room, seq: 7, sender: "visitor")
/// let opened = await history.open(StoredMessage(conversation: room, seq: 7, sender: "visitor", at: now, body: .sealed(sealed)))
/// // opened.body == .plain("hello"); with another seq or sender it is .unreadable
/// ```
public struct SealedHistory: Sendable {
    /// The organisation whose keys seal the text.
    public let org: OrgID
    private let cipher: any Cipher
    private let messages: any MessageStore
    private let conversations: any ConversationStore
    private let attachments: any AttachmentStore

    /// The organisation's stored text, through the environment's cipher and stores.
    public init(org: OrgID, environment: StageEnvironment) {
        self.org = org
        cipher = environment.cipher
        messages = environment.messages
        conversations = environment.conversations
        attachments = environment.attachments
    }

    // MARK: Sealing

    /// Seals a message's text as the message `seq` from `sender` in `room`.
    public func sealMessage(_ text: String, in room: ConversationID, seq: UInt64, sender: String) async throws -> SealedText {
        try await cipher.seal(
            Array(text.utf8), scope: .conversation(org, room),
            associatedData: Self.messageAssociatedData(org: org, conversation: room, seq: seq, sender: sender))
    }

    /// Seals a pre-chat form (its JSON) as `room`'s.
    public func sealProfile(_ json: [UInt8], of room: ConversationID) async throws -> SealedText {
        try await cipher.seal(json, scope: .conversation(org, room), associatedData: Self.profileAssociatedData(org: org, conversation: room))
    }

    /// Seals a hand-over note as `room`'s.
    public func sealNote(_ note: String, of room: ConversationID) async throws -> SealedText {
        try await cipher.seal(Array(note.utf8), scope: .conversation(org, room), associatedData: Self.noteAssociatedData(org: org, conversation: room))
    }

    /// Seals an attachment's file name.
    public func sealAttachmentName(_ name: String, id: AttachmentID, in room: ConversationID) async throws -> SealedText {
        try await cipher.seal(Array(name.utf8), scope: .conversation(org, room), associatedData: Attachment.nameAssociatedData(id))
    }

    /// Seals chunk `index` of an attachment, bound to its position and to whether it is the last.
    public func sealAttachmentChunk(_ bytes: [UInt8], id: AttachmentID, index: Int, last: Bool, in room: ConversationID) async throws -> SealedText {
        try await cipher.seal(bytes, scope: .conversation(org, room), associatedData: Attachment.chunkAssociatedData(id, index: index, last: last))
    }

    // MARK: Opening

    /// An attachment's name opened: `.plain`, or `.unreadable`; a name that is not sealed is
    /// returned as it is.
    public func openAttachmentName(_ body: MessageBody, id: AttachmentID, in room: ConversationID) async -> MessageBody {
        guard case .sealed(let sealed) = body else { return body }
        return await open(sealed, in: room, associatedData: Attachment.nameAssociatedData(id))
    }

    /// Chunk `index` of an attachment opened; throws if it is not that chunk of that file (moved,
    /// swapped, cut short, edited) or its key is gone.
    public func openAttachmentChunk(_ chunk: AttachmentChunk, id: AttachmentID, index: Int, last: Bool, in room: ConversationID) async throws -> [UInt8] {
        switch chunk {
        case .plain(let bytes): return bytes
        case .sealed(let sealed):
            return try await cipher.open(sealed, scope: .conversation(org, room), associatedData: Attachment.chunkAssociatedData(id, index: index, last: last))
        }
    }

    /// The message with its text opened: a sealed body becomes `.plain`, or `.unreadable` if it
    /// does not open (wrong key, moved, edited, key shredded); other bodies are returned as they are.
    public func open(_ message: StoredMessage) async -> StoredMessage {
        guard case .sealed(let sealed) = message.body else { return message }
        var opened = message
        let aad = Self.messageAssociatedData(org: org, conversation: message.conversation, seq: message.seq, sender: message.sender)
        opened.body = await open(sealed, in: message.conversation, associatedData: aad)
        return opened
    }

    /// `room`'s pre-chat form opened: `.plain` JSON, or `.unreadable`; a body that is not sealed is
    /// returned as it is.
    public func openProfile(_ body: MessageBody, of room: ConversationID) async -> MessageBody {
        guard case .sealed(let sealed) = body else { return body }
        return await open(sealed, in: room, associatedData: Self.profileAssociatedData(org: org, conversation: room))
    }

    /// `room`'s hand-over note opened: `.plain`, or `.unreadable`; a body that is not sealed is
    /// returned as it is.
    public func openNote(_ body: MessageBody, of room: ConversationID) async -> MessageBody {
        guard case .sealed(let sealed) = body else { return body }
        return await open(sealed, in: room, associatedData: Self.noteAssociatedData(org: org, conversation: room))
    }

    /// The conversation's stored messages and pre-chat form, opened, as its transcript. A line
    /// or form that does not open has no text. A message's file is described (name opened, size,
    /// type); with `files` its bytes are read and opened too (for an export encrypted to the
    /// organisation's certificate), unless it is held, never having passed a scan.
    public func transcript(of conversation: Conversation, files: Bool = false) async throws -> Transcript {
        let room = conversation.id
        var stored: [AttachmentID: Attachment] = [:]
        for attachment in try await attachments.attachments(of: room) where attachment.state != .receiving {
            stored[attachment.id] = attachment
        }
        var lines: [Transcript.Line] = []
        for message in try await messages.history(of: room, limit: Int.max) {
            let text: String?
            if case .plain(let plain) = await open(message).body { text = plain } else { text = nil }
            var line = Transcript.Line(seq: message.seq, from: message.sender, at: message.at, text: text)
            if let id = message.attachment, let attachment = stored[id] {
                line.attachment = try await file(attachment, withBytes: files && attachment.state == .ready)
            }
            lines.append(line)
        }
        var profile: String?
        if let stored = try await conversations.profile(of: room), case .plain(let json) = await openProfile(stored, of: room) {
            profile = json
        }
        return Transcript(
            org: org, conversation: room, startedAt: conversation.startedAt, endedAt: conversation.endedAt,
            profileJSON: profile, lines: lines)
    }

    /// An attachment for a transcript; its bytes nil when not asked for or when a chunk does not open.
    private func file(_ attachment: Attachment, withBytes: Bool) async throws -> Transcript.File {
        var name: String?
        if case .plain(let opened) = await openAttachmentName(attachment.name, id: attachment.id, in: attachment.conversation) { name = opened }
        var file = Transcript.File(id: attachment.id, name: name, size: attachment.size, contentType: attachment.contentType, state: attachment.state)
        guard withBytes else { return file }
        let count = Attachment.chunkCount(forSize: attachment.size)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(attachment.size)
        for index in 0..<count {
            guard let chunk = try await attachments.chunk(attachment.id, index: index),
                  let opened = try? await openAttachmentChunk(chunk, id: attachment.id, index: index, last: index == count - 1, in: attachment.conversation)
            else { return file }
            bytes += opened
        }
        file.bytes = bytes.count == attachment.size ? bytes : nil
        return file
    }

    private func open(_ sealed: SealedText, in room: ConversationID, associatedData: [UInt8]) async -> MessageBody {
        guard let bytes = try? await cipher.open(sealed, scope: .conversation(org, room), associatedData: associatedData) else {
            return .unreadable
        }
        return .plain(String(decoding: bytes, as: UTF8.self))
    }

    // MARK: Associated data

    /// The associated data of a message: each field length-prefixed, so no two field lists encode alike.
    public static func messageAssociatedData(org: OrgID, conversation: ConversationID, seq: UInt64, sender: String) -> [UInt8] {
        var bytes = Array("carehub.message.v1".utf8)
        for field in [org.rawValue, conversation.rawValue, String(seq), sender] {
            let utf8 = Array(field.utf8)
            withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: utf8)
        }
        return bytes
    }

    /// Binds a sealed pre-chat form to its organisation and conversation.
    public static func profileAssociatedData(org: OrgID, conversation: ConversationID) -> [UInt8] {
        Array("carehub.profile.v1|\(org.rawValue)|\(conversation.rawValue)".utf8)
    }

    /// Binds a sealed hand-over note to its organisation and conversation.
    public static func noteAssociatedData(org: OrgID, conversation: ConversationID) -> [UInt8] {
        Array("carehub.handoff.v1|\(org.rawValue)|\(conversation.rawValue)".utf8)
    }
}
