import Foundation

/// Assigning a conversation to a staff member, one implementation for the `assign` frame and
/// `carehub conversations assign`: the room must be the organisation's and the account enabled;
/// the change is stored, audited (`conversation.assigned user=… previous=…`) and recorded in the
/// ``ChangeJournal``, from which hubs in other processes apply it.
public struct Assignments: Sendable {
    private let conversations: any ConversationStore
    private let users: any UserDirectory
    private let audit: any AuditLog
    private let journal: (any ChangeJournal)?
    private let origin: String

    /// `origin` names this process in the journal; without a journal nothing is recorded there.
    public init(
        conversations: any ConversationStore, users: any UserDirectory, audit: any AuditLog, journal: (any ChangeJournal)?, origin: String
    ) {
        self.conversations = conversations
        self.users = users
        self.audit = audit
        self.journal = journal
        self.origin = origin
    }

    /// Assigns `room` of `org` to the enabled account `user`; returns the record before and after.
    /// Throws ``PipelineError`` `not_found` for a room of another organisation or no such account.
    public func assign(
        _ room: ConversationID, in org: OrgID, to user: String, by actor: String, address: String, at date: Date
    ) async throws -> (before: Conversation, after: Conversation) {
        guard let before = try await conversations.conversation(room), before.org == org else {
            throw PipelineError(.notFound, "no conversation \(room) in \(org)")
        }
        guard let account = try await users.user(org: org, name: user), !account.disabled else {
            throw PipelineError(.notFound, "no enabled staff account '\(user)' in \(org)")
        }
        try await conversations.assign(room, to: account.name)
        var after = before
        after.assignedTo = account.name
        try await audit.record(AuditEvent(
            at: date, org: org, actor: actor, address: address, action: "conversation.assigned", target: room.rawValue,
            detail: "user=\(account.name) previous=\(before.assignedTo ?? "none")"))
        try await journal?.record(
            Change(org: org, kind: .assigned(room: room, user: account.name, previous: before.assignedTo), origin: origin), at: date)
        return (before, after)
    }
}
