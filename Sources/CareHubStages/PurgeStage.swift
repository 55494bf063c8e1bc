import CareHubCore
import Foundation

/// Deletes a conversation's transcript: its messages and pre-chat form, and its data key
/// (crypto-shredding), once it has ended and everyone in the room has been told, and, with
/// `retain=`, once it is older than the retention period even if it never ended. Every purge is
/// audited with ids and a count, never content.
public struct PurgeStage: Stage {
    /// Parameters of `stage purge`.
    public struct Configuration: StageConfiguration {
        /// `on=end`: purge a conversation when it ends.
        public var trigger: String
        /// `retain=D`: purge conversations older than this even if they never ended (default: no limit).
        public var retain: Duration?

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            trigger = try parameters.choice("on", ["end"], default: "end")
            if parameters.remainingKeys.contains("retain") {
                let retain = try parameters.duration("retain", default: .seconds(0))
                guard retain > .seconds(0) else { throw parameters.error("expected retain to be a positive duration such as 30d") }
                self.retain = retain
            }
        }

        public var summary: [String] { ["on=\(trigger)"] + (retain.map { ["retain=\(ConfigValue.format($0))"] } ?? []) }
    }

    public static let name = "purge"
    public static let rules = StageRules(after: ["auth", "idle", "encrypt", "store"])

    private let configuration: Configuration
    private let org: OrgSettings
    private let environment: StageEnvironment

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.configuration = configuration
        self.org = org
        self.environment = environment
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        let outcome = try await next(request)
        if case .end(let room) = request.frame {
            try await purge(room, actor: request.session?.principal.displayName ?? "system", address: request.peer, reason: "end")
        }
        return outcome
    }

    /// The retention sweep: conversations past `retain` are ended (the room is told) and purged.
    public func tick(at now: Date) async {
        guard let retain = configuration.retain else { return }
        guard let expired = try? await environment.conversations.unpurged(org: org.id, startedBefore: now.addingTimeInterval(-retain.seconds), limit: 100) else { return }
        for conversation in expired {
            let members = environment.rooms.close(conversation.id)
            environment.rooms.deliver(.ended(id: nil, room: conversation.id), to: members.map(\.connection))
            // A failed purge stays unpurged and is retried at the next tick.
            try? await purge(conversation.id, actor: "system", address: "", reason: "retention")
        }
    }

    private func purge(_ room: ConversationID, actor: String, address: String, reason: String) async throws {
        let deleted = try await environment.messages.purge(room)
        try await environment.conversations.eraseProfile(room)
        // Crypto-shred: with the data key gone, copies of the rows in old backups are noise.
        try await environment.cipher.shred(.conversation(org.id, room))
        try await environment.conversations.markPurged(room, at: environment.clock.now)
        try await environment.audit.record(AuditEvent(
            at: environment.clock.now, org: org.id, actor: actor, address: address, action: "conversation.purged",
            target: room.rawValue, detail: "messages=\(deleted) key=shredded reason=\(reason)"))
    }
}
