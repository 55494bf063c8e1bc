import Foundation

/// An organisation-wide answer staff can insert and edit before sending: written by admins, not
/// patients, so it holds no PHI and is stored as it is.
public struct CannedReply: Sendable, Hashable {
    /// The reply's name, unique in its organisation: one line, 1–``maxNameLength`` characters.
    public let name: String
    /// The reply's text: 1–``maxTextBytes`` bytes of UTF-8, line breaks kept.
    public let text: String

    /// Creates a reply; ``from(name:text:)`` cleans and checks what an admin typed.
    public init(name: String, text: String) {
        self.name = name
        self.text = text
    }

    /// Longest name, in characters.
    public static let maxNameLength = 40
    /// Longest text, in bytes of UTF-8.
    public static let maxTextBytes = 2_000
    /// Most replies one organisation holds.
    public static let maxPerOrg = 200

    /// `text` cleaned as one line of typed text and trimmed, if 1–``maxNameLength`` characters remain.
    public static func name(from text: String) -> String? {
        let cleaned = TypedText.clean(text, as: .singleLine).trimmingCharacters(in: .whitespaces)
        guard !cleaned.isEmpty, cleaned.count <= maxNameLength else { return nil }
        return cleaned
    }

    /// `text` cleaned as multi-line typed text, if it is at most ``maxTextBytes`` bytes and not blank.
    public static func text(from text: String) -> String? {
        guard text.utf8.count <= maxTextBytes else { return nil }
        let cleaned = TypedText.clean(text, as: .multiLine)
        guard !cleaned.allSatisfy(\.isWhitespace) else { return nil }
        return cleaned
    }
}

/// What ``CannedReplyStore/save(_:org:by:at:limit:recording:)`` did.
public enum CannedReplySave: Sendable, Hashable {
    /// The name was new; the reply was added.
    case created
    /// A reply of that name existed; its text was replaced.
    case replaced
    /// The name was new and the organisation already held `limit` replies; nothing was written.
    case full
}

/// The organisations' canned replies.
///
/// Implementations must guarantee that:
/// - names are compared byte for byte, and ``list(org:)`` orders by the bytes of the name;
/// - `save` and `delete` write the reply and the audit event given in one commit, or neither;
/// - `save` checks the limit and writes in one step, so two admins racing cannot pass it;
/// - nothing is written (and no event recorded) when `save` answers ``CannedReplySave/full`` or
///   `delete` answers false.
///
/// ```swift
/// switch try await replies.save(reply, org: org, by: "ada", at: now, limit: CannedReply.maxPerOrg, recording: event) {
/// case .created, .replaced: …
/// case .full: throw PipelineError(.conflict, "…")
/// }
/// ```
public protocol CannedReplyStore: Sendable {
    /// The organisation's replies, by name.
    func list(org: OrgID) async throws -> [CannedReply]
    /// Creates the reply or replaces the text of the one with its name, recording `event` with it;
    /// a new name is refused when the organisation already holds `limit`.
    func save(_ reply: CannedReply, org: OrgID, by actor: String, at date: Date, limit: Int, recording event: AuditEvent) async throws -> CannedReplySave
    /// Deletes the reply named `name`, recording `event` with it; false (nothing recorded) if there is none.
    func delete(org: OrgID, name: String, recording event: AuditEvent) async throws -> Bool
    /// How many replies the organisation holds.
    func count(org: OrgID) async throws -> Int
}
