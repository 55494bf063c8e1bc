import CareHubCore
import Foundation

/// Deletes a conversation's messages once it has ended and everyone in the room has been told.
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

    private let environment: StageEnvironment

    public init(configuration: Configuration, org: OrgSettings, environment: StageEnvironment) {
        self.environment = environment
    }

    public func handle(_ request: Request, next: Next) async throws -> Outcome {
        let outcome = try await next(request)
        if case .end(let room) = request.frame {
            _ = try await environment.messages.purge(room)
        }
        return outcome
    }
}
