import Foundation
import Synchronization

/// The identifier of an attachment: `a_` and 32 hex digits, random, so that knowing one says
/// nothing about another.
public struct AttachmentID: Hashable, Sendable, CustomStringConvertible {
    /// The identifier text, e.g. `a_5c0d…`.
    public let rawValue: String

    /// Wraps an identifier as stored; use ``init(checking:)`` for text from outside.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// An identifier read from a request, or nil unless it has the form `a_` + 32 lower-case hex digits.
    public init?(checking text: String) {
        let digits = text.utf8.dropFirst(2)
        guard text.hasPrefix("a_"), digits.count == 32,
              digits.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        rawValue = text
    }

    /// A new random identifier.
    public static func random() -> AttachmentID {
        var generator = SystemRandomNumberGenerator()
        let hex = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
        return AttachmentID("a_" + hex)
    }

    public var description: String { rawValue }
}

/// Where an attachment is in its life.
public enum AttachmentState: String, Sendable, Hashable, CaseIterable {
    /// Its bytes are still arriving; nobody may read it, and it is erased if they stop.
    case receiving
    /// Stored, but the scanner could not check it (`scan … on_error=hold`): nobody may read it
    /// until a later scan passes it.
    case held
    /// Stored and (where the organisation scans) checked: readers of the room may fetch it.
    case ready
}

/// An attachment as storage keeps it: everything but its bytes, which are stored in chunks of
/// ``Attachment/chunkSize`` (the last one shorter), each sealed on its own in a HIPAA organisation.
public struct Attachment: Sendable, Hashable {
    /// The bytes of every chunk but the last.
    public static let chunkSize = 64 * 1024

    public let id: AttachmentID
    /// The organisation and conversation (room) it was sent in.
    public let org: OrgID
    public let conversation: ConversationID
    /// The sender, as ``StoredMessage/sender``.
    public let sender: String
    /// The file name the sender gave, sealed like message text (ePHI: "referral-jane-doe.pdf").
    public var name: MessageBody
    /// The type found in the file's bytes (`image/png`, `application/pdf`), never the sender's word.
    public var contentType: String
    /// Its length in bytes, once received (0 while ``AttachmentState/receiving``).
    public var size: Int
    public var state: AttachmentState
    /// When the hub began to receive it.
    public let at: Date
    /// The message that carries it, once it is ``AttachmentState/held`` or ``AttachmentState/ready``.
    public var seq: UInt64?

    /// Creates an attachment record.
    public init(
        id: AttachmentID, org: OrgID, conversation: ConversationID, sender: String, name: MessageBody, contentType: String,
        size: Int = 0, state: AttachmentState = .receiving, at: Date, seq: UInt64? = nil
    ) {
        self.id = id
        self.org = org
        self.conversation = conversation
        self.sender = sender
        self.name = name
        self.contentType = contentType
        self.size = size
        self.state = state
        self.at = at
        self.seq = seq
    }

    /// How many chunks `size` bytes take (at least one: an empty file is one empty chunk).
    public static func chunkCount(forSize size: Int) -> Int { max(1, (size + chunkSize - 1) / chunkSize) }

    /// The associated data that binds a sealed chunk to its attachment, its position and whether
    /// it is the last, so chunks can be neither swapped, moved between files, nor cut off.
    public static func chunkAssociatedData(_ id: AttachmentID, index: Int, last: Bool) -> [UInt8] {
        Array("carehub-attachment|\(id.rawValue)|\(index)|\(last ? "last" : "more")".utf8)
    }

    /// The associated data of a sealed file name.
    public static func nameAssociatedData(_ id: AttachmentID) -> [UInt8] {
        Array("carehub-attachment-name|\(id.rawValue)".utf8)
    }
}

/// One stored chunk of an attachment: plain bytes, or sealed under the conversation's data key.
public enum AttachmentChunk: Sendable, Hashable {
    case plain([UInt8])
    case sealed(SealedText)
}

/// A file's bytes as they arrive, read one piece at a time; nil at the end. Stages may wrap it
/// (the scan stage passes each piece to the scanner on its way to the store).
public struct AttachmentBytes: Sendable {
    /// The next piece of the file (any length), or nil at its end. Throws when the upload fails.
    public let next: @Sendable () async throws -> [UInt8]?

    /// Wraps a source of pieces.
    public init(next: @escaping @Sendable () async throws -> [UInt8]?) { self.next = next }

    /// The same bytes with `observe` called on each piece before it is passed on, and `finish`
    /// called once at the end, before the end is passed on (it may throw to refuse the file).
    public func observing(
        _ observe: @escaping @Sendable ([UInt8]) async throws -> Void, finish: @escaping @Sendable () async throws -> Void
    ) -> AttachmentBytes {
        let source = next
        return AttachmentBytes {
            if let piece = try await source() {
                try await observe(piece)
                return piece
            }
            try await finish()
            return nil
        }
    }

    /// Bytes already in memory, in pieces of at most `piece` bytes (tests, the bench).
    public static func bytes(_ bytes: [UInt8], piece: Int = Attachment.chunkSize) -> AttachmentBytes {
        let cursor = Mutex(0)
        return AttachmentBytes {
            cursor.withLock { offset -> [UInt8]? in
                guard offset < bytes.count else { return nil }
                let end = min(bytes.count, offset + piece)
                defer { offset = end }
                return Array(bytes[offset..<end])
            }
        }
    }
}

/// A file a sender is attaching to a room: its name as given, its declared length, its bytes.
///
/// Compared by identity: two uploads are never the same request.
public struct AttachmentUpload: Sendable, Hashable {
    /// Distinguishes this upload from every other.
    public let id: AttachmentID
    /// The file name as the sender gave it (ePHI; sealed before it is stored).
    public let name: String
    /// The length the sender declared (`Content-Length`).
    public let declaredSize: Int
    /// The file's bytes, in order.
    public let bytes: AttachmentBytes

    /// Creates an upload with a new attachment id.
    public init(id: AttachmentID = .random(), name: String, declaredSize: Int, bytes: AttachmentBytes) {
        self.id = id
        self.name = name
        self.declaredSize = declaredSize
        self.bytes = bytes
    }

    public static func == (lhs: AttachmentUpload, rhs: AttachmentUpload) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

/// What the scan stage found in an upload, for the store stage to record: set once the scan is
/// over, before the bytes' end reaches the store.
public final class AttachmentCheck: Sendable {
    /// The outcome of a scan.
    public enum Result: Sendable, Hashable {
        /// The scanner passed it.
        case clean
        /// The scanner could not be reached and the stage holds files until it can.
        case held
    }

    private let state = Mutex<Result?>(nil)

    /// Creates an empty check.
    public init() {}

    /// What the scan found; nil if no scan stage looked at the file.
    public var result: Result? { state.withLock { $0 } }

    /// Records the scan's outcome.
    public func record(_ result: Result) { state.withLock { $0 = result } }
}

/// An attachment a reader may fetch: its record with the name as the reader may see it, and its
/// chunks to read one by one.
public struct AttachmentDownload: Sendable {
    /// The record; its ``Attachment/name`` is opened for the reader (`.plain`) once the encrypt
    /// stage has passed it on the way back.
    public var attachment: Attachment
    /// How many chunks there are.
    public let chunkCount: Int
    /// Chunk `index` (0 ..< chunkCount) as stored; the encrypt stage replaces it with one that
    /// opens sealed chunks.
    public var chunk: @Sendable (Int) async throws -> AttachmentChunk

    /// Creates a download.
    public init(attachment: Attachment, chunkCount: Int, chunk: @escaping @Sendable (Int) async throws -> AttachmentChunk) {
        self.attachment = attachment
        self.chunkCount = chunkCount
        self.chunk = chunk
    }
}
