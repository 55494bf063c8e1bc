import Foundation

/// Something that happened that an auditor must be able to find: who, from where, did what to what.
///
/// Audit events never hold message text, passwords, codes, tokens or secrets; targets are ids.
public struct AuditEvent: Sendable, Hashable {
    public let at: Date
    public let org: OrgID
    /// The user name, `visitor`, or `system`.
    public let actor: String
    /// The network address the action came from (or `local` for the command line).
    public let address: String
    /// A dotted action name such as `login.success` (docs/PROTOCOL.md lists them).
    public let action: String
    /// The id the action was on (a user name, a conversation id), or empty.
    public let target: String
    /// A short machine-readable detail such as `reason=password`; never PHI or secrets.
    public let detail: String

    public init(at: Date, org: OrgID, actor: String, address: String, action: String, target: String = "", detail: String = "") {
        self.at = at
        self.org = org
        self.actor = actor
        self.address = address
        self.action = action
        self.target = target
        self.detail = detail
    }
}

/// The audit trail. Recording is part of the action: if it fails, the action fails.
public protocol AuditLog: Sendable {
    func record(_ event: AuditEvent) async throws
}
