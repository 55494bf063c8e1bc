/// What the organisation's end-of-chat hook does with a conversation when it ends, in words for
/// the person about to end it.
///
/// Derived from the purge stage's configuration in force. It names no host path (no export
/// directory, no certificate) and no patient data; an integration's name is the most it says.
/// The staff console shows ``text`` in its end confirmation.
public struct EndOfChat: Sendable, Hashable {
    /// What becomes of the transcript.
    public enum Kind: String, Sendable, CaseIterable {
        /// Written to the organisation's export directory (`export_dir=`), then erased.
        case exportFile = "export_file"
        /// Posted to a webhook integration (`export_to=`), then erased.
        case exportWebhook = "export_webhook"
        /// Erased and not kept anywhere (`stage purge` without an export).
        case erase
        /// Kept in the hub's history (no purge stage).
        case keep
    }

    /// What becomes of the transcript, for programs.
    public let kind: Kind
    /// The same, as one plain sentence (or two) for people.
    public let text: String

    /// Creates a description.
    public init(kind: Kind, text: String) {
        self.kind = kind
        self.text = text
    }

    /// An organisation without a purge stage keeps its conversations.
    public static let kept = EndOfChat(kind: .keep, text: "This chat stays in CareHub's history.")
}
