import Foundation

/// Ends and erases conversations on the hub's own initiative, outside any chat frame: the purge
/// stage's retention, abandonment and end-of-chat hook, and the admin API's confirmed purge when
/// an organisation leaves HIPAA mode.
///
/// Implementations must guarantee:
/// - ``end(_:at:)`` marks an open conversation ended at `now` (an ended one keeps its end time),
///   closes its room, tells every connection that was in it `ended`, takes it out of the
///   organisation's queue, and returns it as ended;
/// - ``erase(_:org:actor:address:detail:)`` deletes the conversation's messages, attachments and
///   pre-chat form, shreds its data key, marks it purged, and records `conversation.purged` in the
///   audit trail in `actor`'s name with `messages=N` (`attachments=M` when there were any),
///   `key=shredded` and `detail`, never content. It does
///   not export: whoever asks has exported first, or decided that nothing is exported.
///
/// ```swift
/// let ended = try await lifecycle.end(conversation, at: now)
/// try await lifecycle.erase(ended.id, org: ended.org, actor: "admin", address: peer, detail: "reason=hipaa_off export=none")
/// ```
public protocol ConversationLifecycle: Sendable {
    /// Ends `conversation` if it is open and closes its room; returns it as ended.
    func end(_ conversation: Conversation, at now: Date) async throws -> Conversation
    /// Erases the conversation's record of what was said and audits it.
    func erase(_ conversation: ConversationID, org: OrgID, actor: String, address: String, detail: String) async throws
}
