import Foundation

/// The identity providers' side of single sign-on that needs the network: the hub's adapter
/// starts a device sign-in at the provider and, in the background, waits for the person to
/// finish it, then fulfils the reserved ticket (``SSOTickets``).
public protocol SignOn: Sendable {
    /// Starts a device sign-in at `provider` for a console of `org`.
    func startDevice(org: OrgID, provider: SSOProvider, peer: String, at now: Date) async throws -> DeviceSignIn
}

/// No single sign-on here (unit tests, tools): every device sign-in is refused.
public struct NoSignOn: SignOn {
    public init() {}
    public func startDevice(org: OrgID, provider: SSOProvider, peer: String, at now: Date) async throws -> DeviceSignIn {
        throw PipelineError(.unavailable, "this hub cannot start a device sign-in")
    }
}
