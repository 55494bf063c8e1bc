import Foundation

/// The latest hand-over of a conversation between staff: who passed it to whom, when, and the
/// note for the colleague (ePHI: sealed like messages in a HIPAA organisation, never shown to the
/// visitor, erased with the transcript).
public struct Handoff: Sendable, Hashable {
    /// The staff member who transferred it.
    public let from: String
    /// The new assignee; nil when it went back to the queue.
    public let to: String?
    /// When.
    public let at: Date
    /// The note, if one was written.
    public var note: MessageBody?

    /// Creates a hand-over record.
    public init(from: String, to: String?, at: Date, note: MessageBody?) {
        self.from = from
        self.to = to
        self.at = at
        self.note = note
    }

    /// Longest accepted note, in bytes of UTF-8.
    public static let maxNoteBytes = 2_000
}
