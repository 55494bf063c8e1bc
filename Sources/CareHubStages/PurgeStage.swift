import CareHubCore
import Foundation

/// Deletes a conversation's messages and destroys its data key once it has ended and everyone in
/// the room has been told; the purge is audited (ids and a count, no content).
public struct PurgeStage: Stage {
    /// Parameters of `stage purge`.
    public struct Configuration: StageConfiguration {
        /// `on=end`: when to purge; conversations are purged when they end (the only value for now).
        public var trigger: String

        public init(parameters: inout StageParameters, org: OrgSettings) throws {
            trigger = try parameters.choice("on", ["end"], default: "end")
        }

        public var summary: [String] { ["on=\(trigger)"] }
    }

    public static let name = "purge"
    public static let rules = StageRules(after: ["auth", "idle", "encrypt", "store"])

    private let org: OrgSettings
    private let environment: StageEnvironment

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.org = org
        self.environment = environment
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        let outcome = try await next(request)
        if case .end(let room) = request.frame {
            let deleted = try await environment.messages.purge(room)
            try await environment.conversations.eraseProfile(room)
            // Crypto-shred: with the data key gone, copies of the rows in old backups are noise.
            try await environment.cipher.shred(.conversation(org.id, room))
            try await environment.audit.record(AuditEvent(
                at: environment.clock.now, org: org.id, actor: request.session?.principal.displayName ?? "system",
                address: request.peer, action: "conversation.purged", target: room.rawValue, detail: "messages=\(deleted) key=shredded"))
        }
        return outcome
    }
}
