import CareHubCore
import Foundation

/// The ``ConversationLifecycle`` over the stage environment's ports: what the purge stage does to
/// end and erase a conversation, for the stage itself and for anyone else who asks
/// (``StageEnvironment/conversationLifecycle``).
public struct StandardConversationLifecycle: ConversationLifecycle {
    private let environment: StageEnvironment

    /// Ends and erases through `environment`'s stores, rooms, queue, cipher and audit trail.
    public init(environment: StageEnvironment) {
        self.environment = environment
    }

    public func end(_ conversation: Conversation, at now: Date) async throws -> Conversation {
        var ended = conversation
        if conversation.endedAt == nil {
            try await environment.conversations.markEnded(conversation.id, at: now)
            ended.endedAt = now
        }
        let members = environment.rooms.close(conversation.id)
        environment.rooms.deliver(.ended(id: nil, room: conversation.id), to: members.map(\.connection))
        environment.leaveQueue(conversation.id, org: conversation.org)
        return ended
    }

    public func erase(_ conversation: ConversationID, org: OrgID, actor: String, address: String, detail: String) async throws {
        let deleted = try await environment.messages.purge(conversation)
        // The files go with the chat: their names and chunks are sealed under the same key, but
        // plain ones (outside HIPAA mode) have only this delete.
        let files = try await environment.attachments.purge(conversation)
        try await environment.conversations.eraseProfile(conversation)
        // Crypto-shred: with the data key gone, copies of the rows in old backups are noise.
        try await environment.cipher.shred(.conversation(org, conversation))
        try await environment.conversations.markPurged(conversation, at: environment.clock.now)
        try await environment.audit.record(AuditEvent(
            at: environment.clock.now, org: org, actor: actor, address: address, action: "conversation.purged",
            target: conversation.rawValue, detail: "messages=\(deleted)\(files > 0 ? " attachments=\(files)" : "") key=shredded \(detail)"))
    }
}

extension StageEnvironment {
    /// Ends and erases conversations as the purge stage does.
    public var conversationLifecycle: any ConversationLifecycle { StandardConversationLifecycle(environment: self) }
}
