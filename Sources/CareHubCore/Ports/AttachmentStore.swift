import Foundation

/// The port through which stages store and read attachments, kept where the messages are.
///
/// Implementations must guarantee:
/// - ``begin(_:)`` and each ``appendChunk(_:index:_:)`` commit on their own (a slow upload never
///   holds the writer), and nothing of a ``AttachmentState/receiving`` attachment is ever returned
///   by ``chunk(_:index:)``;
/// - ``finish(_:state:size:contentType:message:recording:)`` makes the attachment ``held`` or
///   ``ready``, stores the message that carries it and records `events` in one transaction: an
///   acknowledged attachment is durable with its message and its delivery record;
/// - ``discard(_:)``, ``purge(_:)`` and ``abandoned(before:limit:)``'s callers leave no trace of
///   the bytes in the files (the freed space zeroed, as messages are erased);
/// - ``plainAttachments(of:)`` lists exactly the held or ready attachments whose name or any chunk
///   is plain; ``sealName(_:_:)`` and ``sealChunks(_:_:)`` replace only what is plain (a second
///   pass changes nothing), never touch an attachment being received, and return only once no
///   plain copy of what they replaced is left in the files (as messages are sealed).
///
/// ```swift
/// try await attachments.begin(Attachment(id: id, org: org, conversation: room, sender: "visitor", name: .sealed(name), contentType: "image/png", at: now))
/// try await attachments.appendChunk(id, index: 0, .sealed(chunk0))
/// try await attachments.finish(id, state: .ready, size: 1_234, contentType: "image/png", message: message, recording: events)
/// // only now may the sender be told it was stored
/// ```
public protocol AttachmentStore: Sendable {
    /// Records a new attachment in state ``AttachmentState/receiving``.
    func begin(_ attachment: Attachment) async throws
    /// Stores chunk `index` (0, 1, 2, … in order) of an attachment being received.
    func appendChunk(_ id: AttachmentID, index: Int, _ chunk: AttachmentChunk) async throws
    /// Completes an attachment: its state, size and type, the message that carries it (whose
    /// ``StoredMessage/attachment`` names it) and the audit events, in one commit.
    func finish(_ id: AttachmentID, state: AttachmentState, size: Int, contentType: String,
                message: StoredMessage, recording events: [AuditEvent]) async throws
    /// Erases an attachment that will not be kept (refused, failed, abandoned) and its chunks.
    func discard(_ id: AttachmentID) async throws
    /// The attachment's record, in any state; nil if there is none (or it was erased).
    func attachment(_ id: AttachmentID) async throws -> Attachment?
    /// Chunk `index` of a held or ready attachment.
    func chunk(_ id: AttachmentID, index: Int) async throws -> AttachmentChunk?
    /// Changes a held attachment's state (a later scan passed it).
    func setState(_ id: AttachmentID, _ state: AttachmentState) async throws
    /// Up to `limit` held attachments of the organisation, oldest first.
    func held(org: OrgID, limit: Int) async throws -> [Attachment]
    /// Every attachment of the conversation, in any state, oldest first.
    func attachments(of conversation: ConversationID) async throws -> [Attachment]
    /// Erases every attachment of the conversation with its chunks; returns how many there were.
    func purge(_ conversation: ConversationID) async throws -> Int
    /// Up to `limit` attachments still ``AttachmentState/receiving`` that began before `date`
    /// (an upload the hub stopped hearing from, or one cut off by a crash).
    func abandoned(before date: Date, limit: Int) async throws -> [AttachmentID]
    /// The held and ready attachments of the conversation whose name or any chunk is stored
    /// plain (kept before the organisation entered HIPAA mode), oldest first.
    func plainAttachments(of conversation: ConversationID) async throws -> [Attachment]
    /// Replaces a held or ready attachment's plain name with `name`; a sealed name is left as it
    /// is. Once it returns no plain copy of the old name is left in the files.
    func sealName(_ id: AttachmentID, _ name: SealedText) async throws
    /// Replaces plain chunks of a held or ready attachment with the sealed ones given, in one
    /// commit; sealed chunks are left as they are. Once it returns no plain copy of the replaced
    /// chunks is left in the files.
    func sealChunks(_ id: AttachmentID, _ chunks: [(index: Int, sealed: SealedText)]) async throws
}

/// The store of a hub that takes no attachments: every write is refused, nothing is found.
public struct NoAttachments: AttachmentStore {
    /// Creates the store.
    public init() {}

    private static let refusal = PipelineError(.forbidden, "this hub does not store attachments")

    public func begin(_ attachment: Attachment) async throws { throw Self.refusal }
    public func appendChunk(_ id: AttachmentID, index: Int, _ chunk: AttachmentChunk) async throws { throw Self.refusal }
    public func finish(_ id: AttachmentID, state: AttachmentState, size: Int, contentType: String,
                       message: StoredMessage, recording events: [AuditEvent]) async throws { throw Self.refusal }
    public func discard(_ id: AttachmentID) async throws {}
    public func attachment(_ id: AttachmentID) async throws -> Attachment? { nil }
    public func chunk(_ id: AttachmentID, index: Int) async throws -> AttachmentChunk? { nil }
    public func setState(_ id: AttachmentID, _ state: AttachmentState) async throws {}
    public func held(org: OrgID, limit: Int) async throws -> [Attachment] { [] }
    public func attachments(of conversation: ConversationID) async throws -> [Attachment] { [] }
    public func purge(_ conversation: ConversationID) async throws -> Int { 0 }
    public func abandoned(before date: Date, limit: Int) async throws -> [AttachmentID] { [] }
    public func plainAttachments(of conversation: ConversationID) async throws -> [Attachment] { [] }
    public func sealName(_ id: AttachmentID, _ name: SealedText) async throws { throw Self.refusal }
    public func sealChunks(_ id: AttachmentID, _ chunks: [(index: Int, sealed: SealedText)]) async throws { throw Self.refusal }
}
