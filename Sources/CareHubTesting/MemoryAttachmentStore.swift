import CareHubCore
import Foundation
import Synchronization

/// Attachments in memory, held to the SQLite store's contract (AttachmentStoreContractTests):
/// chunks in order while receiving and unreadable until finished, a finish that stores the message
/// and its events through `messages` or leaves the attachment as it was, and erasing that forgets
/// the bytes.
public final class MemoryAttachmentStore: AttachmentStore {
    private struct Stored {
        var attachment: Attachment
        var chunks: [AttachmentChunk] = []
        /// A finish is under way: nothing else may change it meanwhile.
        var finishing = false
    }

    /// Why the double refused a write.
    public struct Refusal: Error, Hashable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    private let state = Mutex<(rows: [AttachmentID: Stored], order: [AttachmentID])>(([:], []))
    private let messages: any MessageStore

    /// Finishing stores the message, with its events, through `messages` (give it the
    /// ``MemoryMessageStore`` of the same ``TestWorld`` so history shows it).
    public init(messages: any MessageStore) {
        self.messages = messages
    }

    /// Every attachment held, in order of ``begin(_:)``.
    public var all: [Attachment] { state.withLock { state in state.order.compactMap { state.rows[$0]?.attachment } } }

    public func begin(_ attachment: Attachment) async throws {
        try state.withLock { state in
            if case .unreadable = attachment.name { throw Refusal("an unreadable name cannot be stored") }
            guard attachment.state == .receiving else { throw Refusal("an attachment begins as receiving") }
            guard state.rows[attachment.id] == nil else { throw Refusal("\(attachment.id) exists already") }
            var record = attachment
            record.size = 0
            record.seq = nil
            state.rows[attachment.id] = Stored(attachment: record)
            state.order.append(attachment.id)
        }
    }

    public func appendChunk(_ id: AttachmentID, index: Int, _ chunk: AttachmentChunk) async throws {
        try state.withLock { state in
            guard var stored = state.rows[id], stored.attachment.state == .receiving, !stored.finishing else {
                throw Refusal("\(id) is not being received")
            }
            guard index == stored.chunks.count else { throw Refusal("\(id) expects chunk \(stored.chunks.count), not \(index)") }
            stored.chunks.append(chunk)
            state.rows[id] = stored
        }
    }

    public func finish(
        _ id: AttachmentID, state newState: AttachmentState, size: Int, contentType: String,
        message: StoredMessage, recording events: [AuditEvent]
    ) async throws {
        try state.withLock { state in
            guard newState != .receiving else { throw Refusal("an attachment finishes held or ready") }
            guard message.attachment == id else { throw Refusal("the message does not carry \(id)") }
            guard var stored = state.rows[id] else { throw Refusal("\(id) is not stored") }
            guard stored.attachment.state == .receiving, !stored.finishing else { throw Refusal("\(id) is finished already") }
            guard stored.attachment.conversation == message.conversation else { throw Refusal("\(id) belongs to another conversation") }
            guard stored.chunks.count == Attachment.chunkCount(forSize: size) else {
                throw Refusal("\(id) has \(stored.chunks.count) chunks, \(size) bytes take \(Attachment.chunkCount(forSize: size))")
            }
            stored.finishing = true
            state.rows[id] = stored
        }
        do {
            // The message store keeps the message and its events both or neither.
            try await messages.append(message, recording: events)
        } catch {
            state.withLock { $0.rows[id]?.finishing = false }
            throw error
        }
        state.withLock { state in
            guard var stored = state.rows[id] else { return }
            stored.finishing = false
            stored.attachment.state = newState
            stored.attachment.size = size
            stored.attachment.contentType = contentType
            stored.attachment.seq = message.seq
            state.rows[id] = stored
        }
    }

    public func discard(_ id: AttachmentID) async throws {
        state.withLock { state in
            state.rows[id] = nil
            state.order.removeAll { $0 == id }
        }
    }

    public func attachment(_ id: AttachmentID) async throws -> Attachment? {
        state.withLock { $0.rows[id]?.attachment }
    }

    public func chunk(_ id: AttachmentID, index: Int) async throws -> AttachmentChunk? {
        state.withLock { state in
            guard let stored = state.rows[id], stored.attachment.state != .receiving, stored.chunks.indices.contains(index) else { return nil }
            return stored.chunks[index]
        }
    }

    public func setState(_ id: AttachmentID, _ newState: AttachmentState) async throws {
        try state.withLock { state in
            guard newState != .receiving else { throw Refusal("a stored attachment cannot be receiving again") }
            guard state.rows[id]?.attachment.state == .held || state.rows[id]?.attachment.state == .ready else {
                throw Refusal("\(id) is not a stored attachment")
            }
            state.rows[id]?.attachment.state = newState
        }
    }

    public func held(org: OrgID, limit: Int) async throws -> [Attachment] {
        Array(inOrder { $0.org == org && $0.state == .held }.prefix(limit))
    }

    public func attachments(of conversation: ConversationID) async throws -> [Attachment] {
        inOrder { $0.conversation == conversation }
    }

    public func purge(_ conversation: ConversationID) async throws -> Int {
        state.withLock { state in
            let erased = state.order.filter { state.rows[$0]?.attachment.conversation == conversation }
            for id in erased { state.rows[id] = nil }
            state.order.removeAll { erased.contains($0) }
            return erased.count
        }
    }

    public func abandoned(before date: Date, limit: Int) async throws -> [AttachmentID] {
        Array(inOrder { $0.state == .receiving && $0.at < date }.prefix(limit).map(\.id))
    }

    public func plainAttachments(of conversation: ConversationID) async throws -> [Attachment] {
        let plain = state.withLock { state in
            Set(state.rows.values.filter { stored in
                let name: Bool = if case .plain = stored.attachment.name { true } else { false }
                return name || stored.chunks.contains { if case .plain = $0 { true } else { false } }
            }.map(\.attachment.id))
        }
        return inOrder { $0.conversation == conversation && $0.state != .receiving && plain.contains($0.id) }
    }

    public func sealName(_ id: AttachmentID, _ name: SealedText) async throws {
        try state.withLock { state in
            guard let stored = state.rows[id], stored.attachment.state != .receiving else { throw Refusal("\(id) is not a stored attachment") }
            if case .plain = stored.attachment.name { state.rows[id]?.attachment.name = .sealed(name) }
        }
    }

    public func sealChunks(_ id: AttachmentID, _ chunks: [(index: Int, sealed: SealedText)]) async throws {
        try state.withLock { state in
            guard var stored = state.rows[id], stored.attachment.state != .receiving else { throw Refusal("\(id) is not a stored attachment") }
            for (index, sealed) in chunks where stored.chunks.indices.contains(index) {
                if case .plain = stored.chunks[index] { stored.chunks[index] = .sealed(sealed) }
            }
            state.rows[id] = stored
        }
    }

    /// The attachments `include` picks, oldest first (ties in order of ``begin(_:)``), as SQLite orders them.
    private func inOrder(_ include: (Attachment) -> Bool) -> [Attachment] {
        let ordered = all.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }
        return ordered.map(\.element).filter(include)
    }
}
