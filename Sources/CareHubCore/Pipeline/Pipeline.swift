import Foundation

/// Receives how long each stage took, for metrics. Must not block.
public protocol StageTimer: Sendable {
    /// Where `org`'s `stage` reports its times: `seconds` from entering the stage until it
    /// returned, including the stages after it. Asked once per stage when a pipeline is built, so
    /// that a frame's path does no lookup by name.
    func recorder(org: OrgID, stage: String) -> @Sendable (_ seconds: Double) -> Void
}

/// An organisation's stages folded into one chain.
public struct Pipeline: Sendable {
    /// The organisation this pipeline serves.
    public let org: OrgSettings
    /// The stages, in chain order.
    public let stages: [any Stage]
    private let chain: Next

    /// Folds `stages` so that the first stage runs first and the last calls the end of the chain.
    /// With a `timer`, each stage's time is reported (whether it succeeded or threw).
    public init(org: OrgSettings, stages: [any Stage], timer: (any StageTimer)? = nil) {
        self.org = org
        self.stages = stages
        var next: Next = { _ in Outcome() }
        for stage in stages.reversed() {
            let rest = next
            if let record = timer?.recorder(org: org.id, stage: type(of: stage).name) {
                next = { request in
                    let start = ContinuousClock.now
                    defer { record((ContinuousClock.now - start).seconds) }
                    return try await stage.handle(request, next: rest)
                }
            } else {
                next = { request in try await stage.handle(request, next: rest) }
            }
        }
        self.chain = next
    }

    /// The stage names in chain order.
    public var stageNames: [String] { stages.map { type(of: $0).name } }

    /// Runs `request` through every stage.
    public func run(_ request: Request) async throws -> Outcome {
        try await chain(request)
    }

    /// Gives each stage its periodic tick.
    public func tick(at now: Date) async {
        for stage in stages { await stage.tick(at: now) }
    }
}
